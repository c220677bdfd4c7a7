//! Which containers a spec targets, as a stream: appeared, changed (restarted, rescheduled),
//! gone.
//!
//! Built on `kube::runtime::watcher` with backoff: a watch that times out, breaks or is
//! told its resource version expired (410) is resumed or relisted, never ended. After a
//! relist, pods that vanished meanwhile are reported gone.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::spec::Target;

/// One running container a spec targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetContainer {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID (changes when a pod of the same name is recreated).
    pub pod_uid: String,
    /// Node it runs on.
    pub node: String,
    /// Container name.
    pub container: String,
    /// Container ID as in the pod status (`containerd://…`); changes on every restart.
    pub container_id: String,
    /// Restarts so far.
    pub restart_count: i32,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub annotations: BTreeMap<String, String>,
}

impl TargetContainer {
    /// `namespace/pod`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.pod)
    }

    /// The template context of per-container spec fields.
    pub fn template_context(&self) -> crate::template::ContainerContext {
        crate::template::ContainerContext {
            pod: crate::template::PodContext {
                name: self.pod.clone(),
                namespace: self.namespace.clone(),
                labels: self.labels.clone(),
                annotations: self.annotations.clone(),
            },
            node: self.node.clone(),
            container: self.container.clone(),
        }
    }
}

/// What happened to a spec's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// A matching container is running (first seen, or back after being gone).
    Appeared(TargetContainer),
    /// A container already reported now has another ID or node (it restarted or its pod was
    /// recreated elsewhere).
    Changed {
        /// Before.
        old: TargetContainer,
        /// Now.
        new: TargetContainer,
    },
    /// A container stopped running, or its pod was deleted or stopped matching.
    Gone {
        /// The last state reported.
        last: TargetContainer,
        /// Why, for people.
        reason: String,
    },
    /// A matching pod has no container by the spec's name.
    NoSuchContainer {
        /// `namespace/pod`.
        pod: String,
        /// The name asked for.
        wanted: String,
        /// The pod's containers.
        available: Vec<String>,
    },
}

/// Watches the pods `target` selects in `namespace` and reports their container (by name,
/// else the pod's first container in spec order).
pub fn watch_targets(
    client: kube::Client,
    namespace: &str,
    target: &Target,
    container: Option<&str>,
) -> impl Stream<Item = ContainerEvent> + Send + 'static {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let config = match target {
        Target::Pod(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
        Target::Selector(selector) => watcher::Config::default().labels(&selector.to_string()),
    };
    let wanted = container.map(str::to_string);
    let mut tracker = Tracker::default();
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(event) => Some(event),
                Err(e) => {
                    // The backoff retries; say why the watch is not current meanwhile.
                    tracing::warn!(error = %e, "pod watch interrupted; retrying");
                    None
                }
            }
        })
        .flat_map(move |event| futures::stream::iter(tracker.apply(event, wanted.as_deref())))
}

/// Turns watcher events into container events, remembering what was reported.
#[derive(Debug, Default)]
struct Tracker {
    reported: HashMap<String, TargetContainer>,
    /// Pods seen during a relist (`Init`..`InitDone`).
    relisted: Option<HashSet<String>>,
    /// Pods whose missing container was already reported.
    unmatched: HashSet<String>,
}

