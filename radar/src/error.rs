//! What can go wrong in radar, and how each maps to a gRPC status.

/// A failed request. Messages are complete sentences a ksync user can act on.
#[derive(Debug, thiserror::Error)]
pub enum RadarError {
    /// The request is malformed (bad container id, relative path, `..`, unknown signal).
    #[error("{0}")]
    InvalidArgument(String),
    /// The container (or path) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is refused for safety (symlink escape, container of another node).
    #[error("{0}")]
    PermissionDenied(String),
    /// The node cannot do this right now (no Docker socket, path is a file, process gone).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something failed on the node (I/O, the runtime's API).
    #[error("{0}")]
    Internal(String),
}

impl From<RadarError> for tonic::Status {
    fn from(e: RadarError) -> Self {
        match e {
            RadarError::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            RadarError::NotFound(m) => tonic::Status::not_found(m),
            RadarError::PermissionDenied(m) => tonic::Status::permission_denied(m),
            RadarError::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            RadarError::Internal(m) => tonic::Status::internal(m),
        }
    }
}
