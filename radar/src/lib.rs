//! radar, ksync's node agent: one per cluster node, beside that node's Syncthing.
//!
//! It answers over gRPC (`ksync.radar.v1`, see the `radar-proto` crate):
//! where a container's path is on the node (through `/proc/<pid>/root`, so it works on any
//! runtime and through any volume mount), and restarts or signals containers.
//!
//! # Layout
//!
//! - [`cli`]: `radar serve` and its flags.
//! - [`server`]: the tonic service; maps requests to the modules below and errors to statuses.
//! - [`container`]: container ids as pod statuses give them (`docker://…`, `containerd://…`,
//!   `cri-o://…`).
//! - [`runtime`]: finding a container's main process and acting on the container: Docker
//!   through its API (bollard), everything else through the host's `/proc`.
//! - [`containerd`]: containerd's own API (its version).
//! - [`procfs`]: reading the host's `/proc` (cgroups, namespaces, mounts).
//! - [`path`]: resolving a container path to a node path without ever leaving the container.
//! - [`signal`]: signalling and stopping processes (pidfd).
//! - [`syncthing`]: restarting the Syncthing beside radar through its REST API.
//! - [`error`]: what can go wrong, as gRPC statuses.

pub mod cli;
pub mod container;
pub mod containerd;
pub mod error;
pub mod path;
pub mod procfs;
pub mod runtime;
pub mod server;
pub mod signal;
pub mod syncthing;

pub use radar_proto::{DEFAULT_PORT, PROTOCOL_VERSION};