impl Tracker {
    fn apply(&mut self, event: Event<Pod>, wanted: Option<&str>) -> Vec<ContainerEvent> {
        match event {
            Event::Init => {
                self.relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(pod) => {
                if let Some(seen) = &mut self.relisted {
                    seen.insert(pod_key(&pod));
                }
                self.update(&pod, wanted)
            }
            Event::InitDone => {
                let seen = self.relisted.take().unwrap_or_default();
                let vanished: Vec<String> = self
                    .reported
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                vanished
                    .into_iter()
                    .filter_map(|key| self.reported.remove(&key))
                    .map(|last| ContainerEvent::Gone {
                        last,
                        reason: "the pod no longer exists".into(),
                    })
                    .collect()
            }
            Event::Apply(pod) => self.update(&pod, wanted),
            Event::Delete(pod) => {
                let key = pod_key(&pod);
                self.unmatched.remove(&key);
                self.reported
                    .remove(&key)
                    .map(|last| ContainerEvent::Gone {
                        last,
                        reason: "the pod was deleted".into(),
                    })
                    .into_iter()
                    .collect()
            }
        }
    }

    fn update(&mut self, pod: &Pod, wanted: Option<&str>) -> Vec<ContainerEvent> {
        let key = pod_key(pod);
        let now = match running_container(pod, wanted) {
            Ok(now) => {
                self.unmatched.remove(&key);
                now
            }
            Err(available) => {
                let mut events = Vec::new();
                if self.unmatched.insert(key.clone()) {
                    events.push(ContainerEvent::NoSuchContainer {
                        pod: key.clone(),
                        wanted: wanted.unwrap_or_default().to_string(),
                        available,
                    });
                }
                if let Some(last) = self.reported.remove(&key) {
                    events.push(ContainerEvent::Gone {
                        last,
                        reason: "the container is no longer in the pod".into(),
                    });
                }
                return events;
            }
        };
        match (self.reported.get(&key).cloned(), now) {
            (None, Some(new)) => {
                self.reported.insert(key, new.clone());
                vec![ContainerEvent::Appeared(new)]
            }
            (Some(old), Some(new)) => {
                if old.container_id != new.container_id
                    || old.node != new.node
                    || old.pod_uid != new.pod_uid
                {
                    self.reported.insert(key, new.clone());
                    vec![ContainerEvent::Changed { old, new }]
                } else {
                    // Labels or annotations may change the per-container paths.
                    if old != new {
                        self.reported.insert(key, new);
                    }
                    Vec::new()
                }
            }
            (Some(last), None) => {
                self.reported.remove(&key);
                vec![ContainerEvent::Gone {
                    last,
                    reason: not_running_reason(pod),
                }]
            }
            (None, None) => Vec::new(),
        }
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The pod's target container if it is running; `Err` with the pod's container names when
/// it has none of the wanted name.
fn running_container(
    pod: &Pod,
    wanted: Option<&str>,
) -> Result<Option<TargetContainer>, Vec<String>> {
    let spec_containers: Vec<String> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let name = match wanted {
        Some(w) if spec_containers.iter().any(|c| c == w) => w.to_string(),
        Some(_) => return Err(spec_containers),
        None => match spec_containers.first() {
            Some(first) => first.clone(),
            None => return Ok(None),
        },
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(status) = &pod.status else {
        return Ok(None);
    };
    if status.phase.as_deref() != Some("Running") {
        return Ok(None);
    }
    let Some(cs) = status
        .container_statuses
        .as_ref()
        .and_then(|all| all.iter().find(|c| c.name == name))
    else {
        return Ok(None);
    };
    let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
    let Some(container_id) = cs.container_id.clone().filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(None);
    };
    if !running {
        return Ok(None);
    }
    Ok(Some(TargetContainer {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        node,
        container: name,
        container_id,
        restart_count: cs.restart_count,
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
    }))
}

fn not_running_reason(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "the pod is terminating".into();
    }
    match pod.status.as_ref().and_then(|s| s.phase.clone()) {
        Some(phase) if phase != "Running" => format!("the pod is {phase}"),
        _ => "the container is not running".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, id: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "dev", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "app"}, {"name": "sidecar"}]},
            "status": {
                "phase": phase,
                "containerStatuses": [
                    {"name": "sidecar", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                     "containerID": "containerd://side", "state": {"running": {}}},
                    {"name": "app", "ready": true, "restartCount": 1, "image": "x", "imageID": "",
                     "containerID": id, "state": if id.is_some() { serde_json::json!({"running": {}}) } else { serde_json::json!({"waiting": {"reason": "ContainerCreating"}}) }}
                ]
            }
        }))
        .expect("pod")
    }

    #[test]
    fn first_container_in_spec_order_and_restarts() {
        let mut t = Tracker::default();
        assert!(
            t.apply(Event::Apply(pod("web-0", "n1", None, "Pending")), None)
                .is_empty()
        );
        let appeared = t.apply(
            Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
            None,
        );
        let [ContainerEvent::Appeared(c)] = appeared.as_slice() else {
            panic!("{appeared:?}")
        };
        assert_eq!(
            (c.container.as_str(), c.container_id.as_str()),
            ("app", "containerd://a")
        );
        assert!(
            t.apply(
                Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
                None
            )
            .is_empty()
        );
        let changed = t.apply(
            Event::Apply(pod("web-0", "n1", Some("containerd://b"), "Running")),
            None,
        );
        assert!(
            matches!(changed.as_slice(), [ContainerEvent::Changed { new, .. }] if new.container_id == "containerd://b")
        );
        let gone = t.apply(
            Event::Delete(pod("web-0", "n1", Some("containerd://b"), "Running")),
            None,
        );
        assert!(matches!(gone.as_slice(), [ContainerEvent::Gone { .. }]));
    }

    #[test]
    fn named_container_and_missing_names() {
        let mut t = Tracker::default();
        let events = t.apply(
            Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
            Some("sidecar"),
        );
        assert!(
            matches!(events.as_slice(), [ContainerEvent::Appeared(c)] if c.container_id == "containerd://side")
        );
        let mut t = Tracker::default();
        let events = t.apply(
            Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
            Some("nginx"),
        );
        assert!(
            matches!(events.as_slice(), [ContainerEvent::NoSuchContainer { available, .. }] if available == &["app", "sidecar"])
        );
        assert!(
            t.apply(
                Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
                Some("nginx")
            )
            .is_empty(),
            "reported once"
        );
    }

    #[test]
    fn relists_report_pods_that_vanished_meanwhile() {
        let mut t = Tracker::default();
        t.apply(
            Event::Apply(pod("web-0", "n1", Some("containerd://a"), "Running")),
            None,
        );
        t.apply(
            Event::Apply(pod("web-1", "n2", Some("containerd://c"), "Running")),
            None,
        );
        t.apply(Event::Init, None);
        t.apply(
            Event::InitApply(pod("web-1", "n2", Some("containerd://c"), "Running")),
            None,
        );
        let done = t.apply(Event::InitDone, None);
        assert!(
            matches!(done.as_slice(), [ContainerEvent::Gone { last, .. }] if last.pod == "web-0")
        );
        // Rescheduled to another node with a new pod UID.
        let mut moved = pod("web-1", "n3", Some("containerd://d"), "Running");
        moved.metadata.uid = Some("uid-new".into());
        let events = t.apply(Event::Apply(moved), None);
        assert!(
            matches!(events.as_slice(), [ContainerEvent::Changed { old, new }] if old.node == "n2" && new.node == "n3")
        );
    }
}
