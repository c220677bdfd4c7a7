//! Acting on containers, whatever runs them.
//!
//! Docker containers go through the Docker API (bollard) when its socket is mounted: it gives
//! the main pid and restarts a container in place, keeping its writable layer. Every other
//! container (containerd, CRI-O, or Docker without a socket) is found in the host's `/proc`
//! by its cgroup, and "restarted" by stopping its main process so the kubelet starts it again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, RestartContainerOptionsBuilder};
use tokio::sync::OnceCell;

use crate::container::{ContainerId, RuntimeKind};
use crate::error::RadarError;
use crate::procfs::ProcFs;
use crate::signal::Process;

/// Which node this radar serves, and how to tell a container's node when one host runs
/// containers of several (simulated) nodes.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node's name (`spec.nodeName`).
    pub name: String,
    /// When set, only containers whose runtime label of this key equals [`Self::name`] are
    /// served. Real nodes leave it unset: their runtime holds only their own containers.
    pub label: Option<String>,
}

/// How radar reaches the node's containers.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The host's proc filesystem.
    pub proc_root: PathBuf,
    /// The Docker API socket, used when it exists.
    pub docker_socket: PathBuf,
    /// containerd's socket, asked for the runtime's version when there is no Docker.
    pub containerd_socket: PathBuf,
    /// How long a stopped container's main process has after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// The node.
    pub node: NodeIdentity,
}

/// The node's container runtime(s).
#[derive(Debug)]
pub struct Runtimes {
    config: RuntimeConfig,
    proc: ProcFs,
    docker: OnceCell<Option<Docker>>,
}

/// The main process of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainProcess {
    /// Pid in the host PID namespace.
    pub pid: u32,
}

/// What a restart did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// The runtime restarted the same container (writable layer kept).
    pub in_place: bool,
    /// Main pid before.
    pub old_pid: u32,
    /// Main pid after, when known.
    pub new_pid: Option<u32>,
}

/// What radar knows of the node's runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// `docker`, `containerd`, `cri-o` or `unknown`.
    pub name: String,
    /// Its version, when it reports one.
    pub version: String,
}

impl Runtimes {
    /// Runtimes as configured; nothing is contacted until a request needs it.
    pub fn new(config: RuntimeConfig) -> Self {
        Runtimes {
            proc: ProcFs::new(&config.proc_root),
            config,
            docker: OnceCell::new(),
        }
    }

    /// The proc filesystem radar reads.
    pub fn proc(&self) -> &ProcFs {
        &self.proc
    }

    /// The node this radar serves.
    pub fn node(&self) -> &NodeIdentity {
        &self.config.node
    }

    /// The Docker API, if its socket is there and answers.
    async fn docker(&self) -> Option<&Docker> {
        self.docker
            .get_or_init(|| async {
                let socket = &self.config.docker_socket;
                if !socket.exists() {
                    return None;
                }
                let path = socket.to_string_lossy();
                let docker =
                    Docker::connect_with_unix(&path, 30, bollard::API_DEFAULT_VERSION).ok()?;
                match docker.negotiate_version().await {
                    Ok(docker) => Some(docker),
                    Err(e) => {
                        tracing::warn!(socket = %path, error = %e, "Docker socket does not answer; using /proc");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// Finds the running main process of `id`, refusing containers of other nodes.
    pub async fn main_process(&self, id: &ContainerId) -> Result<MainProcess, RadarError> {
        if id.runtime == RuntimeKind::Docker
            && let Some(docker) = self.docker().await
        {
            let info = docker
                .inspect_container(&id.id, None::<InspectContainerOptions>)
                .await
                .map_err(|e| docker_error(id, e))?;
            let labels = info
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            self.check_node(id, Some(&labels))?;
            let state = info.state.unwrap_or_default();
            let pid = state
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0 && state.running == Some(true))
                .ok_or_else(|| {
                    RadarError::FailedPrecondition(format!(
                        "container {id} is not running; wait until the pod's container has started"
                    ))
                })?;
            return Ok(MainProcess { pid });
        }
        self.check_node(id, None)?;
        let pid = self
            .proc
            .main_pid_of(&id.id)
            .map_err(|e| {
                RadarError::Internal(format!(
                    "cannot read {}: {e}",
                    self.proc.root().display()
                ))
            })?
            .ok_or_else(|| {
                RadarError::NotFound(format!(
                    "no running container {id} on node {}; the pod may have moved or its container restarted",
                    self.config.node.name
                ))
            })?;
        Ok(MainProcess { pid })
    }

    /// Refuses containers that do not belong to this radar's node (only checked when the
    /// node label is configured).
    fn check_node(
        &self,
        id: &ContainerId,
        labels: Option<&HashMap<String, String>>,
    ) -> Result<(), RadarError> {
        let Some(key) = &self.config.node.label else {
            return Ok(());
        };
        let node = &self.config.node.name;
        match labels.and_then(|l| l.get(key)) {
            Some(owner) if owner == node => Ok(()),
            Some(owner) => Err(RadarError::PermissionDenied(format!(
                "container {id} runs on node {owner}, not on {node}; ask the radar of node {owner}"
            ))),
            None => Err(RadarError::PermissionDenied(format!(
                "container {id} has no `{key}` label, so radar cannot tell that it runs on node {node}"
            ))),
        }
    }

    /// Restarts the container: in place through Docker, otherwise by stopping its main
    /// process so the kubelet starts a new container.
    pub async fn restart(&self, id: &ContainerId) -> Result<Restarted, RadarError> {
        let old = self.main_process(id).await?;
        if id.runtime == RuntimeKind::Docker
            && let Some(docker) = self.docker().await
        {
            let seconds = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(i32::MAX);
            let options = RestartContainerOptionsBuilder::new().t(seconds).build();
            docker
                .restart_container(&id.id, Some(options))
                .await
                .map_err(|e| docker_error(id, e))?;
            let new = self.main_process(id).await.ok().map(|p| p.pid);
            return Ok(Restarted {
                in_place: true,
                old_pid: old.pid,
                new_pid: new,
            });
        }
        Process::open(old.pid)?
            .stop(self.config.stop_timeout)
            .await?;
        Ok(Restarted {
            in_place: false,
            old_pid: old.pid,
            new_pid: None,
        })
    }

    /// The node's runtime: Docker if its API answers, else containerd if its socket answers,
    /// else the runtime process found in `/proc` (without a version).
    pub async fn info(&self) -> RuntimeInfo {
        if let Some(docker) = self.docker().await {
            let version = docker
                .version()
                .await
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_default();
            return RuntimeInfo {
                name: "docker".into(),
                version,
            };
        }
        if let Some(version) = crate::containerd::version(&self.config.containerd_socket).await {
            return RuntimeInfo {
                name: "containerd".into(),
                version,
            };
        }
        for (comm, name) in [("containerd", "containerd"), ("crio", "cri-o")] {
            if self.proc.find_command(comm).is_some() {
                return RuntimeInfo {
                    name: name.into(),
                    version: String::new(),
                };
            }
        }
        RuntimeInfo {
            name: "unknown".into(),
            version: String::new(),
        }
    }
}

fn docker_error(id: &ContainerId, e: bollard::errors::Error) -> RadarError {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => RadarError::NotFound(format!(
            "Docker has no container {id}; the pod may have moved or its container restarted"
        )),
        e => RadarError::Internal(format!("Docker failed on container {id}: {e}")),
    }
}
