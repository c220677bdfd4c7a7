//! The simulated kubelets: every pod bound to a node gets a worker that runs its containers
//! and keeps its `status` true to them.
//!
//! Workload pods run in Docker: an infra container holds the pod's network (its IP is the
//! pod IP) and `emptyDir` volumes are Docker volumes; each container joins the infra
//! container's network. Agent pods (of a DaemonSet with `radar` and `syncthing` containers)
//! run the node's radar and Syncthing as processes (see [`crate::agents`]).
//!
//! As a kubelet does, a worker restarts containers that exit (per `restartPolicy`), with a
//! new container id, `restartCount` + 1 and the previous run in `lastState`, backing off when
//! a container keeps failing; it learns of exits from Docker's event stream and from the
//! processes themselves, never by polling. Deleting a pod stops its containers (SIGTERM, then
//! SIGKILL after the grace period), removes them and then the pod object.

mod sandbox;
mod status;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::agents::{Agents, NodeAgent};
use crate::discovery::core;
use crate::docker::{self, Docker};
use crate::state::State;
use crate::store::EventType;
use worker::Worker;

/// How often a readiness probe runs until it passes.
const PROBE_PERIOD: Duration = Duration::from_millis(100);
/// How often a pod that could not start (a missing Secret, say) is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Messages to a pod worker.
#[derive(Debug)]
enum Msg {
    /// A container (by runtime id) exited; processes report their exit code.
    Died { id: String, exit: Option<i64> },
    /// A container's readiness probe passed.
    Ready { id: String },
    /// The pod is being deleted.
    Delete,
}

/// The kubelets of every node.
pub(crate) struct Kubelet {
    ctx: Arc<Ctx>,
}

struct Ctx {
    state: Arc<State>,
    docker: Docker,
    agents: Arc<Agents>,
    workers: Mutex<HashMap<String, mpsc::UnboundedSender<Msg>>>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Kubelet {
    /// Starts following pods and containers.
    pub(crate) fn start(
        state: Arc<State>,
        docker: Docker,
        agents: Arc<Agents>,
        stop: CancellationToken,
        tracker: TaskTracker,
    ) -> Kubelet {
        let ctx = Arc::new(Ctx {
            state,
            docker,
            agents,
            workers: Mutex::new(HashMap::new()),
            stop,
            tracker,
        });
        ctx.tracker.spawn(follow_pods(ctx.clone()));
        ctx.tracker.spawn(follow_containers(ctx.clone()));
        Kubelet { ctx }
    }

    /// The node agent of `node`, if its agent pod ever ran.
    pub(crate) fn agent(&self, node: &str) -> Option<NodeAgent> {
        self.ctx.agents.existing(node)
    }
}

impl Ctx {
    fn send(&self, uid: &str, msg: Msg) {
        if let Some(worker) = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
        {
            let _ = worker.send(msg);
        }
    }
}

/// Starts a worker for every new pod and tells workers of deletions.
async fn follow_pods(ctx: Arc<Ctx>) {
    let pods = core("pods");
    let mut events = ctx.state.store.subscribe();
    // Pods that exist already (none, unless the kubelet starts late).
    let (existing, _) = ctx.state.store.list(pods, None);
    for pod in existing {
        sync(&ctx, &pod);
    }
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = ctx.stop.cancelled() => return,
        };
        match event {
            Ok(event) if std::ptr::eq(event.resource, pods) => match event.kind {
                EventType::Added | EventType::Modified => sync(&ctx, &event.object),
                EventType::Deleted => {
                    let uid = event.object["metadata"]["uid"].as_str().unwrap_or_default();
                    ctx.workers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(uid);
                }
            },
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let (all, _) = ctx.state.store.list(pods, None);
                for pod in all {
                    sync(&ctx, &pod);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn sync(ctx: &Arc<Ctx>, pod: &Arc<Value>) {
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deleting = pod["metadata"]["deletionTimestamp"].is_string();
    let mut workers = ctx.workers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(worker) = workers.get(&uid) {
        if deleting {
            let _ = worker.send(Msg::Delete);
        }
        return;
    }
    if pod["spec"]["nodeName"].as_str().is_none() {
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    if deleting {
        let _ = tx.send(Msg::Delete);
    }
    workers.insert(uid, tx.clone());
    let worker = Worker::new(ctx.clone(), pod, tx, rx);
    ctx.tracker.spawn(worker.run());
}

/// Routes Docker's container exits to the pods' workers.
async fn follow_containers(ctx: Arc<Ctx>) {
    loop {
        let mut events = ctx.docker.events();
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                () = ctx.stop.cancelled() => return,
            };
            match event {
                Some(Ok(event)) if event.action == "die" || event.action == "destroy" => {
                    if let Some(uid) = event.labels.get(docker::POD_UID_LABEL) {
                        ctx.send(
                            uid,
                            Msg::Died {
                                id: event.id,
                                exit: None,
                            },
                        );
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("{e}; following Docker events again");
                    break;
                }
                None => break,
            }
        }
        // The Docker Engine ended the stream (it restarted): follow it again.
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = ctx.stop.cancelled() => return,
        }
    }
}
