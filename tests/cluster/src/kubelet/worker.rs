//! A pod's worker: prepares its sandbox, starts its containers, restarts them when they exit,
//! and stops and removes everything when the pod is deleted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sandbox::{agent_api_key, docker_spec, pod_labels};
use super::status::{Slot, backoff, pod_status, waiting};
use super::{Ctx, Msg, PROBE_PERIOD, RETRY};
use crate::agents::{NodeAgent, Part};
use crate::discovery::core;
use crate::docker::{self, RunSpec};
use crate::error::Error;
use crate::portforward::PodNetwork;
use crate::programs;
use crate::store::{now, timestamp};

/// How a pod's containers run.
enum Backend {
    /// Docker containers sharing an infra container's network.
    Docker {
        infra: Option<String>,
        volumes: Vec<String>,
        binds: HashMap<String, String>,
    },
    /// The node agent's processes.
    Agent {
        agent: Option<NodeAgent>,
        api_key: String,
    },
    /// Pods the test cluster cannot run.
    Unsupported(String),
}

/// The worker of one pod.
pub(super) struct Worker {
    ctx: Arc<Ctx>,
    ns: String,
    name: String,
    uid: String,
    node: String,
    restart_policy: String,
    grace: i64,
    backend: Backend,
    slots: Vec<Slot>,
    prepared: bool,
    retry_at: Option<Instant>,
    pod_ip: Option<IpAddr>,
    start_time: String,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
}

fn is_agent_pod(pod: &Value) -> bool {
    let owned_by_daemonset = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "DaemonSet"));
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    owned_by_daemonset && names.contains(&"radar") && names.contains(&"syncthing")
}

