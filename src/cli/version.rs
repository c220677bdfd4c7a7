//! `ksync version`: what this build is, and what the agent in the cluster runs.

use clap::Args;
use serde_json::json;

use super::{Output, print};
use crate::error::Error;

/// Arguments of `ksync version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,

    /// Only this ksync; do not ask the cluster.
    #[arg(long)]
    client: bool,
}

/// Facts about this build.
pub(crate) struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub target: &'static str,
    pub radar_protocol: u32,
}

pub(crate) const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("KSYNC_GIT_COMMIT"),
    target: env!("KSYNC_TARGET"),
    radar_protocol: radar_proto::PROTOCOL_VERSION,
};

pub(super) async fn run(ctx: &super::Context, args: VersionArgs) -> Result<(), Error> {
    let b = &BUILD;
    let agent = if args.client {
        None
    } else {
        Some(agent_version(ctx).await)
    };
    match args.output {
        Output::Pretty => {
            let mut out = format!(
                "ksync {}\ncommit          {}\ntarget          {}\nradar protocol  v{}\n",
                b.version, b.commit, b.target, b.radar_protocol
            );
            match &agent {
                Some(Ok(v)) => out.push_str(&format!(
                    "agent           radar {} (protocol v{}, commit {}) on node {}, runtime {} {}\n",
                    v.radar_version, v.protocol_version, v.git_commit, v.node_name, v.runtime_name, v.runtime_version
                )),
                Some(Err(reason)) => out.push_str(&format!("agent           unknown: {reason}\n")),
                None => {}
            }
            print(&out);
        }
        Output::Json => {
            let agent = match &agent {
                Some(Ok(v)) => json!({
                    "radar_version": v.radar_version,
                    "protocol_version": v.protocol_version,
                    "git_commit": v.git_commit,
                    "node": v.node_name,
                    "runtime": v.runtime_name,
                    "runtime_version": v.runtime_version,
                }),
                Some(Err(reason)) => json!({ "error": reason }),
                None => serde_json::Value::Null,
            };
            print(&format!(
                "{}\n",
                json!({
                    "version": b.version,
                    "commit": b.commit,
                    "target": b.target,
                    "radar_protocol": b.radar_protocol,
                    "agent": agent,
                })
            ));
        }
    }
    Ok(())
}

/// What the radar of the first ready agent reports (the version command never fails because
/// the cluster is away: it says why instead).
async fn agent_version(
    ctx: &super::Context,
) -> Result<radar_proto::v1::GetVersionResponse, String> {
    use crate::cluster::{agents, radar::Radar, tunnel::NodeTunnel};
    let ask = async {
        let settings = super::init::agent_settings(ctx, &crate::agent::AgentConfig::default())
            .map_err(|e| e.to_string())?;
        let cluster = ctx.cluster().await.map_err(|e| e.to_string())?;
        let pods = agents::list(&cluster, &settings.namespace)
            .await
            .map_err(|e| e.to_string())?;
        let pod = pods.iter().find(|p| p.ready).ok_or_else(|| {
            format!(
                "no ready agent in namespace {} (run `ksync init`)",
                settings.namespace
            )
        })?;
        let tunnel = NodeTunnel::open(&cluster, &settings.namespace, &pod.node)
            .await
            .map_err(|e| e.to_string())?;
        let radar = Radar::connect(tunnel.radar, &pod.node)
            .await
            .map_err(|e| e.to_string())?;
        Ok(radar.version)
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), ask)
        .await
        .unwrap_or_else(|_| Err("the cluster did not answer within 15 s".into()))
}
