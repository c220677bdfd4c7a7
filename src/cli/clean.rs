//! `ksync clean`: remove everything `ksync init` created, and with `--local` ksync's local
//! Syncthing state. Nothing else.

use clap::Args;

use super::{Context, print};
use crate::agent::AgentConfig;
use crate::cluster::install::clean;
use crate::error::Error;

/// Arguments of `ksync clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Namespace of the agent (default: the configured one, else `ksync`).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Also remove the local Syncthing's state (~/.ksync/syncthing: its identity and index).
    /// Your configuration (ksync.yaml) is kept.
    #[arg(long)]
    local: bool,
}

pub(super) async fn run(ctx: &Context, args: CleanArgs) -> Result<(), Error> {
    let settings = super::init::agent_settings(
        ctx,
        &AgentConfig {
            namespace: args.namespace.clone(),
            ..AgentConfig::default()
        },
    )?;
    let cluster = ctx.cluster().await?;
    let deleted = clean(&cluster, &settings).await?;
    let mut out = String::new();
    if deleted.is_empty() {
        out.push_str(&format!(
            "Nothing of ksync's found in the cluster ({}).\n",
            cluster.context
        ));
    }
    for object in &deleted {
        out.push_str(&format!("   deleted  {object}\n"));
    }
    if args.local {
        let home = ctx.home()?.syncthing_home();
        crate::syncthing::instance::stop_stale(&home).await;
        match std::fs::remove_dir_all(&home) {
            Ok(()) => out.push_str(&format!("   deleted  {}\n", crate::config::tilde(&home))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    action: "remove",
                    path: home,
                    source,
                });
            }
        }
    }
    print(&out);
    Ok(())
}
