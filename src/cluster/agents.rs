//! The ksync agent pods: one per node, found by label and `spec.nodeName`.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::{Cluster, ClusterError};
use crate::agent::COMPONENT;

/// An agent pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPod {
    /// Pod name.
    pub name: String,
    /// Its node.
    pub node: String,
    /// Running, ready and not terminating.
    pub ready: bool,
}

/// The label selector of agent pods.
pub fn selector() -> String {
    format!("{}={}", COMPONENT.0, COMPONENT.1)
}

fn agent_of(pod: &Pod) -> AgentPod {
    let ready = pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
    AgentPod {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        ready,
    }
}

/// Every agent pod in `namespace`.
pub async fn list(cluster: &Cluster, namespace: &str) -> Result<Vec<AgentPod>, ClusterError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let pods = api
        .list(&ListParams::default().labels(&selector()))
        .await
        .map_err(|e| cluster.api_error(format!("listing agent pods in {namespace}"), e))?;
    Ok(pods.items.iter().map(agent_of).collect())
}

/// The ready agent pod on `node`, waiting up to `timeout` while one starts or rolls.
pub async fn ready_on(
    cluster: &Cluster,
    namespace: &str,
    node: &str,
    timeout: Duration,
) -> Result<String, ClusterError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let config = watcher::Config::default()
        .labels(&selector())
        .fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut last_seen: Option<AgentPod> = None;
    let wait = async {
        while let Some(event) = events.next().await {
            let pods = match event {
                Ok(Event::Apply(pod) | Event::InitApply(pod)) => vec![pod],
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "agent watch interrupted; retrying");
                    continue;
                }
            };
            for pod in pods {
                let agent = agent_of(&pod);
                if agent.ready {
                    return Some(agent.name);
                }
                last_seen = Some(agent);
            }
        }
        None
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Some(name)) => Ok(name),
        _ => Err(ClusterError::NoAgent {
            node: node.to_string(),
            reason: match last_seen {
                Some(agent) => format!("agent pod {} is not ready", agent.name),
                None => format!("no agent pod in namespace {namespace} runs there"),
            },
        }),
    }
}
