//! Container ids as the kubelet reports them in pod status: `<runtime>://<id>`.

use std::fmt;

use crate::error::RadarError;

/// The runtime named by a container id's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `docker://`
    Docker,
    /// `containerd://`
    Containerd,
    /// `cri-o://`
    CriO,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Containerd => "containerd",
            RuntimeKind::CriO => "cri-o",
        })
    }
}

/// A parsed, validated container id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId {
    /// Which runtime runs it.
    pub runtime: RuntimeKind,
    /// The runtime's id (no scheme).
    pub id: String,
}

impl ContainerId {
    /// Parses `docker://…`, `containerd://…` or `cri-o://…`. Ids are 1-128 characters of
    /// letters, digits, `_`, `.` and `-` (runtimes use 64 hex digits).
    pub fn parse(raw: &str) -> Result<Self, RadarError> {
        let invalid =
            |why: &str| RadarError::InvalidArgument(format!("container id `{raw}` {why}"));
        let (scheme, id) = raw.split_once("://").ok_or_else(|| {
            invalid("has no runtime scheme; expected `docker://…`, `containerd://…` or `cri-o://…` as in the pod status")
        })?;
        let runtime = match scheme {
            "docker" => RuntimeKind::Docker,
            "containerd" => RuntimeKind::Containerd,
            "cri-o" => RuntimeKind::CriO,
            other => {
                return Err(invalid(&format!(
                    "names runtime `{other}`; radar knows docker, containerd and cri-o"
                )));
            }
        };
        if id.is_empty() || id.len() > 128 {
            return Err(invalid("has an empty or over-long id"));
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            || id.starts_with(['.', '-'])
        {
            return Err(invalid(
                "has characters other than letters, digits, `_`, `.` and `-` in its id",
            ));
        }
        Ok(ContainerId {
            runtime,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.runtime, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pod_status_ids() {
        let id = ContainerId::parse("containerd://4f2a").expect("valid");
        assert_eq!(id.runtime, RuntimeKind::Containerd);
        assert_eq!(id.id, "4f2a");
        assert_eq!(id.to_string(), "containerd://4f2a");
        assert_eq!(
            ContainerId::parse("cri-o://ab").expect("valid").runtime,
            RuntimeKind::CriO
        );
        for bad in [
            "4f2a",
            "docker://",
            "podman://x",
            "docker://../x",
            "docker://a/b",
            "docker://a b",
        ] {
            assert!(
                matches!(ContainerId::parse(bad), Err(RadarError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
