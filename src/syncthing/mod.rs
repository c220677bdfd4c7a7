//! Driving Syncthing, the engine that moves files: the local instance ksync supervises and
//! each node's instance in the agent pod, both through their REST APIs.
//!
//! - [`binary`]: finding Syncthing and checking its version.
//! - [`instance`]: the supervised local Syncthing (persistent identity, random API key,
//!   loopback only, restarted if it dies).
//! - [`client`] and [`model`]: the REST client and its typed shapes.
//! - [`events`]: event long-polls fanned out to subscribers, never replaying history.
//! - [`folder`]: pairing devices and sharing one folder pair by direction, with ignores.
//! - [`completion`]: "have my changes landed on that device?", driven by events.
//! - [`changes`]: which changes came from here and which from the other side.
//! - [`trigger`]: ksync's watcher batches to scans of exactly the changed paths.
//! - [`ignores`]: default patterns, `.ksyncignore`, and the matcher ksync's watcher uses.
//!
//! Only this module talks to Syncthing.

pub mod binary;
pub mod changes;
pub mod client;
pub mod completion;
pub mod events;
pub mod folder;
pub mod ignores;
pub mod instance;
pub mod model;
pub mod trigger;

use std::path::PathBuf;

pub use binary::{MIN_VERSION, SyncthingBinary};
pub use client::Client;
pub use completion::{Landed, wait_landed};
pub use events::EventHub;
pub use folder::{FolderSpec, Peer, pair, share, unshare};
pub use instance::{InstanceOptions, LocalSyncthing};

/// How to install Syncthing, for error messages.
pub const INSTALL_HELP: &str = "install Syncthing 1.19 or newer (Debian/Ubuntu: `apt-get install syncthing`; macOS: `brew install syncthing`), or point KSYNC_SYNCTHING at the binary";

/// What can go wrong with Syncthing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SyncthingError {
    /// No binary found.
    #[error("Syncthing is not installed (looked for {tried})")]
    #[diagnostic(code(ksync::syncthing::not_installed), help("{}", INSTALL_HELP))]
    NotInstalled {
        /// Where ksync looked.
        tried: String,
    },
    /// The binary does not run or is not Syncthing.
    #[error("{} cannot be used as Syncthing: {reason}", path.display())]
    #[diagnostic(code(ksync::syncthing::unrunnable), help("{}", INSTALL_HELP))]
    Unrunnable {
        /// The binary.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The binary is older than [`MIN_VERSION`].
    #[error("{} is Syncthing {version}; ksync needs 1.19 or newer", path.display())]
    #[diagnostic(code(ksync::syncthing::too_old), help("{}", INSTALL_HELP))]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// The local Syncthing did not start.
    #[error("the local Syncthing did not start: {reason}")]
    #[diagnostic(
        code(ksync::syncthing::start),
        help("its log is {}; remove {} to start from a fresh identity", log.display(), home.display())
    )]
    Start {
        /// Why.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// Its home.
        home: PathBuf,
    },
    /// Local state could not be read or written.
    #[error("cannot {action} {}: {reason}", path.display())]
    #[diagnostic(code(ksync::syncthing::state))]
    State {
        /// What ksync tried.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The API did not answer.
    #[error("Syncthing at {url} does not answer: {reason}")]
    #[diagnostic(
        code(ksync::syncthing::unreachable),
        help(
            "for a node's Syncthing, check the agent pod (`ksync doctor`); locally, ksync restarts it"
        )
    )]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The API refused the key.
    #[error("Syncthing at {url} refused ksync's API key")]
    #[diagnostic(
        code(ksync::syncthing::unauthorized),
        help(
            "the key in the agent Secret and the one Syncthing runs with must match; `ksync init --upgrade` resets them"
        )
    )]
    Unauthorized {
        /// What was asked.
        url: String,
    },
    /// The API answered with an error.
    #[error("Syncthing refused {method} {path} ({status}): {body}")]
    #[diagnostic(code(ksync::syncthing::api))]
    Api {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Its explanation.
        body: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    #[diagnostic(code(ksync::syncthing::timeout))]
    Timeout {
        /// What.
        what: String,
        /// How long ksync waited.
        seconds: u64,
    },
    /// A folder is in error on one side.
    #[error("folder {folder} is in error on {side}: {reason}")]
    #[diagnostic(code(ksync::syncthing::folder))]
    Folder {
        /// Folder ID.
        folder: String,
        /// `local` or `remote`.
        side: &'static str,
        /// Syncthing's explanation.
        reason: String,
    },
}
