//! Resolving a path inside a container to a path on the node, without ever leaving the
//! container.
//!
//! Radar reaches a container's files through `/proc/<pid>/root`, which shows the container's
//! whole mount namespace (its root filesystem and every volume mounted into it). Walking a
//! path below it is only safe if no symlink is followed by the kernel: an absolute symlink
//! (`/app -> /`) would be followed relative to the *node's* root, and `..` above the container's
//! root leads into the node. So symlinks are resolved here, component by component, the way
//! the container itself sees them, and the result is a node path that contains no symlink.
//! A symlink that leads above the container's root, or to the root itself, is refused.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::RadarError;

/// Longest chain of symlinks followed, as in Linux (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// A resolved container path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The node path (below `/proc/<pid>/root`) with no symlinks in it.
    pub host_path: PathBuf,
    /// The same place as the container sees it, after following symlinks (e.g. `/data`).
    pub container_path: String,
    /// True when a directory was created for this request.
    pub created: bool,
}

/// Checks a path from a request: absolute and normalised (no `.`, `..` or empty segments)
/// and not `/`. Returns its segments.
pub fn check_request_path(path: &str) -> Result<Vec<&str>, RadarError> {
    let invalid = |why: &str| RadarError::InvalidArgument(format!("path `{path}` {why}"));
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| invalid("is relative; give the absolute path inside the container"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(invalid("is the container's root; give a folder below it"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.contains(&"..") {
        return Err(invalid("contains `..`"));
    }
    if segments.iter().any(|s| s.is_empty() || *s == ".") {
        return Err(invalid("is not normalised (empty or `.` segments)"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL character"));
    }
    Ok(segments)
}

/// Resolves `path` in the container whose root is `root` (`/proc/<pid>/root`). Missing
/// directories are created when `create` is set, owned like their parent so the container's
/// user can use them.
pub fn resolve(root: &Path, path: &str, create: bool) -> Result<Resolved, RadarError> {
    let mut pending: Vec<String> = check_request_path(path)?
        .into_iter()
        .rev()
        .map(str::to_string)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut symlinks = 0;
    let mut created = false;
    let here = |resolved: &[String]| format!("/{}", resolved.join("/"));
    while let Some(segment) = pending.pop() {
        match segment.as_str() {
            "" | "." => continue,
            ".." => {
                if resolved.pop().is_none() {
                    return Err(RadarError::PermissionDenied(format!(
                        "path `{path}` leads above the container's root through a symlink; radar refuses paths that leave the container"
                    )));
                }
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&segment);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(RadarError::FailedPrecondition(format!(
                        "path `{path}` has too many levels of symlinks in the container"
                    )));
                }
                let target = fs::read_link(&candidate).map_err(|e| io_error(path, &e))?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
            Ok(meta) if meta.is_dir() => resolved.push(segment),
            Ok(_) => {
                resolved.push(segment);
                return Err(RadarError::FailedPrecondition(format!(
                    "`{}` is a file in the container, not a folder; ksync syncs folders",
                    here(&resolved)
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let parent = root.join(resolved.join("/"));
                make_dir_like_parent(&candidate, &parent).map_err(|e| io_error(path, &e))?;
                created = true;
                resolved.push(segment);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                resolved.push(segment);
                return Err(RadarError::NotFound(format!(
                    "`{}` does not exist in the container; ask radar to create it",
                    here(&resolved)
                )));
            }
            Err(e) => return Err(io_error(path, &e)),
        }
    }
    if resolved.is_empty() {
        return Err(RadarError::PermissionDenied(format!(
            "path `{path}` resolves to the container's root through a symlink; radar refuses to sync a whole container"
        )));
    }
    Ok(Resolved {
        host_path: root.join(resolved.join("/")),
        container_path: here(&resolved),
        created,
    })
}

/// Creates `dir` with mode 0755, owned by the owner of `parent`.
fn make_dir_like_parent(dir: &Path, parent: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    let meta = fs::metadata(parent)?;
    std::os::unix::fs::chown(dir, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
}

fn io_error(path: &str, e: &io::Error) -> RadarError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => RadarError::PermissionDenied(format!(
            "radar may not reach `{path}` in the container ({e}); the agent needs CAP_SYS_PTRACE and the host PID namespace"
        )),
        _ => RadarError::Internal(format!("cannot reach `{path}` in the container: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        fs::create_dir_all(r.join("app/src")).expect("mkdir");
        fs::create_dir_all(r.join("data/web")).expect("mkdir");
        fs::write(r.join("app/file"), "x").expect("write");
        symlink("/", r.join("rootlink")).expect("symlink");
        symlink("../../etc", r.join("app/up")).expect("symlink");
        symlink("/data", r.join("datalink")).expect("symlink");
        symlink("../data/web", r.join("app/web")).expect("symlink");
        symlink("loop2", r.join("loop1")).expect("symlink");
        symlink("loop1", r.join("loop2")).expect("symlink");
        root
    }

    #[test]
    fn request_paths_must_be_absolute_and_normalised() {
        for bad in ["app", "/", "/app/../etc", "/app//x", "/app/./x", ""] {
            assert!(
                matches!(check_request_path(bad), Err(RadarError::InvalidArgument(_))),
                "{bad}"
            );
        }
        assert_eq!(check_request_path("/app/src/").expect("ok"), ["app", "src"]);
    }

    #[test]
    fn symlinks_inside_the_container_are_followed() {
        let root = tree();
        let r = resolve(root.path(), "/datalink/web", false).expect("inside");
        assert_eq!(r.container_path, "/data/web");
        assert_eq!(r.host_path, root.path().join("data/web"));
        let r = resolve(root.path(), "/app/web", false).expect("inside");
        assert_eq!(r.container_path, "/data/web");
    }

    #[test]
    fn symlinks_leaving_the_container_are_refused() {
        let root = tree();
        for path in ["/rootlink", "/app/up", "/app/up/passwd"] {
            let e = resolve(root.path(), path, true).expect_err(path);
            assert!(matches!(e, RadarError::PermissionDenied(_)), "{path}: {e}");
        }
        // An absolute symlink is followed inside the container, never on the node: the
        // node's /etc is out of reach.
        let r = resolve(root.path(), "/rootlink/etc", true).expect("inside");
        assert_eq!(r.host_path, root.path().join("etc"));
        assert_eq!(r.container_path, "/etc");
        assert!(matches!(
            resolve(root.path(), "/loop1", false),
            Err(RadarError::FailedPrecondition(_))
        ));
    }

    #[test]
    fn files_and_missing_paths() {
        let root = tree();
        assert!(matches!(
            resolve(root.path(), "/app/file", false),
            Err(RadarError::FailedPrecondition(_))
        ));
        assert!(matches!(
            resolve(root.path(), "/app/new/deeper", false),
            Err(RadarError::NotFound(_))
        ));
        let r = resolve(root.path(), "/app/new/deeper", true).expect("created");
        assert!(r.created && r.host_path.is_dir());
        let again = resolve(root.path(), "/app/new/deeper", true).expect("exists");
        assert!(!again.created);
    }
}
