//! [`TestCluster`]: the handle tests hold. It starts everything, answers questions about
//! the cluster's state, flips fault switches, and removes everything it created when
//! dropped.
//!
//! The cluster runs on a Tokio runtime of its own, so it keeps serving while a test blocks
//! (running `kubectl` or `ksync` with `std::process`, say) and works the same under any test
//! runtime flavour.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Permission;
use crate::agents::{Agents, NodeAgent};
use crate::controller::{self, Controller};
use crate::discovery::{self, core};
use crate::docker::Docker;
use crate::error::Error;
use crate::filter::Filter;
use crate::kubelet::Kubelet;
use crate::server::ApiServer;
use crate::spec::{Node, Workload};
use crate::state::State;
use crate::{admission, apply, kubeconfig};

/// A running test cluster. See the crate documentation for an example.
pub struct TestCluster {
    runtime: Option<tokio::runtime::Runtime>,
    inner: Arc<Inner>,
    kubeconfig: PathBuf,
    dir: Option<tempfile::TempDir>,
}

struct Inner {
    state: Arc<State>,
    server: ApiServer,
    docker: Docker,
    controller: Arc<Controller>,
    kubelet: Kubelet,
    stop: CancellationToken,
    tracker: TaskTracker,
}

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

impl TestCluster {
    /// Starts a cluster with no nodes: the API server, the controllers and the kubelets.
    pub async fn start() -> Result<TestCluster, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ksync-test-cluster")
            .enable_all()
            .build()
            .map_err(Error::io("start the test cluster's runtime"))?;
        let dir = tempfile::Builder::new()
            .prefix("ksync-test-cluster-")
            .tempdir()
            .map_err(Error::io("create the test cluster's directory"))?;
        let id = crate::random::hex(12);
        let agents_dir = dir.path().join("nodes");
        let started = runtime
            .spawn(async move {
                let docker = Docker::connect(&id).await?;
                docker.remove_orphans().await?;
                docker.ensure_image().await?;
                let state = Arc::new(State::default());
                for ns in NAMESPACES {
                    state.store.create(
                        core("namespaces"),
                        serde_json::json!({ "metadata": { "name": ns }, "spec": { "finalizers": ["kubernetes"] }, "status": { "phase": "Active" } }),
                    )?;
                }
                let stop = CancellationToken::new();
                let tracker = TaskTracker::new();
                let controller = Controller::new(state.clone());
                tracker.spawn(controller.clone().run(stop.clone()));
                let kubelet = Kubelet::start(
                    state.clone(),
                    docker.clone(),
                    Arc::new(Agents::new(agents_dir)),
                    stop.clone(),
                    tracker.clone(),
                );
                let server = ApiServer::start(state.clone())
                    .await
                    .map_err(Error::io("start the API server"))?;
                Ok::<_, Error>(Inner {
                    state,
                    server,
                    docker,
                    controller,
                    kubelet,
                    stop,
                    tracker,
                })
            })
            .await
            .map_err(|e| Error::Program(format!("the test cluster failed to start: {e}")))??;
        let kubeconfig = dir.path().join("kubeconfig");
        kubeconfig::write(
            &kubeconfig,
            &format!("http://{}", started.server.addr()),
            "default",
        )
        .map_err(Error::io("write the kubeconfig"))?;
        Ok(TestCluster {
            runtime: Some(runtime),
            inner: Arc::new(started),
            kubeconfig,
            dir: Some(dir),
        })
    }

    /// Starts a cluster with these nodes.
    pub async fn with_nodes(names: &[&str]) -> Result<TestCluster, Error> {
        let cluster = TestCluster::start().await?;
        for name in names {
            cluster.add_node(Node::new(name)).await?;
        }
        Ok(cluster)
    }

    /// Runs `work` on the cluster's runtime.
    async fn on_runtime<T, F>(&self, work: impl FnOnce(Arc<Inner>) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Program("the test cluster is shut down".into()))?;
        runtime
            .spawn(work(self.inner.clone()))
            .await
            .map_err(|e| Error::Program(format!("a test cluster task failed: {e}")))?
    }

    /// The generated kubeconfig (one context, `ksync-test`, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL (`http://127.0.0.1:<port>`); the same across restarts.
    pub fn server_url(&self) -> String {
        format!("http://{}", self.inner.server.addr())
    }

    /// A directory for the test's own files, removed with the cluster.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// `kubectl` with the generated kubeconfig and a private discovery cache.
    pub fn kubectl(&self) -> std::process::Command {
        let mut command = std::process::Command::new("kubectl");
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir().join("kubectl-cache").display()
            ))
            .env_remove("KUBECONFIG");
        command
    }

    /// Adds a node. The agent DaemonSet, if applied, gets a pod on it.
    pub async fn add_node(&self, node: Node) -> Result<(), Error> {
        node.check()?;
        self.inner
            .state
            .store
            .create(core("nodes"), node.object())?;
        Ok(())
    }

    /// Removes a node and every pod on it (workloads replace theirs on other nodes).
    pub async fn remove_node(&self, name: &str) -> Result<(), Error> {
        self.inner
            .state
            .store
            .delete(core("nodes"), "", name)
            .map_err(|_| Error::NotFound(format!("node {name}")))?;
        Ok(())
    }

    /// Declares a workload; its pods are created at once (they start in the background:
    /// wait for them with [`TestCluster::wait_for_pods`]). The namespace is created if
    /// missing.
    pub async fn add_workload(&self, workload: Workload) -> Result<(), Error> {
        self.inner.controller.add_workload(workload)
    }

    /// Changes a workload's replica count.
    pub async fn scale(
        &self,
        namespace: &str,
        workload: &str,
        replicas: usize,
    ) -> Result<(), Error> {
        self.inner.controller.scale(namespace, workload, replicas)
    }

    /// Server-side applies every document of a YAML stream (as `kubectl apply
    /// --server-side --force-conflicts --field-manager <manager>` would).
    pub async fn apply_yaml(&self, yaml: &str, field_manager: &str) -> Result<(), Error> {
        for doc in yaml
            .split("\n---\n")
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let object: Value = serde_saphyr::from_str(doc)
                .map_err(|e| Error::Invalid(format!("not a YAML object: {e}")))?;
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let (group, _) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let kind = object["kind"].as_str().unwrap_or_default();
            let resource = discovery::by_kind(group, kind).ok_or_else(|| {
                Error::Invalid(format!(
                    "the test cluster does not serve {api_version} {kind}"
                ))
            })?;
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ns = if resource.namespaced {
                object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string()
            } else {
                String::new()
            };
            self.inner.state.store.write(resource, &ns, &name, |live| {
                let mut applied = apply::apply(live, &object, field_manager, true)?;
                admission::admit(resource, &mut applied, live)?;
                Ok(applied)
            })?;
        }
        Ok(())
    }

    /// One object of a kind given by its plural (`pods`, `daemonsets`, `secrets`, ...).
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = discovery::RESOURCES.iter().find(|r| r.plural == plural)?;
        let ns = if resource.namespaced { namespace } else { "" };
        self.inner
            .state
            .store
            .get(resource, ns, name)
            .map(|o| o.as_ref().clone())
    }

    /// The pods of `namespace` matching a label selector (`""` for all).
    pub fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<Value>, Error> {
        let pods = core("pods");
        let filter =
            Filter::parse(pods, Some(selector), None).map_err(|e| Error::Invalid(e.message))?;
        let (all, _) = self.inner.state.store.list(pods, Some(namespace));
        Ok(all
            .into_iter()
            .filter(|p| filter.matches(p))
            .map(|p| p.as_ref().clone())
            .collect())
    }

    /// The Docker id of a pod container's current run.
    pub fn container_id(&self, namespace: &str, pod: &str, container: &str) -> Option<String> {
        let pod = self.get("pods", namespace, pod)?;
        pod["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == container)?["containerID"]
            .as_str()?
            .strip_prefix("docker://")
            .map(str::to_string)
    }

    /// Waits until `check` returns something, re-checking after every change in the cluster
    /// (no polling); fails after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&TestCluster) -> Option<T>,
    ) -> Result<T, Error> {
        let mut events = self.inner.state.store.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = check(self) {
                return Ok(found);
            }
            tokio::select! {
                event = events.recv() => {
                    if let Err(RecvError::Closed) = event {
                        return Err(Error::Program("the test cluster stopped".into()));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return check(self).ok_or_else(|| Error::Timeout { what: what.to_string(), timeout });
                }
            }
        }
    }

    /// Waits until exactly `count` pods of `namespace` match `selector` and are Ready, and
    /// returns them.
    pub async fn wait_for_pods(
        &self,
        namespace: &str,
        selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let what = format!("{count} ready pods in {namespace} matching {selector:?}");
        self.wait_for(&what, timeout, |c| {
            let pods = c.pods(namespace, selector).ok()?;
            let live: Vec<Value> = pods
                .into_iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .collect();
            (live.len() == count && live.iter().all(pod_ready)).then_some(live)
        })
        .await
        .map_err(|e| self.explain(e, namespace, selector))
    }

    /// Adds the state of the pods concerned to a timeout.
    fn explain(&self, err: Error, namespace: &str, selector: &str) -> Error {
        let Error::Timeout { what, timeout } = err else {
            return err;
        };
        let pods = self.pods(namespace, selector).unwrap_or_default();
        let states: Vec<String> = pods
            .iter()
            .map(|p| {
                let containers: Vec<String> = p["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{}: ready {} state {}", c["name"], c["ready"], c["state"]))
                    .collect();
                format!(
                    "{} on {} ({}): {}",
                    p["metadata"]["name"],
                    p["spec"]["nodeName"],
                    p["status"]["phase"],
                    containers.join("; ")
                )
            })
            .collect();
        Error::Timeout {
            what: format!("{what}; the pods: [{}]", states.join(" | ")),
            timeout,
        }
    }

    /// Waits until the agent DaemonSet `namespace/name` has a ready pod on every node it
    /// selects, with its current template.
    pub async fn wait_for_agents(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.wait_for(
            &format!("DaemonSet {namespace}/{name} to be ready"),
            timeout,
            |c| {
                let ds = c.get("daemonsets", namespace, name)?;
                let status = &ds["status"];
                let desired = status["desiredNumberScheduled"].as_u64()?;
                // The controller may not have seen the latest nodes yet.
                let selector = &ds["spec"]["template"]["spec"]["nodeSelector"];
                let (nodes, _) = c.inner.state.store.list(core("nodes"), None);
                let eligible = nodes
                    .iter()
                    .filter(|n| {
                        selector
                            .as_object()
                            .into_iter()
                            .flatten()
                            .all(|(k, v)| n["metadata"]["labels"][k] == *v)
                    })
                    .count();
                (desired > 0
                    && desired == eligible as u64
                    && status["observedGeneration"] == ds["metadata"]["generation"]
                    && status["numberAvailable"].as_u64() == Some(desired)
                    && status["currentNumberScheduled"].as_u64() == Some(desired))
                .then_some(())
            },
        )
        .await
        .map_err(|e| self.explain(e, namespace, ""))
    }

    /// Where a node's agent (radar and Syncthing) listens, once its agent pod has run.
    pub fn agent(&self, node: &str) -> Option<NodeAgent> {
        self.inner.kubelet.agent(node)
    }

    /// Every request the API server served (the last 10 000), as `METHOD path?query`,
    /// oldest first: what clients asked, to check how they ask.
    pub fn requests(&self) -> Vec<String> {
        self.inner.state.requests()
    }

    // Fault switches.

    /// Drops every open port-forward connection, without a close handshake.
    pub fn drop_port_forwards(&self) {
        self.inner.state.faults.port_forwards.fire();
    }

    /// Stops the API server: its port closes and every connection drops. State is kept, and
    /// the cluster keeps running (containers, controllers, agents).
    pub async fn stop_api_server(&self) -> Result<(), Error> {
        self.on_runtime(|inner| async move {
            inner.server.stop().await;
            Ok(())
        })
        .await
    }

    /// Starts the API server again, on the same port, with the same state.
    pub async fn start_api_server(&self) -> Result<(), Error> {
        self.on_runtime(|inner| async move {
            inner
                .server
                .restart()
                .await
                .map_err(Error::io("listen on the API server's port again"))
        })
        .await
    }

    /// True while the API server serves.
    pub async fn api_server_running(&self) -> bool {
        self.on_runtime(|inner| async move { Ok(inner.server.is_running().await) })
            .await
            .unwrap_or(false)
    }

    /// Forgets the history of changes: every resourceVersion handed out so far becomes too
    /// old to watch from (`410 Gone`), and open watches end, so clients must list again.
    pub fn expire_resource_versions(&self) {
        self.inner.state.store.expire();
        self.inner.state.faults.watches.fire();
    }

    /// Ends every open watch stream (as an API server does at its request timeout).
    pub fn end_watches(&self) {
        self.inner.state.faults.watches.fire();
    }

    /// Caps every watch at `cap`, whatever `timeoutSeconds` asks (none: no cap).
    pub fn cap_watch_timeout(&self, cap: Option<Duration>) {
        self.inner.state.faults.set_watch_timeout_cap(cap);
    }

    /// How often watches that allow bookmarks get one (default 1 s).
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.inner.state.faults.set_bookmark_every(every);
    }

    /// Denies a permission: requests needing it get `403`, access reviews say no.
    pub fn deny(&self, permission: Permission) {
        self.inner.state.access.deny(permission);
    }

    /// Allows everything again.
    pub fn allow_all(&self) {
        self.inner.state.access.allow_all();
    }

    /// Deletes a pod as `kubectl delete pod` does: it terminates, then disappears; a
    /// workload's pod is replaced by a new one.
    pub async fn delete_pod(&self, namespace: &str, pod: &str) -> Result<(), Error> {
        if self.get("pods", namespace, pod).is_none() {
            return Err(Error::NotFound(format!("pod {namespace}/{pod}")));
        }
        controller::mark_pod_deleted(&self.inner.state, namespace, pod);
        Ok(())
    }

    /// Moves a workload's pod to `node`: the pod is deleted and its replacement is put on
    /// `node` (pods never move in Kubernetes; they are replaced).
    pub async fn reschedule_pod(
        &self,
        namespace: &str,
        pod: &str,
        node: &str,
    ) -> Result<(), Error> {
        self.inner.controller.reschedule(namespace, pod, node)
    }

    /// Kills a pod container's process (SIGKILL); the kubelet restarts it as a new
    /// container, with `restartCount` + 1.
    pub async fn restart_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(), Error> {
        let id = self
            .container_id(namespace, pod, container)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "running container {container} of pod {namespace}/{pod}"
                ))
            })?;
        self.on_runtime(|inner| async move { inner.docker.kill(&id, "KILL").await })
            .await
    }

    /// Keeps a node's agent from running: its radar is killed and cannot start again (as a
    /// crash-looping container), so the agent pod is not ready until
    /// [`TestCluster::release_agent`].
    pub async fn hold_agent_down(&self, node: &str) -> Result<(), Error> {
        let agent = self
            .agent(node)
            .ok_or_else(|| Error::NotFound(format!("an agent on node {node}")))?;
        agent.hold_down(true)?;
        self.kill_agent_part(node, "radar")
    }

    /// Lets a node's agent run again after [`TestCluster::hold_agent_down`].
    pub async fn release_agent(&self, node: &str) -> Result<(), Error> {
        let agent = self
            .agent(node)
            .ok_or_else(|| Error::NotFound(format!("an agent on node {node}")))?;
        agent.hold_down(false)
    }

    /// Sends port-forwards to `port` of a node's agent pod to `target` instead (e.g. a radar
    /// stand-in a test serves), until the agent pod restarts.
    pub fn redirect_agent_port(
        &self,
        node: &str,
        port: u16,
        target: SocketAddr,
    ) -> Result<(), Error> {
        let (pods, _) = self.inner.state.store.list(core("pods"), None);
        let pod = pods
            .iter()
            .find(|p| {
                p["spec"]["nodeName"] == node
                    && p["metadata"]["deletionTimestamp"].is_null()
                    && p["metadata"]["labels"]["app.kubernetes.io/name"] == "ksync-agent"
            })
            .ok_or_else(|| Error::NotFound(format!("an agent pod on node {node}")))?;
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut network = self.inner.state.ports.get(ns, name).unwrap_or_default();
        network.ports.insert(port, target);
        self.inner.state.ports.set(ns, name, network);
        Ok(())
    }

    /// Kills a node's radar (SIGKILL); its agent pod's kubelet restarts it.
    pub async fn kill_radar(&self, node: &str) -> Result<(), Error> {
        self.kill_agent_part(node, "radar")
    }

    /// Kills a node's Syncthing (SIGKILL, with its monitor process); its agent pod's kubelet
    /// restarts it.
    pub async fn kill_syncthing(&self, node: &str) -> Result<(), Error> {
        self.kill_agent_part(node, "syncthing")
    }

    fn kill_agent_part(&self, node: &str, container: &str) -> Result<(), Error> {
        let (pods, _) = self.inner.state.store.list(core("pods"), None);
        let pid = pods
            .iter()
            .filter(|p| {
                p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null()
            })
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|s| s["name"] == container && s["state"]["running"].is_object())
            .find_map(|s| {
                s["containerID"]
                    .as_str()?
                    .strip_prefix("process://")?
                    .parse::<u32>()
                    .ok()
            })
            .ok_or_else(|| Error::NotFound(format!("a running {container} on node {node}")))?;
        crate::programs::signal_group(pid, rustix::process::Signal::KILL);
        Ok(())
    }
}

/// True when a pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

impl Inner {
    async fn shutdown(&self) {
        self.server.stop().await;
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(20), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some test cluster tasks did not stop in time");
        }
        if let Err(e) = self.docker.remove_everything().await {
            tracing::warn!("cleaning up: {e}");
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let inner = self.inner.clone();
        let handle = runtime.handle().clone();
        // On a thread of its own: a test's runtime may be running this drop, and blocking on
        // another runtime there is not allowed.
        let _ = std::thread::spawn(move || handle.block_on(inner.shutdown())).join();
        runtime.shutdown_background();
        drop(self.dir.take());
    }
}
