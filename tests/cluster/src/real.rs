//! End-to-end suites run against the test cluster by default, and against a real cluster
//! when `KSYNC_E2E_KUBECONFIG` names its kubeconfig (see CONTRIBUTING.md for kind and k3d).
//! A real cluster has no fault switches and no declared workloads: suites that need them
//! skip those steps there.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable naming a real cluster's kubeconfig.
pub const E2E_KUBECONFIG_ENV: &str = "KSYNC_E2E_KUBECONFIG";
/// The environment variable naming the agent image that real cluster can run (default:
/// `ksync/agent:<version>`, as `deploy/build-agent-image.sh` tags it).
pub const E2E_AGENT_IMAGE_ENV: &str = "KSYNC_E2E_AGENT_IMAGE";

/// A real cluster to run end-to-end suites against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealCluster {
    /// Its kubeconfig (current context).
    pub kubeconfig: PathBuf,
    /// The agent image its nodes can run.
    pub agent_image: String,
}

/// The real cluster the environment names, if any.
pub fn real_cluster() -> Option<RealCluster> {
    from_vars(
        std::env::var_os(E2E_KUBECONFIG_ENV),
        std::env::var(E2E_AGENT_IMAGE_ENV).ok(),
    )
}

fn from_vars(kubeconfig: Option<OsString>, image: Option<String>) -> Option<RealCluster> {
    let kubeconfig = kubeconfig.filter(|k| !k.is_empty())?;
    Some(RealCluster {
        kubeconfig: PathBuf::from(kubeconfig),
        agent_image: image
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| format!("ksync/agent:{}", env!("CARGO_PKG_VERSION"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_named_kubeconfig_is_a_real_cluster() {
        assert_eq!(from_vars(None, Some("x".into())), None);
        assert_eq!(from_vars(Some("".into()), None), None);
        let real = from_vars(Some("/k/config".into()), None).expect("real");
        assert_eq!(real.kubeconfig, PathBuf::from("/k/config"));
        assert_eq!(
            real.agent_image,
            format!("ksync/agent:{}", env!("CARGO_PKG_VERSION"))
        );
        let real = from_vars(
            Some("/k/config".into()),
            Some("registry.local/agent:1".into()),
        );
        assert_eq!(real.expect("real").agent_image, "registry.local/agent:1");
    }
}
