//! Tunnels to a node's agent: loopback listeners for radar, Syncthing's REST API and
//! Syncthing's sync port, shared by every spec and pod on that node.
//!
//! A Kubernetes port-forward (kube-rs, WebSocket) carries exactly one TCP stream, so each
//! accepted connection gets its own forward. A failed forward is retried with backoff,
//! looking the agent pod up again (it may have been replaced); the user does nothing.
//! Listeners bind port 0 on 127.0.0.1, so there is no race for ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{Cluster, ClusterError, agents};

/// radar's port in the agent pod.
pub const RADAR_PORT: u16 = radar_proto::DEFAULT_PORT;
/// Syncthing's REST port in the agent pod.
pub const SYNCTHING_API_PORT: u16 = 8384;
/// Syncthing's sync (BEP) port in the agent pod.
pub const SYNCTHING_SYNC_PORT: u16 = 22000;

/// The local ends of a node's tunnels. Dropping it closes them.
#[derive(Debug)]
pub struct NodeTunnel {
    /// The node.
    pub node: String,
    /// radar (gRPC).
    pub radar: SocketAddr,
    /// Syncthing's REST API.
    pub syncthing_api: SocketAddr,
    /// Syncthing's sync port.
    pub syncthing_sync: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for NodeTunnel {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Finds (and re-finds) the node's agent pod and opens forwards to it.
#[derive(Debug)]
struct Forwarder {
    cluster: Cluster,
    namespace: String,
    node: String,
    wait: Duration,
    pod: Mutex<Option<String>>,
}

/// How long a tunnel waits for a ready agent pod (one may be rolling).
pub const AGENT_WAIT: Duration = Duration::from_secs(60);

impl Forwarder {
    async fn pod(&self) -> Result<String, ClusterError> {
        let mut cached = self.pod.lock().await;
        if let Some(pod) = cached.as_ref() {
            return Ok(pod.clone());
        }
        let pod = agents::ready_on(&self.cluster, &self.namespace, &self.node, self.wait).await?;
        *cached = Some(pod.clone());
        Ok(pod)
    }

    async fn forget(&self) {
        *self.pod.lock().await = None;
    }

    /// Carries one accepted connection to `port` of the agent pod.
    async fn carry(&self, mut local: TcpStream, port: u16) {
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=6 {
            let pod = match self.pod().await {
                Ok(pod) => pod,
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "no agent to forward to");
                    return;
                }
            };
            match api.portforward(&pod, &[port]).await {
                Ok(mut forward) => {
                    let Some(mut remote) = forward.take_stream(port) else {
                        return;
                    };
                    if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut remote).await {
                        tracing::debug!(%pod, port, error = %e, "forwarded connection ended");
                    }
                    drop(remote);
                    let _ = forward.join().await;
                    return;
                }
                Err(e) => {
                    tracing::debug!(%pod, port, attempt, error = %e, "port-forward failed; retrying");
                    self.forget().await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::warn!(node = %self.node, port, "giving up on this connection after repeated port-forward failures");
    }
}

impl NodeTunnel {
    /// Opens the three listeners for `node`'s agent in `namespace`. The agent must be ready
    /// (it is looked up now, waiting up to [`AGENT_WAIT`], so a missing agent is reported).
    pub async fn open(
        cluster: &Cluster,
        namespace: &str,
        node: &str,
    ) -> Result<NodeTunnel, ClusterError> {
        Self::open_waiting(cluster, namespace, node, AGENT_WAIT).await
    }

    /// [`NodeTunnel::open`], waiting up to `wait` for a ready agent.
    pub async fn open_waiting(
        cluster: &Cluster,
        namespace: &str,
        node: &str,
        wait: Duration,
    ) -> Result<NodeTunnel, ClusterError> {
        let forwarder = Arc::new(Forwarder {
            cluster: cluster.clone(),
            namespace: namespace.to_string(),
            node: node.to_string(),
            wait,
            pod: Mutex::new(None),
        });
        forwarder.pod().await?;
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for port in [RADAR_PORT, SYNCTHING_API_PORT, SYNCTHING_SYNC_PORT] {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
                ClusterError::PortForward {
                    pod: node.to_string(),
                    port,
                    reason: format!("cannot listen on 127.0.0.1: {e}"),
                }
            })?;
            addrs.push(
                listener
                    .local_addr()
                    .map_err(|e| ClusterError::PortForward {
                        pod: node.to_string(),
                        port,
                        reason: e.to_string(),
                    })?,
            );
            let forwarder = forwarder.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((conn, _)) = listener.accept().await {
                    let _ = conn.set_nodelay(true);
                    let forwarder = forwarder.clone();
                    tokio::spawn(async move { forwarder.carry(conn, port).await });
                }
            }));
        }
        Ok(NodeTunnel {
            node: node.to_string(),
            radar: addrs[0],
            syncthing_api: addrs[1],
            syncthing_sync: addrs[2],
            tasks,
        })
    }
}

/// The tunnels of every node in use, opened on first need and shared by every spec and pod
/// on that node.
#[derive(Debug)]
pub struct TunnelPool {
    cluster: Cluster,
    namespace: String,
    wait: Duration,
    tunnels: Mutex<std::collections::HashMap<String, Arc<NodeTunnel>>>,
}

impl TunnelPool {
    /// A pool for the agent in `namespace`.
    pub fn new(cluster: Cluster, namespace: &str) -> TunnelPool {
        TunnelPool {
            cluster,
            namespace: namespace.to_string(),
            wait: AGENT_WAIT,
            tunnels: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// How long to wait for a node's agent to be ready (default [`AGENT_WAIT`]).
    pub fn waiting(mut self, wait: Duration) -> TunnelPool {
        self.wait = wait;
        self
    }

    /// The tunnel to `node`'s agent, opening it if this is the first need.
    pub async fn get(&self, node: &str) -> Result<Arc<NodeTunnel>, ClusterError> {
        let mut tunnels = self.tunnels.lock().await;
        if let Some(tunnel) = tunnels.get(node) {
            return Ok(tunnel.clone());
        }
        let tunnel = Arc::new(
            NodeTunnel::open_waiting(&self.cluster, &self.namespace, node, self.wait).await?,
        );
        tunnels.insert(node.to_string(), tunnel.clone());
        Ok(tunnel)
    }

    /// Closes `node`'s tunnel (its node is gone, or no spec needs it any more).
    pub async fn close(&self, node: &str) {
        self.tunnels.lock().await.remove(node);
    }
}
