//! `ksync doctor`: ordered checks, each with a clear fix when it fails. A check that needs
//! an earlier one to pass is skipped when that one failed.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::client::{Cluster, ClusterOptions};
use super::radar::Radar;
use super::tunnel::NodeTunnel;
use super::{ClusterError, agents};
use crate::syncthing::SyncthingBinary;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Worth knowing; ksync works.
    Warn,
    /// ksync cannot work until it is fixed.
    Fail,
    /// Not run, because an earlier check failed.
    Skipped,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (for warnings and failures).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::fail(name, detail, fix)
        }
    }
    fn skipped(name: &'static str, needs: &str) -> Check {
        Check {
            name,
            status: Status::Skipped,
            detail: format!("skipped: needs {needs}"),
            fix: None,
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// How to reach the cluster.
    pub cluster: ClusterOptions,
    /// The agent's namespace and name.
    pub agent_namespace: String,
    /// The agent DaemonSet's name.
    pub agent_name: String,
    /// The ClusterRole for ksync's users.
    pub user_cluster_role: String,
    /// Namespaces the specs use (`None` in the list stands for the context's).
    pub spec_namespaces: Vec<Option<String>>,
    /// The Syncthing binary ksync would run (`KSYNC_SYNCTHING`, the configured one).
    pub syncthing: (Option<String>, Option<std::path::PathBuf>),
}

/// Runs every check in order.
pub async fn run(options: &DoctorOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let cluster = match Cluster::connect(&options.cluster).await {
        Ok(cluster) => {
            checks.push(Check::pass(
                "kubeconfig",
                format!("context {} ({})", cluster.context, cluster.server),
            ));
            Some(cluster)
        }
        Err(e) => {
            checks.push(Check::fail("kubeconfig", e.to_string(), help_of(&e)));
            None
        }
    };
    let reachable = match &cluster {
        None => {
            checks.push(Check::skipped("API server", "a kubeconfig"));
            None
        }
        Some(cluster) => {
            match tokio::time::timeout(Duration::from_secs(10), cluster.server_version()).await {
                Ok(Ok(version)) => {
                    checks.push(Check::pass(
                        "API server",
                        format!("{version} at {}", cluster.server),
                    ));
                    Some(cluster)
                }
                Ok(Err(e)) => {
                    checks.push(Check::fail("API server", e.to_string(), help_of(&e)));
                    None
                }
                Err(_) => {
                    checks.push(Check::fail(
                        "API server",
                        format!("{} did not answer within 10 s", cluster.server),
                        "check your network and that the cluster is running",
                    ));
                    None
                }
            }
        }
    };
    let Some(cluster) = reachable else {
        for name in ["permissions", "agent", "radar", "node runtime"] {
            checks.push(Check::skipped(name, "the API server"));
        }
        checks.push(local_syncthing(options));
        return checks;
    };

    checks.push(permissions(cluster, options).await);

    let agent = agent_ready(cluster, options).await;
    let agent_ok = agent.status != Status::Fail;
    checks.push(agent);
    if agent_ok {
        let (radar, runtime) = radar_checks(cluster, options).await;
        checks.push(radar);
        checks.push(runtime);
    } else {
        checks.push(Check::skipped("radar", "a ready agent"));
        checks.push(Check::skipped("node runtime", "a ready agent"));
    }
    checks.push(local_syncthing(options));
    checks
}

fn help_of(e: &ClusterError) -> String {
    miette::Diagnostic::help(e).map_or_else(|| "see the error above".to_string(), |h| h.to_string())
}

async fn allowed(
    cluster: &Cluster,
    namespace: Option<&str>,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: Option<&str>,
) -> Result<bool, ClusterError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: namespace.map(str::to_string),
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                subresource: subresource.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| cluster.api_error("asking for permissions (SelfSubjectAccessReview)", e))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// One permission on pods ksync needs.
struct Need {
    namespace: String,
    verb: &'static str,
    subresource: Option<&'static str>,
}

impl Need {
    fn pods(namespace: &str, verb: &'static str, subresource: Option<&'static str>) -> Need {
        Need {
            namespace: namespace.to_string(),
            verb,
            subresource,
        }
    }
}

/// What ksync needs to sync (watch pods, port-forward to agents) and to install the agent.
async fn permissions(cluster: &Cluster, options: &DoctorOptions) -> Check {
    let agent_ns = options.agent_namespace.as_str();
    let mut namespaces: Vec<String> = options
        .spec_namespaces
        .iter()
        .map(|ns| cluster.namespace_for(ns.as_deref()))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut needed: Vec<Need> = Vec::new();
    for ns in &namespaces {
        for verb in ["get", "list", "watch"] {
            needed.push(Need::pods(ns, verb, None));
        }
    }
    needed.push(Need::pods(agent_ns, "list", None));
    needed.push(Need::pods(agent_ns, "create", Some("portforward")));
    let mut missing = Vec::new();
    for need in &needed {
        match allowed(
            cluster,
            Some(&need.namespace),
            need.verb,
            "",
            "pods",
            need.subresource,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => missing.push(format!(
                "{} pods{} in namespace {}",
                need.verb,
                need.subresource
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default(),
                need.namespace
            )),
            Err(e) => return Check::fail("permissions", e.to_string(), help_of(&e)),
        }
    }
    if !missing.is_empty() {
        return Check::fail(
            "permissions",
            format!("you may not {}", missing.join("; ")),
            format!(
                "ask a cluster admin to bind the roles `ksync init` creates: `kubectl create clusterrolebinding ksync-$USER --clusterrole={cluster_role} --user=$USER` and `kubectl -n {agent_ns} create rolebinding ksync-$USER --role={name}-user --user=$USER`",
                cluster_role = options.user_cluster_role,
                name = options.agent_name
            ),
        );
    }
    // Installing needs more; only worth a warning when someone else installs the agent.
    let mut install_missing = Vec::new();
    for (verb, group, resource, ns) in [
        ("patch", "apps", "daemonsets", Some(agent_ns)),
        ("patch", "", "secrets", Some(agent_ns)),
        ("patch", "rbac.authorization.k8s.io", "clusterroles", None),
        ("patch", "", "namespaces", None),
    ] {
        if let Ok(false) = allowed(cluster, ns, verb, group, resource, None).await {
            install_missing.push(format!("{verb} {resource}"));
        }
    }
    if install_missing.is_empty() {
        Check::pass(
            "permissions",
            format!(
                "watch pods in {}; port-forward to agents; install the agent",
                namespaces.join(", ")
            ),
        )
    } else {
        Check::warn(
            "permissions",
            format!(
                "enough to sync, but not to install the agent ({} missing)",
                install_missing.join(", ")
            ),
            "ask a cluster admin to run `ksync init`",
        )
    }
}

