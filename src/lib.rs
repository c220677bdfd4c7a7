//! ksync keeps local folders in sync with containers running in Kubernetes, and reloads the
//! containers when a sync lands.
//!
//! # Layout
//!
//! - [`agent`]: the cluster side (radar + Syncthing DaemonSet) as Kubernetes manifests.
//! - [`cli`]: the command line; one module per subcommand, each only calling domain code.
//! - [`cluster`]: Kubernetes (the only kube-rs user): pod watching, agent lookup, tunnels,
//!   `init`/`clean`/`doctor`.
//! - [`config`]: loading `ksync.toml`, `ksync.local.toml`, `~/.ksync/ksync.yaml`, `KSYNC_*`
//!   and flags (figment), and editing the user file.
//! - [`spec`]: validated specs (local folder → container path for a pod or selector).
//! - [`selector`]: Kubernetes label selectors. [`names`]: Kubernetes naming rules.
//! - [`template`]: minijinja templates in spec fields. [`git`]: the project's git state.
//! - [`syncthing`]: driving the local and the nodes' Syncthing (REST, events, folders,
//!   completion).
//! - [`watch`]: ksync's own watcher of local folders (changed sub-paths, batched).
//! - [`diagnostic`]: problems with file, line and fix. [`error`]: command errors and exit
//!   codes.
//!
//! See ARCHITECTURE.md for the whole picture and its invariants.

pub mod agent;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod diagnostic;
pub mod error;
pub mod git;
pub mod names;
pub mod selector;
pub mod spec;
pub mod syncthing;
pub mod template;
pub mod watch;

pub use error::Error;
