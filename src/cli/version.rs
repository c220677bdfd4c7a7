//! `ksync version`: what this build is. (The agent's version joins it with the cluster
//! commands.)

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

pub(super) fn run(args: VersionArgs) -> Result<(), Error> {
    let b = &BUILD;
    match args.output {
        Output::Pretty => print(&format!(
            "ksync {}\ncommit          {}\ntarget          {}\nradar protocol  v{}\n",
            b.version, b.commit, b.target, b.radar_protocol
        )),
        Output::Json => print(&format!(
            "{}\n",
            json!({
                "version": b.version,
                "commit": b.commit,
                "target": b.target,
                "radar_protocol": b.radar_protocol,
            })
        )),
    }
    Ok(())
}
