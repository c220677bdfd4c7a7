//! `ksync init`: install (or upgrade) the agent in the cluster, and check the local side.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Context, print};
use crate::agent::{AgentConfig, AgentSettings, render, to_yaml_stream};
use crate::cluster::install::{Outcome, Progress, init, new_api_key};
use crate::error::Error;

/// Arguments of `ksync init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Bring an installed agent up to date (its pods roll only if something changed).
    #[arg(short, long)]
    upgrade: bool,

    /// Print the manifests instead of applying them.
    #[arg(long)]
    dry_run: bool,

    /// Namespace of the agent (default: `ksync`).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// The agent image (build one with deploy/build-agent-image.sh).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,

    /// IfNotPresent, Always or Never.
    #[arg(long, value_name = "POLICY")]
    image_pull_policy: Option<String>,

    /// Run agents only on nodes with this label (repeatable: KEY=VALUE).
    #[arg(long = "node-selector", value_name = "KEY=VALUE", value_parser = parse_pair)]
    node_selector: Vec<(String, String)>,

    /// Tolerate a taint (repeatable): `KEY`, `KEY=VALUE`, either with `:EFFECT`, or `*` for
    /// every taint (the default).
    #[arg(long = "toleration", value_name = "TAINT", value_parser = parse_toleration)]
    tolerations: Vec<serde_json::Value>,

    /// Host path of the Docker socket to give radar (on Docker nodes).
    #[arg(long, value_name = "PATH")]
    docker_socket: Option<String>,

    /// Host path of containerd's socket to give radar.
    #[arg(long, value_name = "PATH")]
    containerd_socket: Option<String>,

    /// How long to wait for the agent pods to be ready.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// `key`, `key=value`, each optionally `:Effect`; `*` tolerates everything.
fn parse_toleration(s: &str) -> Result<serde_json::Value, String> {
    if s == "*" {
        return Ok(serde_json::json!({ "operator": "Exists" }));
    }
    let (taint, effect) = match s.rsplit_once(':') {
        Some((t, e)) => (t, Some(e)),
        None => (s, None),
    };
    if let Some(e) = effect
        && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e)
    {
        return Err(format!(
            "effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let mut t = match taint.split_once('=') {
        Some((k, v)) => serde_json::json!({ "key": k, "operator": "Equal", "value": v }),
        None if !taint.is_empty() => serde_json::json!({ "key": taint, "operator": "Exists" }),
        None => return Err("a toleration needs a taint key, or `*`".into()),
    };
    if let Some(e) = effect {
        t["effect"] = serde_json::json!(e);
    }
    Ok(t)
}

impl InitArgs {
    fn overrides(&self) -> AgentConfig {
        AgentConfig {
            namespace: self.namespace.clone(),
            image: self.image.clone(),
            image_pull_policy: self.image_pull_policy.clone(),
            docker_socket: self.docker_socket.clone(),
            containerd_socket: self.containerd_socket.clone(),
            node_selector: (!self.node_selector.is_empty()).then(|| {
                self.node_selector
                    .iter()
                    .cloned()
                    .collect::<BTreeMap<_, _>>()
            }),
            tolerations: (!self.tolerations.is_empty()).then(|| self.tolerations.clone()),
            ..AgentConfig::default()
        }
    }
}

/// The agent settings: defaults < `[agent]` in the config files < flags.
pub(super) fn agent_settings(ctx: &Context, flags: &AgentConfig) -> Result<AgentSettings, Error> {
    let loaded = crate::config::load(&ctx.load_options(None))?;
    Ok(flags.apply(loaded.settings.agent.apply(AgentSettings::default())))
}

pub(super) async fn run(ctx: &Context, args: InitArgs) -> Result<(), Error> {
    let settings = agent_settings(ctx, &args.overrides())?;
    if args.dry_run {
        let manifests = render(&AgentSettings {
            api_key: new_api_key(),
            ..settings
        })
        .map_err(crate::cluster::ClusterError::from)?;
        print(&to_yaml_stream(&manifests));
        return Ok(());
    }
    check_local_syncthing(ctx);
    let cluster = ctx.cluster().await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!(
        "applying the agent to namespace {} ({})",
        settings.namespace, cluster.context
    ));
    let namespace = settings.namespace.clone();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let on_progress = {
        let bar = bar.clone();
        let lines = lines.clone();
        move |p: Progress| match p {
            Progress::Applied(object, outcome) => {
                let word = match outcome {
                    Outcome::Created => "created",
                    Outcome::Updated => "updated",
                    Outcome::Unchanged => "unchanged",
                    Outcome::Outdated => "outdated",
                };
                lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{word:>10}  {object}"));
            }
            Progress::Rollout { ready, desired } => {
                bar.set_message(format!(
                    "waiting for the agent pods: {ready} of {desired} ready"
                ));
            }
        }
    };
    let report = init(
        &cluster,
        settings,
        args.upgrade,
        Duration::from_secs(args.timeout),
        &on_progress,
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    let mut out: String = lines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!(
        "The ksync agent is ready on {} of {} nodes (namespace {namespace}, context {}).\n",
        report.ready.0, report.ready.1, cluster.context
    ));
    if report.objects.iter().any(|(_, o)| *o == Outcome::Outdated) {
        out.push_str("Objects marked outdated differ from what this ksync installs; run `ksync init --upgrade` to update them.\n");
    }
    print(&out);
    Ok(())
}

/// Warns (without failing) when the local Syncthing is missing or too old.
fn check_local_syncthing(ctx: &Context) {
    let configured = crate::config::load(&ctx.load_options(None))
        .ok()
        .and_then(|l| {
            l.settings
                .syncthing
                .map(|s| std::path::PathBuf::from(s.value))
        });
    if let Err(e) = crate::syncthing::SyncthingBinary::find(
        ctx.env.get("KSYNC_SYNCTHING").map(String::as_str),
        configured.as_deref(),
        ctx.env.get("PATH").map(String::as_str),
    ) {
        let warning = crate::diagnostic::Problem::warning("init::syncthing", e.to_string())
            .with_help(crate::syncthing::INSTALL_HELP);
        super::warn_all([&warning]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations() {
        assert_eq!(
            parse_toleration("*").expect("all"),
            serde_json::json!({"operator": "Exists"})
        );
        assert_eq!(
            parse_toleration("gpu=true:NoSchedule").expect("full"),
            serde_json::json!({"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"})
        );
        assert_eq!(
            parse_toleration("dedicated").expect("key"),
            serde_json::json!({"key": "dedicated", "operator": "Exists"})
        );
        assert!(parse_toleration("gpu:Sometimes").is_err());
    }
}
