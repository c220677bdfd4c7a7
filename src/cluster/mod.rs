//! Everything that talks to Kubernetes: the only user of kube-rs in ksync.
//!
//! - [`client`]: a client from the kubeconfig (context override) and the namespace rules.
//! - [`pods`]: which containers a spec targets, as a stream of appeared / changed / gone.
//! - [`agents`]: the agent pod on a node.
//! - [`tunnel`]: loopback listeners that port-forward to a node's agent (radar, Syncthing).
//! - [`install`]: `ksync init` and `ksync clean` (server-side apply, field manager `ksync`).
//! - [`doctor`]: the ordered health checks of `ksync doctor`.
//! - [`radar`]: a radar client through a tunnel, with the version handshake.

pub mod agents;
pub mod client;
pub mod doctor;
pub mod install;
pub mod pods;
pub mod radar;
pub mod tunnel;

pub use client::{Cluster, ClusterOptions};

/// What can go wrong with the cluster.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClusterError {
    /// No usable kubeconfig or context.
    #[error("cannot load the kubeconfig: {reason}")]
    #[diagnostic(
        code(ksync::cluster::kubeconfig),
        help(
            "point KUBECONFIG at a kubeconfig, or pick a context with `kubectl config use-context NAME` or `--context NAME`"
        )
    )]
    Kubeconfig {
        /// Why.
        reason: String,
    },
    /// The API server did not answer or refused.
    #[error("the Kubernetes API at {server} {what} failed: {reason}")]
    #[diagnostic(
        code(ksync::cluster::api),
        help(
            "check that the cluster is up and your credentials are valid (`kubectl --context {context} get pods`)"
        )
    )]
    Api {
        /// The API server.
        server: String,
        /// The context.
        context: String,
        /// What ksync asked.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The agent is missing or not ready on a node.
    #[error("no ready ksync agent on node {node}: {reason}")]
    #[diagnostic(
        code(ksync::cluster::no_agent),
        help(
            "install or repair it with `ksync init` (or `ksync init --upgrade`), then check with `ksync doctor`"
        )
    )]
    NoAgent {
        /// The node.
        node: String,
        /// What was found instead.
        reason: String,
    },
    /// A port-forward failed.
    #[error("cannot port-forward to {pod} port {port}: {reason}")]
    #[diagnostic(
        code(ksync::cluster::portforward),
        help(
            "ksync needs `create` on pods/portforward in the agent's namespace; `ksync doctor` checks it"
        )
    )]
    PortForward {
        /// The pod.
        pod: String,
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// radar answered with a different protocol.
    #[error("the agent on node {node} speaks radar protocol v{theirs}; this ksync speaks v{ours}")]
    #[diagnostic(
        code(ksync::cluster::radar_version),
        help("run `ksync init --upgrade` to install the agent that matches this ksync")
    )]
    RadarVersion {
        /// The node.
        node: String,
        /// The agent's protocol version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// radar failed.
    #[error("radar on node {node} failed: {reason}")]
    #[diagnostic(code(ksync::cluster::radar))]
    Radar {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// Installing the agent failed.
    #[error("{0}")]
    #[diagnostic(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// Waiting ran out.
    #[error("timed out after {seconds} s waiting for {what}")]
    #[diagnostic(
        code(ksync::cluster::timeout),
        help(
            "`ksync doctor` shows which part is not ready; `kubectl -n {namespace} get pods -o wide` shows the agent pods"
        )
    )]
    Timeout {
        /// What.
        what: String,
        /// How long.
        seconds: u64,
        /// The agent namespace.
        namespace: String,
    },
}
