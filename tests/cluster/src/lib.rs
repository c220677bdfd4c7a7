//! The ksync test cluster: a local Kubernetes API server backed by real Docker containers,
//! real radar processes and real Syncthing instances. Test support only; never part of the
//! shipped binaries.
//!
//! No Kubernetes API server can be had on the machines ksync is developed and tested on, and
//! kind/k3d need images that cannot be pulled. This crate serves, over plain HTTP on a
//! loopback port, everything of the Kubernetes API that ksync uses, with the semantics
//! clients rely on (resourceVersions, watches, `410 Gone`, bookmarks, server-side apply,
//! WebSocket port-forwarding, `Status` errors), and backs it with real things: each pod
//! container is a Docker container, and applying ksync's agent DaemonSet starts a real radar
//! and a real Syncthing for each node.
//!
//! ```no_run
//! # async fn example() -> Result<(), ksync_test_cluster::Error> {
//! use std::time::Duration;
//! use ksync_test_cluster::{Container, TestCluster, Volume, Workload};
//!
//! let cluster = TestCluster::with_nodes(&["node-a", "node-b"]).await?;
//! cluster
//!     .add_workload(
//!         Workload::new("default", "web")
//!             .replicas(2)
//!             .volume(Volume::empty_dir("data"))
//!             .container(Container::new("app").mount("data", "/data")),
//!     )
//!     .await?;
//! let pods = cluster.wait_for_pods("default", "app=web", 2, Duration::from_secs(60)).await?;
//! // Point ksync (or kubectl, or kube-rs) at cluster.kubeconfig_path().
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`TestCluster`] (`cluster`): the handle: nodes, workloads, queries, fault switches.
//! - `server`: the HTTP server (`request`: what a request asks for; `handlers`: the verbs;
//!   `watch`: watch streams; `table`: `Table` and metadata formats), `discovery`: the kinds
//!   served, `status`: `Status` errors, `access`: authorization and `SelfSubjectAccessReview`,
//!   `portforward`: the WebSocket channel protocol, `faults`: the API server's fault
//!   switches.
//! - `store`: objects, resourceVersions, history and watch fan-out; `filter`: label and
//!   field selectors; `apply`: server-side apply and managed fields; `admission`: per-kind
//!   rules on writes.
//! - `controller`: workloads, DaemonSets, garbage collection, namespaces; `kubelet`: pods
//!   run as Docker containers or agent processes; `docker`: the only user of the Docker API;
//!   `agents`: each node's radar and Syncthing; `programs`: finding and running them.
//! - [`Workload`], [`Container`], [`Volume`], [`Node`] (`spec`): what tests declare.
//! - [`real_cluster`] (`real`): the real cluster `KSYNC_E2E_KUBECONFIG` names, for
//!   end-to-end suites that also run against one.

mod access;
mod admission;
mod agents;
mod apply;
mod cluster;
mod controller;
mod discovery;
mod docker;
mod error;
mod faults;
mod filter;
mod kubeconfig;
mod kubelet;
mod portforward;
mod programs;
mod random;
mod real;
mod server;
mod spec;
mod state;
mod status;
mod store;

pub use access::{Permission, USER};
pub use agents::{NodeAgent, RADAR_PORT, SYNCTHING_API_PORT, SYNCTHING_SYNC_PORT};
pub use cluster::{TestCluster, pod_ready};
pub use docker::{NODE_LABEL, TEST_LABEL};
pub use error::Error;
pub use kubeconfig::CONTEXT;
pub use programs::RADAR_BIN_ENV;
pub use real::{E2E_AGENT_IMAGE_ENV, E2E_KUBECONFIG_ENV, RealCluster, real_cluster};
pub use spec::{Container, Node, RestartPolicy, Volume, Workload};
