//! The Docker Engine: the only module that talks to it (through bollard).
//!
//! Pod containers are named and labelled the way dockershim did (`k8s_<container>_<pod>_
//! <namespace>_<uid>_<attempt>`, `io.kubernetes.*` labels), plus `io.ksync.node=<node>`, which
//! tells radar which simulated node a container is on, and the labels that mark everything
//! the test cluster creates for cleanup.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;

use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListVolumesOptions, RemoveContainerOptionsBuilder, RemoveVolumeOptions, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use futures::{Stream, StreamExt, TryStreamExt};

use crate::error::Error;

/// The image pod containers run: Debian's busybox-static with every applet linked.
pub(crate) const IMAGE: &str = "ksync-test/cluster-busybox:1";
/// On everything the test cluster creates in Docker (`docker ps --filter label=...`).
pub const TEST_LABEL: (&str, &str) = ("io.ksync.test", "cluster");
/// The id of the test cluster that created a container or volume.
pub(crate) const CLUSTER_LABEL: &str = "io.ksync.test.cluster";
/// The pid of the test process that created a container or volume.
pub(crate) const OWNER_LABEL: &str = "io.ksync.test.owner";
/// The simulated node a container runs on (radar's `--node-label`).
pub const NODE_LABEL: &str = "io.ksync.node";
/// Which pod container a Docker container is (dockershim's labels).
pub(crate) const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub(crate) const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub(crate) const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub(crate) const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// A command that stays up and exits 0 promptly on SIGTERM.
pub(crate) const IDLE: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"];

/// The Docker Engine, for one test cluster.
#[derive(Clone)]
pub(crate) struct Docker {
    client: bollard::Docker,
    cluster: String,
}

/// One container to run.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    /// Docker container name.
    pub(crate) name: String,
    /// The node it runs on.
    pub(crate) node: String,
    /// Labels besides the test cluster's own.
    pub(crate) labels: HashMap<String, String>,
    /// Command and arguments.
    pub(crate) command: Vec<String>,
    /// `NAME=value` pairs.
    pub(crate) env: Vec<String>,
    /// `source:target` mounts (a volume name or host path, then the container path).
    pub(crate) binds: Vec<String>,
    /// `container:<id>` to share another container's network, none for the default bridge.
    pub(crate) network_of: Option<String>,
    /// Working directory.
    pub(crate) working_dir: Option<String>,
}

/// What the cluster needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerState {
    /// Its main process runs.
    pub(crate) running: bool,
    /// Exit code of the last run.
    pub(crate) exit_code: i64,
    /// Killed for lack of memory.
    pub(crate) oom_killed: bool,
    /// When it started (RFC 3339).
    pub(crate) started_at: String,
    /// When it finished (RFC 3339).
    pub(crate) finished_at: String,
    /// Its IP on the default bridge, if it has its own network.
    pub(crate) ip: Option<IpAddr>,
    /// Image id.
    pub(crate) image_id: String,
}

/// A container event of this test cluster.
#[derive(Debug, Clone)]
pub(crate) struct ContainerEvent {
    /// `start`, `die`, `destroy`, ...
    pub(crate) action: String,
    /// The container id.
    pub(crate) id: String,
    /// Its labels.
    pub(crate) labels: HashMap<String, String>,
}