impl Worker {
    pub(super) fn new(
        ctx: Arc<Ctx>,
        pod: &Value,
        tx: mpsc::UnboundedSender<Msg>,
        rx: mpsc::UnboundedReceiver<Msg>,
    ) -> Worker {
        let meta = &pod["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let spec = &pod["spec"];
        let slots = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Slot {
                name: text(&c["name"]),
                image: text(&c["image"]),
                spec: c.clone(),
                id: None,
                pid: None,
                image_id: String::new(),
                restart_count: 0,
                attempt: 0,
                state: waiting("ContainerCreating", None),
                last_state: json!({}),
                ready: false,
                restart_at: None,
                alive: None,
            })
            .collect();
        let backend = if is_agent_pod(pod) {
            Backend::Agent {
                agent: None,
                api_key: String::new(),
            }
        } else if pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "DaemonSet"))
        {
            Backend::Unsupported(
                "the ksync test cluster runs only ksync's agent DaemonSet (containers radar and syncthing)".into(),
            )
        } else {
            Backend::Docker {
                infra: None,
                volumes: Vec::new(),
                binds: HashMap::new(),
            }
        };
        Worker {
            ctx,
            ns: text(&meta["namespace"]),
            name: text(&meta["name"]),
            uid: text(&meta["uid"]),
            node: text(&spec["nodeName"]),
            restart_policy: spec["restartPolicy"]
                .as_str()
                .unwrap_or("Always")
                .to_string(),
            grace: spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30),
            backend,
            slots,
            prepared: false,
            retry_at: Some(Instant::now()),
            pod_ip: None,
            start_time: now(),
            tx,
            rx,
        }
    }

    fn uid8(&self) -> &str {
        &self.uid[..self.uid.len().min(8)]
    }

    pub(super) async fn run(mut self) {
        self.publish();
        loop {
            let due = self
                .slots
                .iter()
                .filter_map(|s| s.restart_at)
                .chain(self.retry_at)
                .min();
            let msg = tokio::select! {
                msg = self.rx.recv() => msg,
                () = async { tokio::time::sleep_until(due.unwrap_or_else(Instant::now)).await }, if due.is_some() => {
                    self.timers().await;
                    self.publish();
                    continue;
                }
                () = self.ctx.stop.cancelled() => {
                    // The cluster is going away; it removes every container itself.
                    return;
                }
            };
            match msg {
                Some(Msg::Died { id, exit }) => self.died(&id, exit).await,
                Some(Msg::Ready { id }) => {
                    if let Some(slot) = self.slots.iter_mut().find(|s| s.id.as_deref() == Some(&id))
                    {
                        slot.ready = true;
                    }
                }
                Some(Msg::Delete) | None => break,
            }
            self.publish();
        }
        self.teardown().await;
        self.ctx.state.ports.remove(&self.ns, &self.name);
        let pods = core("pods");
        let same = self
            .ctx
            .state
            .store
            .get(pods, &self.ns, &self.name)
            .is_some_and(|p| p["metadata"]["uid"] == self.uid.as_str());
        if same {
            let _ = self.ctx.state.store.delete(pods, &self.ns, &self.name);
        }
    }

    /// Runs what is due: starting the pod, or restarting containers.
    async fn timers(&mut self) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            match self.prepare().await {
                Ok(()) => {
                    self.prepared = true;
                    for i in 0..self.slots.len() {
                        self.start(i).await;
                    }
                }
                Err((reason, message)) => {
                    for slot in &mut self.slots {
                        slot.state = waiting(reason, Some(&message));
                    }
                    if !matches!(self.backend, Backend::Unsupported(_)) {
                        self.retry_at = Some(Instant::now() + RETRY);
                    }
                }
            }
        }
        for i in 0..self.slots.len() {
            if self.slots[i].restart_at.is_some_and(|t| t <= now) {
                self.slots[i].restart_at = None;
                if let Some(old) = self.slots[i].id.take() {
                    self.remove_container(&old).await;
                }
                self.slots[i].restart_count += 1;
                self.slots[i].attempt += 1;
                self.start(i).await;
            }
        }
    }

    /// Prepares the sandbox: volumes and network, or the agent's files.
    async fn prepare(&mut self) -> Result<(), (&'static str, String)> {
        let pod = self
            .ctx
            .state
            .store
            .get(core("pods"), &self.ns, &self.name)
            .ok_or(("PodGone", String::new()))?;
        let uid8 = self.uid8().to_string();
        match &mut self.backend {
            Backend::Unsupported(why) => Err(("ErrImagePull", why.clone())),
            Backend::Agent { agent, api_key } => {
                let key = agent_api_key(&self.ctx.state, &pod)
                    .map_err(|m| ("CreateContainerConfigError", m))?;
                let node = self
                    .ctx
                    .agents
                    .node(&self.node)
                    .map_err(|e| ("CreateContainerError", e.to_string()))?;
                node.init(&key)
                    .await
                    .map_err(|e| ("CreateContainerError", e.to_string()))?;
                self.ctx
                    .state
                    .ports
                    .set(&self.ns, &self.name, node.network());
                self.pod_ip = Some([127, 0, 0, 1].into());
                *agent = Some(node);
                *api_key = key;
                Ok(())
            }
            Backend::Docker {
                infra,
                volumes,
                binds,
            } => {
                let docker = &self.ctx.docker;
                for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
                    let name = volume["name"].as_str().unwrap_or_default();
                    if let Some(path) = volume["hostPath"]["path"].as_str() {
                        binds.insert(name.to_string(), path.to_string());
                    } else {
                        let docker_name = format!("k8s_{uid8}_{name}");
                        if !volumes.contains(&docker_name) {
                            docker
                                .create_volume(&docker_name, &self.node)
                                .await
                                .map_err(|e| ("CreateContainerError", e.to_string()))?;
                            volumes.push(docker_name.clone());
                        }
                        binds.insert(name.to_string(), docker_name);
                    }
                }
                let spec = RunSpec {
                    name: format!("k8s_POD_{}_{}_{uid8}_0", self.name, self.ns),
                    node: self.node.clone(),
                    labels: pod_labels(&self.ns, &self.name, &self.uid, "POD"),
                    command: docker::IDLE.iter().map(|s| s.to_string()).collect(),
                    env: Vec::new(),
                    binds: Vec::new(),
                    network_of: None,
                    working_dir: None,
                };
                let id = docker
                    .run(&spec)
                    .await
                    .map_err(|e| ("CreateContainerError", e.to_string()))?;
                *infra = Some(id.clone());
                let ip = docker.state(&id).await.ok().flatten().and_then(|s| s.ip);
                self.pod_ip = ip;
                self.ctx.state.ports.set(
                    &self.ns,
                    &self.name,
                    PodNetwork {
                        ip,
                        ports: HashMap::new(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Starts (or restarts) container `i`.
    async fn start(&mut self, i: usize) {
        let started = match &self.backend {
            Backend::Docker { infra, binds, .. } => {
                let slot = &self.slots[i];
                let spec = docker_spec(
                    slot, &self.ns, &self.name, &self.uid, &self.node, infra, binds,
                );
                match self.ctx.docker.run(&spec).await {
                    Ok(id) => {
                        let state = self.ctx.docker.state(&id).await.ok().flatten();
                        let tcp_probe = self.slots[i].spec["readinessProbe"]["tcpSocket"]["port"]
                            .as_u64()
                            .and_then(|p| u16::try_from(p).ok());
                        let alive = CancellationToken::new();
                        if let (Some(port), Some(ip)) = (tcp_probe, self.pod_ip) {
                            self.probe(id.clone(), alive.clone(), move || async move {
                                tokio::net::TcpStream::connect((ip, port)).await.is_ok()
                            });
                        }
                        let slot = &mut self.slots[i];
                        let started = state
                            .as_ref()
                            .map_or_else(now, |s| timestamp(&s.started_at));
                        slot.state = json!({ "running": { "startedAt": started } });
                        slot.image_id = state.map(|s| s.image_id).unwrap_or_default();
                        slot.id = Some(id);
                        slot.ready = tcp_probe.is_none();
                        slot.alive = Some(alive);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Backend::Agent {
                agent: Some(agent),
                api_key,
            } => {
                let slot = &self.slots[i];
                match Part::from_container(&slot.name) {
                    Some(part) => match agent.spawn(part, api_key) {
                        Ok(child) => {
                            let pid = child.id().unwrap_or_default();
                            let id = format!("process://{pid}");
                            let alive = self.watch_process(
                                child,
                                id.clone(),
                                agent.clone(),
                                part,
                                api_key.clone(),
                            );
                            let slot = &mut self.slots[i];
                            slot.alive = Some(alive);
                            slot.state = json!({ "running": { "startedAt": now() } });
                            slot.id = Some(id);
                            slot.pid = Some(pid);
                            slot.ready = false;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    None => Err(Error::Program(format!(
                        "the agent pod has an unknown container {}",
                        slot.name
                    ))),
                }
            }
            _ => return,
        };
        if let Err(e) = started {
            let slot = &mut self.slots[i];
            slot.state = waiting("CreateContainerError", Some(&e.to_string()));
            slot.restart_at = Some(Instant::now() + backoff(slot.restart_count + 1));
        }
    }

    /// Waits for an agent process to exit, and probes it until it is ready.
    fn watch_process(
        &self,
        mut child: tokio::process::Child,
        id: String,
        agent: NodeAgent,
        part: Part,
        api_key: String,
    ) -> CancellationToken {
        let pid = child.id().unwrap_or_default();
        let alive = CancellationToken::new();
        let token = alive.clone();
        let tx = self.tx.clone();
        let stop = self.ctx.stop.clone();
        let exited = alive.clone();
        let died_id = id.clone();
        self.ctx.tracker.spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                () = stop.cancelled() => {
                    programs::signal_group(pid, rustix::process::Signal::KILL);
                    let _ = child.wait().await;
                    None
                }
            };
            // The whole group goes with its leader, as a container's processes do.
            programs::signal_group(pid, rustix::process::Signal::KILL);
            exited.cancel();
            let exit = status.map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code()
                    .map_or_else(|| 128 + i64::from(s.signal().unwrap_or(9)), i64::from)
            });
            let _ = tx.send(Msg::Died { id: died_id, exit });
        });
        self.probe(id, alive, move || {
            let agent = agent.clone();
            let api_key = api_key.clone();
            async move { agent.ready(part, &api_key).await }
        });
        token
    }

    /// Runs a readiness probe every [`PROBE_PERIOD`] until it passes (the container is then
    /// ready) or `alive` is cancelled (the container exited).
    fn probe<F, Fut>(&self, id: String, alive: CancellationToken, check: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let tx = self.tx.clone();
        self.ctx.tracker.spawn(async move {
            loop {
                if check().await {
                    let _ = tx.send(Msg::Ready { id });
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(PROBE_PERIOD) => {}
                    () = alive.cancelled() => return,
                }
            }
        });
    }

    /// A container exited: record how, and restart it as the policy says.
    async fn died(&mut self, id: &str, exit: Option<i64>) {
        let Some(i) = self.slots.iter().position(|s| s.id.as_deref() == Some(id)) else {
            if let Backend::Docker {
                infra: Some(infra), ..
            } = &self.backend
                && infra == id
            {
                tracing::warn!(
                    "the infra container of pod {}/{} exited",
                    self.ns,
                    self.name
                );
            }
            return;
        };
        if self.slots[i].restart_at.is_some() || self.slots[i].state["terminated"].is_object() {
            return;
        }
        let finished = now();
        let (exit_code, started, finished, oom) = match exit {
            Some(code) => (
                code,
                self.slots[i].state["running"]["startedAt"].clone(),
                json!(finished),
                false,
            ),
            None => match self.ctx.docker.state(id).await.ok().flatten() {
                Some(s) => (
                    s.exit_code,
                    json!(s.started_at),
                    json!(s.finished_at),
                    s.oom_killed,
                ),
                None => (
                    137,
                    self.slots[i].state["running"]["startedAt"].clone(),
                    json!(finished),
                    false,
                ),
            },
        };
        let reason = if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let slot = &mut self.slots[i];
        if let Some(alive) = slot.alive.take() {
            alive.cancel();
        }
        let terminated = json!({ "terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": finished,
            "containerID": format!("{}{}", if id.contains("://") { "" } else { "docker://" }, id),
        }});
        slot.ready = false;
        let restart = match self.restart_policy.as_str() {
            "Never" => false,
            "OnFailure" => exit_code != 0,
            _ => true,
        };
        if restart {
            let wait = backoff(slot.restart_count);
            slot.last_state = terminated.clone();
            slot.state = if wait.is_zero() {
                terminated
            } else {
                waiting(
                    "CrashLoopBackOff",
                    Some(&format!(
                        "back-off {wait:?} restarting failed container={} pod={}_{}({})",
                        slot.name, self.name, self.ns, self.uid
                    )),
                )
            };
            slot.restart_at = Some(Instant::now() + wait);
        } else {
            slot.state = terminated;
        }
    }

    async fn remove_container(&self, id: &str) {
        if matches!(self.backend, Backend::Docker { .. })
            && let Err(e) = self.ctx.docker.remove(id).await
        {
            tracing::warn!("{e}");
        }
    }

    /// Stops everything of the pod: SIGTERM, SIGKILL after the grace period, removal.
    async fn teardown(&mut self) {
        for slot in &mut self.slots {
            if let Some(alive) = slot.alive.take() {
                alive.cancel();
            }
        }
        let grace = i32::try_from(self.grace.clamp(0, 600)).unwrap_or(30);
        match &self.backend {
            Backend::Docker { infra, volumes, .. } => {
                let docker = self.ctx.docker.clone();
                let stops = self.slots.iter().filter_map(|s| s.id.clone()).map(|id| {
                    let docker = docker.clone();
                    async move {
                        let _ = docker.stop(&id, grace).await;
                        if let Err(e) = docker.remove(&id).await {
                            tracing::warn!("{e}");
                        }
                    }
                });
                futures::future::join_all(stops).await;
                if let Some(infra) = infra {
                    let _ = docker.remove(infra).await;
                }
                for volume in volumes {
                    if let Err(e) = docker.remove_volume(volume).await {
                        tracing::warn!("{e}");
                    }
                }
            }
            Backend::Agent { .. } => {
                let pids: Vec<u32> = self
                    .slots
                    .iter()
                    .filter(|s| s.state["running"].is_object())
                    .filter_map(|s| s.pid)
                    .collect();
                for pid in &pids {
                    programs::signal_group(*pid, rustix::process::Signal::TERM);
                }
                let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
                let mut running = pids.len();
                while running > 0 {
                    tokio::select! {
                        msg = self.rx.recv() => match msg {
                            Some(Msg::Died { .. }) => running -= 1,
                            Some(_) => {}
                            None => break,
                        },
                        () = tokio::time::sleep_until(deadline) => break,
                    }
                }
                for pid in &pids {
                    programs::signal_group(*pid, rustix::process::Signal::KILL);
                }
            }
            Backend::Unsupported(_) => {}
        }
    }

    /// Writes the pod's status.
    fn publish(&self) {
        let status = pod_status(&self.slots, self.prepared, self.pod_ip, &self.start_time);
        let uid = self.uid.clone();
        let result = self
            .ctx
            .state
            .store
            .update(core("pods"), &self.ns, &self.name, |pod| {
                if pod["metadata"]["uid"] != uid.as_str() {
                    return Err(crate::status::ApiError::conflict(
                        "another pod of that name",
                        None,
                    ));
                }
                pod["status"] = status;
                Ok(())
            });
        if let Err(e) = result {
            tracing::debug!("status of {}/{} not written: {e}", self.ns, self.name);
        }
    }
}
