//! `ksync doctor`: ordered checks of everything ksync needs, each failure with its fix.

use std::fmt::Write;

use clap::Args;

use super::{Context, print};
use crate::agent::AgentConfig;
use crate::cluster::doctor::{DoctorOptions, Status, run as checks};
use crate::error::Error;

/// Arguments of `ksync doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Namespace of the agent (default: the configured one, else `ksync`).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,
}

pub(super) async fn run(ctx: &Context, args: DoctorArgs) -> Result<(), Error> {
    let loaded = crate::config::load(&ctx.load_options(None))?;
    let agent = AgentConfig {
        namespace: args.namespace.clone(),
        ..AgentConfig::default()
    }
    .apply(
        loaded
            .settings
            .agent
            .apply(crate::agent::AgentSettings::default()),
    );
    let mut spec_namespaces: Vec<Option<String>> =
        loaded.specs.iter().map(|s| s.namespace.clone()).collect();
    if spec_namespaces.is_empty() {
        spec_namespaces.push(loaded.settings.namespace.as_ref().map(|n| n.value.clone()));
    }
    let options = DoctorOptions {
        cluster: ctx.cluster_options(&loaded.settings),
        user_cluster_role: agent.cluster_role_name(),
        agent_namespace: agent.namespace,
        agent_name: agent.name,
        spec_namespaces,
        syncthing: (
            ctx.env.get("KSYNC_SYNCTHING").cloned(),
            loaded
                .settings
                .syncthing
                .as_ref()
                .map(|s| s.value.clone().into()),
        ),
    };
    let results = checks(&options).await;
    let mut out = String::new();
    for check in &results {
        let mark = match check.status {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skipped => "-",
        };
        let _ = writeln!(out, "{mark} {:<16} {}", check.name, check.detail);
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "  {:<16} fix: {fix}", "");
        }
    }
    print(&out);
    let failed = results.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        return Err(Error::DoctorFailed {
            failed,
            total: results.len(),
        });
    }
    Ok(())
}