fn not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Docker {
    /// Connects to the local Docker Engine.
    pub(crate) async fn connect(cluster: &str) -> Result<Docker, Error> {
        let client = bollard::Docker::connect_with_socket_defaults()
            .map_err(Error::docker("connect to /var/run/docker.sock"))?
            .negotiate_version()
            .await
            .map_err(Error::docker("reach the Docker Engine (is it running?)"))?;
        Ok(Docker {
            client,
            cluster: cluster.to_string(),
        })
    }

    fn labels(&self, node: &str, extra: &HashMap<String, String>) -> HashMap<String, String> {
        let mut labels = extra.clone();
        labels.insert(TEST_LABEL.0.into(), TEST_LABEL.1.into());
        labels.insert(CLUSTER_LABEL.into(), self.cluster.clone());
        labels.insert(OWNER_LABEL.into(), std::process::id().to_string());
        labels.insert(NODE_LABEL.into(), node.into());
        labels
    }

    /// Builds the pod image from `/usr/bin/busybox` unless it exists.
    pub(crate) async fn ensure_image(&self) -> Result<(), Error> {
        if self.client.inspect_image(IMAGE).await.is_ok() {
            return Ok(());
        }
        let busybox = Path::new("/usr/bin/busybox");
        if !busybox.exists() {
            return Err(Error::Program(
                "the test cluster's pods run Debian's busybox-static (/usr/bin/busybox): apt-get install busybox-static (tests/run does)".into(),
            ));
        }
        let tar = tokio::task::spawn_blocking(|| rootfs_tar(Path::new("/usr/bin/busybox")))
            .await
            .map_err(|e| Error::Program(format!("building the image root failed: {e}")))??;
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(IMAGE.split(':').next().unwrap_or(IMAGE))
            .tag(IMAGE.split(':').nth(1).unwrap_or("latest"))
            .changes(vec!["CMD [\"/bin/sh\"]".into()])
            .build();
        self.client
            .create_image(Some(options), Some(bollard::body_full(tar.into())), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(Error::docker(format!("import {IMAGE}")))?;
        Ok(())
    }

    /// Creates a named volume.
    pub(crate) async fn create_volume(&self, name: &str, node: &str) -> Result<(), Error> {
        self.client
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_string()),
                labels: Some(self.labels(node, &HashMap::new())),
                ..Default::default()
            })
            .await
            .map_err(Error::docker(format!("create volume {name}")))?;
        Ok(())
    }

    /// Removes a volume (gone already is fine).
    pub(crate) async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        match self
            .client
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Err(e) if !not_found(&e) => Err(Error::Docker {
                action: format!("remove volume {name}"),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Creates and starts a container; returns its id.
    pub(crate) async fn run(&self, spec: &RunSpec) -> Result<String, Error> {
        let body = ContainerCreateBody {
            image: Some(IMAGE.to_string()),
            cmd: Some(spec.command.clone()),
            env: Some(spec.env.clone()),
            labels: Some(self.labels(&spec.node, &spec.labels)),
            working_dir: spec.working_dir.clone(),
            host_config: Some(HostConfig {
                binds: Some(spec.binds.clone()),
                network_mode: spec.network_of.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .client
            .create_container(Some(options), body)
            .await
            .map_err(Error::docker(format!("create container {}", spec.name)))?;
        self.client
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("start container {}", spec.name)))?;
        Ok(created.id)
    }

    /// The state of a container; `None` when it no longer exists.
    pub(crate) async fn state(&self, id: &str) -> Result<Option<ContainerState>, Error> {
        let info = match self
            .client
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => {
                return Err(Error::Docker {
                    action: format!("inspect container {id}"),
                    source: e,
                });
            }
        };
        let state = info.state.unwrap_or_default();
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|networks| {
                networks
                    .values()
                    .find_map(|e| e.ip_address.as_deref()?.parse().ok())
            });
        Ok(Some(ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            started_at: state.started_at.unwrap_or_default(),
            finished_at: state.finished_at.unwrap_or_default(),
            ip,
            image_id: info.image.unwrap_or_default(),
        }))
    }

    /// Sends a signal (`KILL`, `TERM`) to a container's main process.
    pub(crate) async fn kill(&self, id: &str, signal: &str) -> Result<(), Error> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        match self.client.kill_container(id, Some(options)).await {
            // Not running (409) or gone (404): nothing to kill.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            })
            | Ok(()) => Ok(()),
            Err(e) => Err(Error::Docker {
                action: format!("kill container {id}"),
                source: e,
            }),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace_seconds`.
    pub(crate) async fn stop(&self, id: &str, grace_seconds: i32) -> Result<(), Error> {
        let options = StopContainerOptionsBuilder::new().t(grace_seconds).build();
        match self.client.stop_container(id, Some(options)).await {
            Err(e)
                if !not_found(&e)
                    && !matches!(
                        e,
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 304,
                            ..
                        }
                    ) =>
            {
                Err(Error::Docker {
                    action: format!("stop container {id}"),
                    source: e,
                })
            }
            _ => Ok(()),
        }
    }

    /// Removes a container, running or not (gone already is fine).
    pub(crate) async fn remove(&self, id: &str) -> Result<(), Error> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.client.remove_container(id, Some(options)).await {
            Err(e)
                if !not_found(&e)
                    && !matches!(
                        e,
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 409,
                            ..
                        }
                    ) =>
            {
                Err(Error::Docker {
                    action: format!("remove container {id}"),
                    source: e,
                })
            }
            _ => Ok(()),
        }
    }

    /// Container events of this test cluster, from now on.
    pub(crate) fn events(
        &self,
    ) -> Pin<Box<dyn Stream<Item = Result<ContainerEvent, Error>> + Send>> {
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{CLUSTER_LABEL}={}", self.cluster)]),
        ]);
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        self.client
            .events(Some(options))
            .map(|event| {
                let event = event.map_err(Error::docker("follow container events"))?;
                let actor = event.actor.unwrap_or_default();
                Ok(ContainerEvent {
                    action: event.action.unwrap_or_default(),
                    id: actor.id.unwrap_or_default(),
                    labels: actor.attributes.unwrap_or_default(),
                })
            })
            .boxed()
    }

    /// Removes every container and volume this test cluster created.
    pub(crate) async fn remove_everything(&self) -> Result<(), Error> {
        self.remove_labelled(&format!("{CLUSTER_LABEL}={}", self.cluster), |_| true)
            .await
    }

    /// Removes what test clusters of test processes that no longer run left behind (a test
    /// process killed before its clusters were dropped).
    pub(crate) async fn remove_orphans(&self) -> Result<(), Error> {
        let orphaned = |labels: &HashMap<String, String>| {
            labels
                .get(OWNER_LABEL)
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists())
        };
        self.remove_labelled(&format!("{}={}", TEST_LABEL.0, TEST_LABEL.1), orphaned)
            .await
    }

    async fn remove_labelled(
        &self,
        label: &str,
        keep: impl Fn(&HashMap<String, String>) -> bool,
    ) -> Result<(), Error> {
        let label = label.to_string();
        let filters = HashMap::from([("label", vec![label.clone()])]);
        let containers = self
            .client
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(Error::docker("list the cluster's containers"))?;
        // Pod containers first: they use their infra container's network.
        let containers = containers
            .into_iter()
            .filter(|c| keep(c.labels.as_ref().unwrap_or(&HashMap::new())));
        let (infra, others): (Vec<_>, Vec<_>) = containers.partition(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(CONTAINER_NAME_LABEL))
                .is_some_and(|n| n == "POD")
        });
        for c in others.into_iter().chain(infra) {
            if let Some(id) = c.id {
                self.remove(&id).await?;
            }
        }
        let volumes = self
            .client
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(HashMap::from([("label".to_string(), vec![label])])),
            }))
            .await
            .map_err(Error::docker("list the cluster's volumes"))?;
        for v in volumes.volumes.unwrap_or_default() {
            if keep(&v.labels) {
                self.remove_volume(&v.name).await?;
            }
        }
        Ok(())
    }
}

/// A tar of a root filesystem holding busybox, a link for each of its applets, and the few
/// files programs expect.
fn rootfs_tar(busybox: &Path) -> Result<Vec<u8>, Error> {
    let root = tempfile::tempdir().map_err(Error::io("create a temporary directory"))?;
    let r = root.path();
    for dir in ["bin", "tmp", "etc", "proc", "sys", "dev", "root", "data"] {
        std::fs::create_dir_all(r.join(dir)).map_err(Error::io("create the image root"))?;
    }
    std::fs::copy(busybox, r.join("bin/busybox")).map_err(Error::io("copy busybox"))?;
    let list = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(Error::io("run busybox --list"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" && !applet.contains('/') {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(applet))
                .map_err(Error::io("link an applet"))?;
        }
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n",
    )
    .map_err(Error::io("write /etc/passwd"))?;
    std::fs::write(r.join("etc/group"), "root:x:0:\napp:x:1000:\n")
        .map_err(Error::io("write /etc/group"))?;
    let out = std::process::Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(r)
        .args(["-c", "."])
        .output()
        .map_err(Error::io("run tar"))?;
    if !out.status.success() {
        return Err(Error::Program(format!(
            "tar failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}
