//! Finding the Syncthing binary and checking its version.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::SyncthingError;

/// Oldest Syncthing ksync drives (Debian 12's package is 1.19.2).
pub const MIN_VERSION: (u32, u32) = (1, 19);

/// A Syncthing binary that ksync can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncthingBinary {
    /// Its path.
    pub path: PathBuf,
    /// Its version, e.g. `1.19.2`.
    pub version: String,
}

impl SyncthingBinary {
    /// Finds Syncthing: `KSYNC_SYNCTHING` (from `env`), then the configured path, then `PATH`.
    /// Checks that it runs and is at least [`MIN_VERSION`].
    pub fn find(
        env_override: Option<&str>,
        configured: Option<&Path>,
        path_var: Option<&str>,
    ) -> Result<SyncthingBinary, SyncthingError> {
        let mut tried = Vec::new();
        let candidate = if let Some(p) = env_override.filter(|p| !p.is_empty()) {
            tried.push(format!("KSYNC_SYNCTHING={p}"));
            Some(PathBuf::from(p))
        } else if let Some(p) = configured {
            tried.push(format!("the configured path {}", p.display()));
            Some(p.to_path_buf())
        } else {
            tried.push("`syncthing` on PATH".to_string());
            path_var.and_then(|paths| {
                std::env::split_paths(paths)
                    .map(|dir| dir.join("syncthing"))
                    .find(|p| p.is_file())
            })
        };
        let path = candidate
            .filter(|p| p.is_file())
            .ok_or(SyncthingError::NotInstalled {
                tried: tried.join(", "),
            })?;
        let version = version_of(&path)?;
        Ok(SyncthingBinary { path, version })
    }
}

/// Runs `syncthing --version` and checks the version.
fn version_of(path: &Path) -> Result<String, SyncthingError> {
    let output =
        Command::new(path)
            .arg("--version")
            .output()
            .map_err(|e| SyncthingError::Unrunnable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text).ok_or_else(|| SyncthingError::Unrunnable {
        path: path.to_path_buf(),
        reason: format!(
            "`--version` printed {:?}, not a Syncthing version",
            text.trim()
        ),
    })?;
    if (version.0, version.1) < MIN_VERSION {
        return Err(SyncthingError::TooOld {
            path: path.to_path_buf(),
            version: format!("{}.{}.{}", version.0, version.1, version.2),
        });
    }
    Ok(format!("{}.{}.{}", version.0, version.1, version.2))
}

/// `syncthing v1.19.2-ds1 "Fermium Flea" (go1.19.8 …)` → (1, 19, 2).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text.split_whitespace().find(|w| w.starts_with('v'))?;
    let core = word.trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("syncthing v1.19.2-ds1 \"Fermium Flea\" (go1.19.8 linux-amd64)"),
            Some((1, 19, 2))
        );
        assert_eq!(
            parse_version("syncthing v2.0.1 \"Hafnium\""),
            Some((2, 0, 1))
        );
        assert_eq!(parse_version("nope"), None);
    }

    fn fake(dir: &Path, output: &str) -> PathBuf {
        let path = dir.join("syncthing");
        std::fs::write(&path, format!("#!/bin/sh\necho '{output}'\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn finds_checks_and_explains() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = SyncthingBinary::find(None, None, Some("/nonexistent")).expect_err("missing");
        assert!(matches!(missing, SyncthingError::NotInstalled { .. }));

        let old = fake(dir.path(), "syncthing v1.18.6 \"Fermium Flea\"");
        let e =
            SyncthingBinary::find(Some(old.to_str().expect("utf-8")), None, None).expect_err("old");
        assert!(matches!(e, SyncthingError::TooOld { .. }), "{e}");

        let new = fake(dir.path(), "syncthing v1.19.2-ds1 \"Fermium Flea\"");
        let found = SyncthingBinary::find(None, None, Some(dir.path().to_str().expect("utf-8")))
            .expect("found on PATH");
        assert_eq!(found.path, new);
        assert_eq!(found.version, "1.19.2");

        let garbage = fake(dir.path(), "hello");
        let e = SyncthingBinary::find(None, Some(&garbage), None).expect_err("not syncthing");
        assert!(matches!(e, SyncthingError::Unrunnable { .. }), "{e}");
    }
}
