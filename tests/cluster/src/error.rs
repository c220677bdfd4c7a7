//! Why the test cluster could not do what a test asked.

use std::time::Duration;

/// A failure of the test cluster (not of the code under test).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Docker Engine refused or is not reachable.
    #[error("docker: failed to {action}: {source}")]
    Docker {
        /// What was being done.
        action: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A file, socket or process operation failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (radar, Syncthing, cargo) is missing or failed.
    #[error("{0}")]
    Program(String),
    /// The API server refused a write the cluster itself made.
    #[error("the API server refused: {0}")]
    Api(String),
    /// A node, workload or pod the test named does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A declaration is invalid (a name that is not a DNS-1123 label, no containers, ...).
    #[error("invalid declaration: {0}")]
    Invalid(String),
    /// Something the test waited for did not happen in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
}

impl Error {
    pub(crate) fn docker(
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}

impl From<crate::status::ApiError> for Error {
    fn from(err: crate::status::ApiError) -> Self {
        Error::Api(err.to_string())
    }
}
