//! ksync's own watcher of a local folder: file events (notify) batched into the set of
//! changed sub-paths (a batch closes after a few quiet milliseconds, or a few tens of
//! milliseconds after its first event), so Syncthing scans exactly those right away instead of
//! waiting for its own watcher (whose delay is a whole second at best).
//!
//! Ignored paths and Syncthing's own files are dropped; a path below another changed path is
//! folded into it (scanning a folder covers what is below it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::syncthing::ignores::{IgnoreSet, is_syncthing_temp};

/// A batch ends when no event came for this long... Editors save in bursts (temporary
/// file, write, rename, attribute change) whose events arrive within a millisecond or two.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(4);
/// ...or at the latest this long after its first event, so a steady stream of writes still
/// gets scanned.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(30);

/// Watching failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WatchError {
    /// The OS limit on watches is reached.
    #[error("cannot watch {}: the limit on inotify watches is reached", path.display())]
    #[diagnostic(
        code(ksync::watch::limit),
        help(
            "raise it, e.g. `sudo sysctl fs.inotify.max_user_watches=524288`, or ignore large folders (node_modules, build output) in .ksyncignore"
        )
    )]
    Limit {
        /// The folder.
        path: PathBuf,
    },
    /// Any other failure to watch.
    #[error("cannot watch {}: {reason}", path.display())]
    #[diagnostic(
        code(ksync::watch::failed),
        help("check that the folder exists and is readable")
    )]
    Failed {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A watched folder. Dropping it stops the watch.
#[derive(Debug)]
pub struct FolderWatch {
    _watcher: RecommendedWatcher,
    batches: mpsc::Receiver<Vec<String>>,
}

impl FolderWatch {
    /// Watches `root` recursively; batches are sub-paths relative to it (`/`-separated).
    pub fn start(
        root: &Path,
        ignores: IgnoreSet,
        debounce: Duration,
    ) -> Result<FolderWatch, WatchError> {
        let root = root.to_path_buf();
        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(
            move |result: notify::Result<notify::Event>| match result {
                Ok(event) => {
                    for path in event.paths {
                        let _ = raw_tx.send(path);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "file watcher error"),
            },
        )
        .map_err(|e| watch_error(&root, e))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| watch_error(&root, e))?;
        let (tx, batches) = mpsc::channel(256);
        tokio::spawn(batch(root, ignores, debounce, raw_rx, tx));
        Ok(FolderWatch {
            _watcher: watcher,
            batches,
        })
    }

    /// The next batch of changed sub-paths; `None` when the watch ended.
    pub async fn next(&mut self) -> Option<Vec<String>> {
        self.batches.recv().await
    }
}

fn watch_error(root: &Path, e: notify::Error) -> WatchError {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::Limit {
            path: root.to_path_buf(),
        },
        _ => WatchError::Failed {
            path: root.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

async fn batch(
    root: PathBuf,
    ignores: IgnoreSet,
    debounce: Duration,
    mut raw: mpsc::UnboundedReceiver<PathBuf>,
    tx: mpsc::Sender<Vec<String>>,
) {
    while let Some(first) = raw.recv().await {
        let mut paths = vec![first];
        let window = tokio::time::sleep(debounce);
        tokio::pin!(window);
        let quiet = DEFAULT_QUIET.min(debounce);
        loop {
            tokio::select! {
                () = &mut window => break,
                () = tokio::time::sleep(quiet) => break,
                next = raw.recv() => match next {
                    Some(p) => paths.push(p),
                    None => break,
                },
            }
        }
        let subs = relevant_subpaths(&root, &ignores, paths);
        if !subs.is_empty() && tx.send(subs).await.is_err() {
            return;
        }
    }
}

/// The changed paths as folder-relative sub-paths worth scanning: not ignored, not
/// Syncthing's own files, and not below another changed path.
pub fn relevant_subpaths(root: &Path, ignores: &IgnoreSet, paths: Vec<PathBuf>) -> Vec<String> {
    let mut set = BTreeSet::new();
    for path in paths {
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let Some(text) = relative.to_str() else {
            continue;
        };
        let first = text.split('/').next().unwrap_or_default();
        let name = relative
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(first, ".stfolder" | ".stignore" | ".stversions") || is_syncthing_temp(name) {
            continue;
        }
        if ignores.is_ignored(relative, path.is_dir()) {
            continue;
        }
        set.insert(text.to_string());
    }
    let mut out: Vec<String> = Vec::new();
    for path in set {
        // BTreeSet order puts a parent before its children.
        if !out.iter().any(|parent| {
            path.strip_prefix(parent.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        }) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subpaths_are_relative_filtered_and_folded() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        let ignores = IgnoreSet::build(r, &["build".to_string()]).expect("ignores");
        let paths = [
            "src/main.rs",
            "src",
            "src/lib/mod.rs",
            ".git/index",
            "build/out.o",
            ".stfolder",
            "web/.syncthing.index.html.tmp",
            "web/index.html",
            "README.md",
        ]
        .iter()
        .map(|p| r.join(p))
        .chain([r.to_path_buf(), PathBuf::from("/elsewhere/x")])
        .collect();
        assert_eq!(
            relevant_subpaths(r, &ignores, paths),
            ["README.md", "src", "web/index.html"]
        );
    }

    #[tokio::test]
    async fn edits_arrive_as_one_batch() {
        let root = tempfile::tempdir().expect("tempdir");
        let ignores = IgnoreSet::build(root.path(), &[]).expect("ignores");
        let mut watch =
            FolderWatch::start(root.path(), ignores, Duration::from_millis(50)).expect("watch");
        std::fs::create_dir(root.path().join("pkg")).expect("mkdir");
        std::fs::write(root.path().join("a.txt"), "a").expect("write");
        std::fs::write(root.path().join(".git"), "ignored").expect("write");
        let mut seen = BTreeSet::new();
        while !(seen.contains("a.txt") && seen.contains("pkg")) {
            let batch = tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await
                .expect("a batch in time")
                .expect("watching");
            seen.extend(batch);
        }
        assert!(!seen.contains(".git"));
    }
}
