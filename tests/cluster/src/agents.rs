//! The ksync agent of each node as the test cluster runs it: a real radar and a real
//! Syncthing as processes on loopback, standing in for the agent pod's two containers.
//!
//! Each node keeps its ports and its Syncthing home for the life of the cluster (the home is
//! what the DaemonSet's hostPath keeps on a real node), so an agent pod that is deleted and
//! recreated comes back with the same Syncthing identity and the same addresses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docker::NODE_LABEL;
use crate::error::Error;
use crate::portforward::PodNetwork;
use crate::programs;

/// radar's port in the agent pod.
pub const RADAR_PORT: u16 = 40321;
/// Syncthing's REST API port in the agent pod.
pub const SYNCTHING_API_PORT: u16 = 8384;
/// Syncthing's sync (BEP) port in the agent pod.
pub const SYNCTHING_SYNC_PORT: u16 = 22000;

/// The agent's two containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `radar serve`.
    Radar,
    /// `syncthing serve`.
    Syncthing,
}

impl Part {
    /// The container of that name in the agent DaemonSet.
    pub(crate) fn from_container(name: &str) -> Option<Part> {
        match name {
            "radar" => Some(Part::Radar),
            "syncthing" => Some(Part::Syncthing),
            _ => None,
        }
    }
}

/// Every node's agent files and ports.
pub(crate) struct Agents {
    dir: PathBuf,
    nodes: Mutex<HashMap<String, NodeAgent>>,
}

/// One node's agent: where its processes listen and keep their files.
#[derive(Debug, Clone)]
pub struct NodeAgent {
    node: String,
    /// radar's address.
    pub radar: SocketAddr,
    /// Syncthing's REST API address.
    pub syncthing_api: SocketAddr,
    /// Syncthing's sync (BEP) address.
    pub syncthing_sync: SocketAddr,
    /// Syncthing's home directory.
    pub syncthing_home: PathBuf,
    dir: PathBuf,
}

fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(Error::io("find a free port on 127.0.0.1"))
}

impl Agents {
    /// Agents keeping their files under `dir`.
    pub(crate) fn new(dir: PathBuf) -> Agents {
        Agents {
            dir,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// The agent of `node` (its ports and directories are chosen on first use).
    pub(crate) fn node(&self, node: &str) -> Result<NodeAgent, Error> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(agent) = nodes.get(node) {
            return Ok(agent.clone());
        }
        let dir = self.dir.join(node);
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let agent = NodeAgent {
            node: node.to_string(),
            radar: local(free_port()?),
            syncthing_api: local(free_port()?),
            syncthing_sync: local(free_port()?),
            syncthing_home: dir.join("syncthing"),
            dir,
        };
        nodes.insert(node.to_string(), agent.clone());
        Ok(agent)
    }

    /// The agent of `node`, if one was ever started.
    pub(crate) fn existing(&self, node: &str) -> Option<NodeAgent> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .cloned()
    }
}

impl NodeAgent {
    fn key_file(&self) -> PathBuf {
        self.dir.join("apikey")
    }

    /// The marker that keeps this agent's processes from starting.
    fn held_marker(&self) -> PathBuf {
        self.dir.join("held-down")
    }

    /// Keeps (or stops keeping) this agent's processes from starting.
    pub(crate) fn hold_down(&self, held: bool) -> Result<(), Error> {
        let marker = self.held_marker();
        if held {
            std::fs::write(&marker, "held down by a test\n")
                .map_err(Error::io(format!("write {}", marker.display())))
        } else {
            match std::fs::remove_file(&marker) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("remove {}", marker.display()))(e)),
            }
        }
    }

    /// The log file of one of its processes.
    pub fn log(&self, part_name: &str) -> PathBuf {
        self.dir.join(format!("{part_name}.log"))
    }

    /// The pod ports of the agent, mapped to the processes' addresses.
    pub(crate) fn network(&self) -> PodNetwork {
        PodNetwork {
            ip: None,
            ports: HashMap::from([
                (RADAR_PORT, self.radar),
                (SYNCTHING_API_PORT, self.syncthing_api),
                (SYNCTHING_SYNC_PORT, self.syncthing_sync),
            ]),
        }
    }

    /// What the agent pod's init container does: the API key file, then
    /// `radar syncthing-init`.
    pub(crate) async fn init(&self, api_key: &str) -> Result<(), Error> {
        tokio::fs::write(self.key_file(), api_key)
            .await
            .map_err(Error::io("write the agent's API key file"))?;
        let radar = programs::radar()?;
        let syncthing = programs::syncthing()?;
        let out = tokio::process::Command::new(radar)
            .arg("syncthing-init")
            .arg("--home")
            .arg(&self.syncthing_home)
            .arg("--syncthing")
            .arg(syncthing)
            .arg("--listen")
            .arg(format!("tcp://{}", self.syncthing_sync))
            .arg("--gui-address")
            .arg(self.syncthing_api.to_string())
            .output()
            .await
            .map_err(Error::io("run radar syncthing-init"))?;
        if !out.status.success() {
            return Err(Error::Program(format!(
                "radar syncthing-init failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Starts one of the agent's processes.
    pub(crate) fn spawn(&self, part: Part, api_key: &str) -> Result<tokio::process::Child, Error> {
        if part == Part::Radar && self.held_marker().exists() {
            return Err(Error::Program(format!(
                "radar of node {} is held down by the test",
                self.node
            )));
        }
        let (mut command, what) = match part {
            Part::Radar => {
                let mut c = programs::command(&programs::radar()?, &self.log("radar"))?;
                c.args(["serve", "--bind", "127.0.0.1", "--port"])
                    .arg(self.radar.port().to_string())
                    .args(["--node-name", &self.node, "--node-label", NODE_LABEL])
                    .args(["--docker-socket", "/var/run/docker.sock"])
                    .arg("--syncthing-url")
                    .arg(format!("http://{}", self.syncthing_api))
                    .arg("--syncthing-api-key-file")
                    .arg(self.key_file())
                    .args(["--log-level", "info"]);
                (c, "radar")
            }
            Part::Syncthing => {
                let mut c = programs::command(&programs::syncthing()?, &self.log("syncthing"))?;
                c.arg("serve")
                    .arg(format!("--home={}", self.syncthing_home.display()))
                    .args(["--no-browser", "--no-upgrade"])
                    .arg(format!("--gui-address={}", self.syncthing_api))
                    .arg(format!("--gui-apikey={api_key}"))
                    .env("STNODEFAULTFOLDER", "1")
                    .env("STNOUPGRADE", "1")
                    .env("HOME", &self.syncthing_home);
                (c, "syncthing")
            }
        };
        command
            .spawn()
            .map_err(Error::io(format!("start {what} for node {}", self.node)))
    }

    /// The readiness probe of one of its processes (as the DaemonSet's `radar probe`): radar
    /// accepts connections, Syncthing answers `/rest/system/ping` with the API key.
    pub(crate) async fn ready(&self, part: Part, api_key: &str) -> bool {
        let probe = async {
            match part {
                Part::Radar => TcpStream::connect(self.radar).await.is_ok(),
                Part::Syncthing => pong(self.syncthing_api, api_key).await,
            }
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .unwrap_or(false)
    }
}

/// `GET /rest/system/ping` answers `200`.
async fn pong(addr: SocketAddr, api_key: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let request =
        format!("GET /rest/system/ping HTTP/1.0\r\nHost: {addr}\r\nX-API-Key: {api_key}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).await.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&response);
    text.lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"))
}