async fn agent_ready(cluster: &Cluster, options: &DoctorOptions) -> Check {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), &options.agent_namespace);
    let ds = match api.get_opt(&options.agent_name).await {
        Ok(Some(ds)) => ds,
        Ok(None) => {
            return Check::fail(
                "agent",
                format!(
                    "no agent DaemonSet {} in namespace {}",
                    options.agent_name, options.agent_namespace
                ),
                "install it with `ksync init`",
            );
        }
        Err(e) => {
            let e = cluster.api_error("reading the agent DaemonSet", e);
            return Check::fail("agent", e.to_string(), help_of(&e));
        }
    };
    let pods = match agents::list(cluster, &options.agent_namespace).await {
        Ok(pods) => pods,
        Err(e) => return Check::fail("agent", e.to_string(), help_of(&e)),
    };
    let desired = ds.status.as_ref().map_or(0, |s| s.desired_number_scheduled);
    let not_ready: Vec<String> = pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| format!("{} (pod {})", p.node, p.name))
        .collect();
    let ready = pods.iter().filter(|p| p.ready).count();
    if !not_ready.is_empty() || i32::try_from(ready).unwrap_or(i32::MAX) < desired {
        return Check::fail(
            "agent",
            format!(
                "{ready} of {desired} agent pods ready; not ready on {}",
                if not_ready.is_empty() {
                    "nodes without a pod yet".to_string()
                } else {
                    not_ready.join(", ")
                }
            ),
            format!(
                "see why with `kubectl -n {ns} describe pod POD` and `kubectl -n {ns} logs POD -c radar`; `ksync init --upgrade` repairs a changed install",
                ns = options.agent_namespace
            ),
        );
    }
    Check::pass("agent", format!("ready on {ready} of {desired} nodes"))
}

async fn radar_checks(cluster: &Cluster, options: &DoctorOptions) -> (Check, Check) {
    let pods = agents::list(cluster, &options.agent_namespace)
        .await
        .unwrap_or_default();
    let mut runtimes = Vec::new();
    for pod in pods.iter().filter(|p| p.ready) {
        let tunnel = match NodeTunnel::open(cluster, &options.agent_namespace, &pod.node).await {
            Ok(t) => t,
            Err(e) => {
                let fix = help_of(&e);
                return (
                    Check::fail("radar", e.to_string(), fix),
                    Check::skipped("node runtime", "radar"),
                );
            }
        };
        match Radar::connect(tunnel.radar, &pod.node).await {
            Ok(radar) => runtimes.push((pod.node.clone(), radar.version)),
            Err(e) => {
                let fix = help_of(&e);
                return (
                    Check::fail("radar", e.to_string(), fix),
                    Check::skipped("node runtime", "radar"),
                );
            }
        }
    }
    let versions: Vec<String> = runtimes
        .iter()
        .map(|(node, v)| {
            format!(
                "{node}: radar {} (protocol v{})",
                v.radar_version, v.protocol_version
            )
        })
        .collect();
    let radar = Check::pass("radar", versions.join("; "));
    let unknown: Vec<&str> = runtimes
        .iter()
        .filter(|(_, v)| v.runtime_name == "unknown")
        .map(|(node, _)| node.as_str())
        .collect();
    let described: Vec<String> = runtimes
        .iter()
        .map(|(node, v)| {
            format!("{node}: {} {}", v.runtime_name, v.runtime_version)
                .trim_end()
                .to_string()
        })
        .collect();
    let runtime = if unknown.is_empty() {
        Check::pass("node runtime", described.join("; "))
    } else {
        Check::warn(
            "node runtime",
            format!("radar found no known runtime on {}", unknown.join(", ")),
            "ksync still syncs through /proc; mount the runtime's socket into the agent (`ksync init --docker-socket` or `--containerd-socket`) for restarts that keep files",
        )
    };
    (radar, runtime)
}

fn local_syncthing(options: &DoctorOptions) -> Check {
    match SyncthingBinary::find(
        options.syncthing.0.as_deref(),
        options.syncthing.1.as_deref(),
        std::env::var("PATH").ok().as_deref(),
    ) {
        Ok(binary) => Check::pass(
            "local Syncthing",
            format!("{} ({})", binary.version, binary.path.display()),
        ),
        Err(e) => {
            let fix = miette::Diagnostic::help(&e).map_or_else(String::new, |h| h.to_string());
            Check::fail("local Syncthing", e.to_string(), fix)
        }
    }
}
