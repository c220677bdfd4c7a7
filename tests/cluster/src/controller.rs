//! The simulated controllers: workloads (keeping `replicas` pods, replacing deleted ones),
//! DaemonSets (one pod per matching node, rolled when the template changes, status kept),
//! the garbage collector (pods of a deleted DaemonSet) and the namespace controller
//! (emptying a terminating namespace, then removing it).
//!
//! All of them react to store events; none polls.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::discovery::{RESOURCES, core};
use crate::error::Error;
use crate::spec::Workload;
use crate::state::State;
use crate::store::{EventType, name_of, now};

/// The controllers.
pub(crate) struct Controller {
    state: Arc<State>,
    workloads: Mutex<BTreeMap<(String, String), WorkloadState>>,
}

struct WorkloadState {
    spec: Workload,
    /// Nodes the next new pods go to (a reschedule asks for one).
    placements: VecDeque<String>,
}

/// Marks a pod deleted: the kubelet stops it, then removes the object.
pub(crate) fn mark_pod_deleted(state: &State, ns: &str, name: &str) {
    let _ = state.store.update(core("pods"), ns, name, |pod| {
        if pod["metadata"]["deletionTimestamp"].is_null() {
            let grace = pod["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            pod["metadata"]["deletionTimestamp"] = json!(now());
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        Ok(())
    });
}

fn deleting(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

impl Controller {
    /// Controllers over `state`.
    pub(crate) fn new(state: Arc<State>) -> Arc<Controller> {
        Arc::new(Controller {
            state,
            workloads: Mutex::new(BTreeMap::new()),
        })
    }

    /// Follows store events until `stop`.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut events = self.state.store.subscribe();
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = stop.cancelled() => return,
            };
            match event {
                Ok(event) => {
                    let object = &event.object;
                    match (event.resource.kind, event.kind) {
                        ("Node", kind) => {
                            if kind == EventType::Deleted {
                                self.evict_node(name_of(object).1);
                            }
                            self.reconcile_daemonsets();
                            self.reconcile_workloads();
                        }
                        ("DaemonSet", EventType::Deleted) => self.collect_garbage(object),
                        ("DaemonSet", _) => self.reconcile_daemonset(object),
                        ("Namespace", _) if deleting(object) => {
                            self.finalize_namespace(name_of(object).1);
                        }
                        ("Pod", kind) => {
                            if owner_uid(object).is_some() {
                                self.reconcile_daemonsets();
                            } else {
                                self.reconcile_workload_of(object);
                            }
                            let ns = name_of(object).0;
                            if kind == EventType::Deleted && self.namespace_terminating(ns) {
                                self.finalize_namespace(ns);
                            }
                        }
                        _ => {}
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    self.reconcile_daemonsets();
                    self.reconcile_workloads();
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn workloads(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), WorkloadState>> {
        self.workloads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares (or replaces) a workload and creates its pods.
    pub(crate) fn add_workload(&self, workload: Workload) -> Result<(), Error> {
        workload.check()?;
        let namespaces = core("namespaces");
        if self
            .state
            .store
            .get(namespaces, "", &workload.namespace)
            .is_none()
        {
            self.state.store.create(
                namespaces,
                json!({ "metadata": { "name": workload.namespace }, "spec": { "finalizers": ["kubernetes"] }, "status": { "phase": "Active" } }),
            )?;
        }
        if let Some(node) = &workload.node
            && self.state.store.get(core("nodes"), "", node).is_none()
        {
            return Err(Error::NotFound(format!("node {node}")));
        }
        let key = (workload.namespace.clone(), workload.name.clone());
        let mut workloads = self.workloads();
        workloads.insert(
            key.clone(),
            WorkloadState {
                spec: workload,
                placements: VecDeque::new(),
            },
        );
        self.reconcile_workload(&mut workloads, &key)
    }

    /// Changes a workload's replica count.
    pub(crate) fn scale(&self, ns: &str, name: &str, replicas: usize) -> Result<(), Error> {
        let key = (ns.to_string(), name.to_string());
        let mut workloads = self.workloads();
        let workload = workloads
            .get_mut(&key)
            .ok_or_else(|| Error::NotFound(format!("workload {ns}/{name}")))?;
        workload.spec.replicas = replicas;
        self.reconcile_workload(&mut workloads, &key)
    }

    /// Deletes `pod` of a workload and has its replacement put on `node`.
    pub(crate) fn reschedule(&self, ns: &str, pod: &str, node: &str) -> Result<(), Error> {
        if self.state.store.get(core("nodes"), "", node).is_none() {
            return Err(Error::NotFound(format!("node {node}")));
        }
        let object = self
            .state
            .store
            .get(core("pods"), ns, pod)
            .ok_or_else(|| Error::NotFound(format!("pod {ns}/{pod}")))?;
        let mut workloads = self.workloads();
        let (key, workload) = workloads
            .iter_mut()
            .find(|(_, w)| owns(&w.spec, &object))
            .ok_or_else(|| Error::NotFound(format!("a workload owning pod {ns}/{pod}")))?;
        let key = key.clone();
        workload.placements.push_back(node.to_string());
        mark_pod_deleted(&self.state, ns, pod);
        self.reconcile_workload(&mut workloads, &key)
    }

    fn reconcile_workload_of(&self, pod: &Value) {
        let mut workloads = self.workloads();
        let key = workloads
            .iter()
            .find(|(_, w)| owns(&w.spec, pod))
            .map(|(k, _)| k.clone());
        if let Some(key) = key
            && let Err(e) = self.reconcile_workload(&mut workloads, &key)
        {
            tracing::debug!("workload {key:?}: {e}");
        }
    }

    fn reconcile_workloads(&self) {
        let mut workloads = self.workloads();
        let keys: Vec<_> = workloads.keys().cloned().collect();
        for key in keys {
            if let Err(e) = self.reconcile_workload(&mut workloads, &key) {
                tracing::debug!("workload {key:?}: {e}");
            }
        }
    }

    /// Creates or deletes pods until the workload has `replicas` live ones.
    fn reconcile_workload(
        &self,
        workloads: &mut BTreeMap<(String, String), WorkloadState>,
        key: &(String, String),
    ) -> Result<(), Error> {
        let Some(workload) = workloads.get_mut(key) else {
            return Ok(());
        };
        if self.namespace_terminating(&workload.spec.namespace) {
            workloads.remove(key);
            return Ok(());
        }
        let pods = core("pods");
        let (all, _) = self.state.store.list(pods, Some(&workload.spec.namespace));
        let live: Vec<_> = all
            .iter()
            .filter(|p| owns(&workload.spec, p) && !deleting(p))
            .collect();
        let nodes = self.node_names();
        if nodes.is_empty() {
            return Ok(());
        }
        let mut per_node: HashMap<&str, usize> = nodes.iter().map(|n| (n.as_str(), 0)).collect();
        for p in &live {
            if let Some(n) = p["spec"]["nodeName"].as_str()
                && let Some(count) = per_node.get_mut(n)
            {
                *count += 1;
            }
        }
        for _ in live.len()..workload.spec.replicas {
            let node = match (workload.placements.pop_front(), &workload.spec.node) {
                (Some(node), _) => node,
                (None, Some(node)) => node.clone(),
                (None, None) => nodes
                    .iter()
                    .min_by_key(|n| (per_node.get(n.as_str()).copied().unwrap_or(0), (*n).clone()))
                    .cloned()
                    .unwrap_or_default(),
            };
            if let Some(count) = per_node.get_mut(node.as_str()) {
                *count += 1;
            }
            let name = format!("{}-{}", workload.spec.name, crate::random::suffix(5));
            let mut pod = workload.spec.pod(&name, &node);
            pod["metadata"]["annotations"] = json!({ WORKLOAD_ANNOTATION: workload.spec.name });
            self.state.store.create(pods, pod)?;
        }
        for extra in live.iter().skip(workload.spec.replicas) {
            let (ns, name) = name_of(extra);
            mark_pod_deleted(&self.state, ns, name);
        }
        Ok(())
    }

    fn node_names(&self) -> Vec<String> {
        let (nodes, _) = self.state.store.list(core("nodes"), None);
        nodes.iter().map(|n| name_of(n).1.to_string()).collect()
    }

    fn namespace_terminating(&self, ns: &str) -> bool {
        self.state
            .store
            .get(core("namespaces"), "", ns)
            .is_some_and(|n| deleting(&n))
    }

    fn reconcile_daemonsets(&self) {
        let (all, _) = self.state.store.list(core("daemonsets"), None);
        for ds in all {
            self.reconcile_daemonset(&ds);
        }
    }

    /// One pod per matching node with the current template; status counts.
    fn reconcile_daemonset(&self, ds: &Value) {
        let daemonsets = core("daemonsets");
        let pods = core("pods");
        let (ns, name) = name_of(ds);
        // Work on the stored version: the event may be stale.
        let Some(ds) = self.state.store.get(daemonsets, ns, name) else {
            return;
        };
        if deleting(&ds) || self.namespace_terminating(ns) {
            return;
        }
        let uid = ds["metadata"]["uid"].as_str().unwrap_or_default();
        let template = &ds["spec"]["template"];
        let hash = template_hash(template);
        let selector = template["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let (nodes, _) = self.state.store.list(core("nodes"), None);
        let eligible: Vec<&str> = nodes
            .iter()
            .filter(|n| {
                selector
                    .iter()
                    .all(|(k, v)| n["metadata"]["labels"][k] == *v)
            })
            .map(|n| name_of(n).1)
            .collect();
        let (in_ns, _) = self.state.store.list(pods, Some(ns));
        let owned: Vec<_> = in_ns.iter().filter(|p| owner_uid(p) == Some(uid)).collect();
        for pod in &owned {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
            let current = pod["metadata"]["labels"]["controller-revision-hash"] == hash.as_str();
            if (!current || !eligible.contains(&node)) && !deleting(pod) {
                mark_pod_deleted(&self.state, ns, name_of(pod).1);
            }
        }
        for node in &eligible {
            // A node's old pod must be gone before its new one starts: they share the node's
            // agent ports (maxSurge 0, as the agent's RollingUpdate has).
            let on_node = owned.iter().any(|p| p["spec"]["nodeName"] == *node);
            if !on_node {
                let pod = daemonset_pod(&ds, node, &hash);
                if let Err(e) = self.state.store.create(pods, pod) {
                    tracing::warn!("DaemonSet {ns}/{name}: {e}");
                }
            }
        }
        // Status, from the pods now.
        let (in_ns, _) = self.state.store.list(pods, Some(ns));
        let owned: Vec<_> = in_ns
            .iter()
            .filter(|p| owner_uid(p) == Some(uid) && !deleting(p))
            .collect();
        let ready = |p: &Value| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        };
        let updated: Vec<_> = owned
            .iter()
            .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == hash.as_str())
            .collect();
        let status = json!({
            "desiredNumberScheduled": eligible.len(),
            "currentNumberScheduled": owned.len(),
            "numberMisscheduled": 0,
            "numberReady": owned.iter().filter(|p| ready(p)).count(),
            "updatedNumberScheduled": updated.len(),
            "numberAvailable": updated.iter().filter(|p| ready(p)).count(),
            "numberUnavailable": eligible.len().saturating_sub(updated.iter().filter(|p| ready(p)).count()),
            "observedGeneration": ds["metadata"]["generation"],
        });
        let _ = self.state.store.update(daemonsets, ns, name, |ds| {
            ds["status"] = status;
            Ok(())
        });
    }

    /// Pods whose controlling DaemonSet is gone are deleted.
    fn collect_garbage(&self, owner: &Value) {
        let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
        let (all, _) = self.state.store.list(core("pods"), None);
        for pod in all.iter().filter(|p| owner_uid(p) == Some(uid)) {
            let (ns, name) = name_of(pod);
            mark_pod_deleted(&self.state, ns, name);
        }
    }

    /// A node went: its pods go too.
    fn evict_node(&self, node: &str) {
        let (all, _) = self.state.store.list(core("pods"), None);
        for pod in all.iter().filter(|p| p["spec"]["nodeName"] == node) {
            let (ns, name) = name_of(pod);
            mark_pod_deleted(&self.state, ns, name);
        }
    }

    /// Deletes everything in a terminating namespace; removes it once its pods are gone.
    fn finalize_namespace(&self, ns: &str) {
        self.workloads().retain(|(w_ns, _), _| w_ns != ns);
        for resource in RESOURCES.iter().filter(|r| r.namespaced && r.kind != "Pod") {
            let (objects, _) = self.state.store.list(resource, Some(ns));
            for object in objects {
                let _ = self.state.store.delete(resource, ns, name_of(&object).1);
            }
        }
        let (pods, _) = self.state.store.list(core("pods"), Some(ns));
        for pod in &pods {
            mark_pod_deleted(&self.state, ns, name_of(pod).1);
        }
        if pods.is_empty() {
            let _ = self.state.store.delete(core("namespaces"), "", ns);
        }
    }
}

/// Annotation naming the workload of a pod.
const WORKLOAD_ANNOTATION: &str = "test-cluster.ksync.io/workload";

fn owns(workload: &Workload, pod: &Value) -> bool {
    let meta = &pod["metadata"];
    meta["namespace"] == workload.namespace.as_str()
        && meta["annotations"][WORKLOAD_ANNOTATION] == workload.name.as_str()
}

/// A short, stable hash of a pod template.
fn template_hash(template: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

fn daemonset_pod(ds: &Value, node: &str, hash: &str) -> Value {
    let (ns, name) = name_of(ds);
    let template = &ds["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["controller-revision-hash"] = json!(hash);
    labels["pod-template-generation"] = json!(
        ds["metadata"]["generation"]
            .as_u64()
            .unwrap_or(1)
            .to_string()
    );
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!(node);
    if spec["restartPolicy"].is_null() {
        spec["restartPolicy"] = json!("Always");
    }
    if spec["terminationGracePeriodSeconds"].is_null() {
        spec["terminationGracePeriodSeconds"] = json!(30);
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{name}-{}", crate::random::suffix(5)),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": name,
                "uid": ds["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": { "phase": "Pending" },
    });
    if template["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = template["metadata"]["annotations"].clone();
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hash_follows_the_template() {
        let a = json!({"spec": {"containers": [{"name": "radar", "image": "a"}]}});
        let b = json!({"spec": {"containers": [{"name": "radar", "image": "b"}]}});
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 10);
    }

    #[test]
    fn daemonset_pods_are_owned_and_bound() {
        let ds = json!({
            "metadata": {"name": "agent", "namespace": "ksync", "uid": "u-1", "generation": 3},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "radar"}]}}},
        });
        let pod = daemonset_pod(&ds, "node-b", "abc");
        assert_eq!(pod["spec"]["nodeName"], "node-b");
        assert_eq!(pod["metadata"]["labels"]["app"], "agent");
        assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], "abc");
        assert_eq!(owner_uid(&pod), Some("u-1"));
        assert!(
            pod["metadata"]["name"]
                .as_str()
                .expect("name")
                .starts_with("agent-")
        );
    }
}
