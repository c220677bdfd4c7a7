//! Where ksync's files are: the ksync home (`~/.ksync`, moved by `KSYNC_HOME`) and the
//! project file (`ksync.toml` in the working directory or the nearest parent).

use std::path::{Component, Path, PathBuf};

/// Name of the committed project file.
pub const PROJECT_FILE: &str = "ksync.toml";
/// Name of the untracked personal override file beside the project file.
pub const LOCAL_FILE: &str = "ksync.local.toml";
/// Name of the user file inside the ksync home.
pub const USER_FILE: &str = "ksync.yaml";

/// The ksync home directory: user config, Syncthing state, daemon state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsyncHome {
    dir: PathBuf,
}

impl KsyncHome {
    /// `KSYNC_HOME` if set, else `~/.ksync`. `None` when neither it nor `HOME` is known.
    pub fn from_env() -> Option<Self> {
        if let Some(dir) = std::env::var_os("KSYNC_HOME").filter(|d| !d.is_empty()) {
            return Some(KsyncHome { dir: dir.into() });
        }
        let home = std::env::var_os("HOME").filter(|d| !d.is_empty())?;
        Some(KsyncHome {
            dir: PathBuf::from(home).join(".ksync"),
        })
    }

    /// A home at `dir` (tests and embedders).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        KsyncHome { dir: dir.into() }
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ksync.yaml`, the user file.
    pub fn user_file(&self) -> PathBuf {
        self.dir.join(USER_FILE)
    }

    /// The local Syncthing's home (identity, database, API key).
    pub fn syncthing_home(&self) -> PathBuf {
        self.dir.join("syncthing")
    }
}

/// The nearest `ksync.toml` in `start` or one of its parents.
pub fn find_project_file(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(PROJECT_FILE))
        .find(|candidate| candidate.is_file())
}

/// `path` made absolute against `base` and cleaned of `.` and `..` without touching the
/// filesystem (the folder may not exist yet).
pub fn absolutize(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `~/…` for paths under the home directory, for display.
pub fn tilde(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && let Ok(rest) = path.strip_prefix(&home)
    {
        return Path::new("~").join(rest).display().to_string();
    }
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolutize_cleans_without_the_filesystem() {
        let base = Path::new("/work/app");
        assert_eq!(
            absolutize(base, Path::new("src")),
            Path::new("/work/app/src")
        );
        assert_eq!(
            absolutize(base, Path::new("../lib/./x")),
            Path::new("/work/lib/x")
        );
        assert_eq!(absolutize(base, Path::new("/abs/../y")), Path::new("/y"));
    }

    #[test]
    fn project_file_is_found_in_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).expect("mkdir");
        assert_eq!(find_project_file(&nested), None);
        std::fs::write(dir.path().join(PROJECT_FILE), "").expect("write");
        assert_eq!(
            find_project_file(&nested),
            Some(dir.path().join(PROJECT_FILE))
        );
    }
}
