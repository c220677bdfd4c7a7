//! Two supervised Syncthings, paired the way ksync pairs them, and helpers to wait on
//! files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::folder::wait_connected;
use ksync::syncthing::ignores::IgnoreSet;
use ksync::syncthing::{
    EventHub, FolderSpec, InstanceOptions, LocalSyncthing, Peer, SyncthingBinary, pair, share,
};
use tokio::time::Instant;

pub(crate) const FOLDER: &str = "web-pod-0";

/// The Syncthing binary the tests use (KSYNC_SYNCTHING or PATH).
pub(crate) fn binary() -> SyncthingBinary {
    SyncthingBinary::find(
        std::env::var("KSYNC_SYNCTHING").ok().as_deref(),
        None,
        std::env::var("PATH").ok().as_deref(),
    )
    .expect("the Syncthing tests need syncthing 1.19+ (tests/run installs Debian's)")
}

pub(crate) async fn start(home: &Path) -> LocalSyncthing {
    LocalSyncthing::start(InstanceOptions {
        binary: binary(),
        home: home.to_path_buf(),
        start_timeout: Duration::from_secs(60),
    })
    .await
    .expect("syncthing starts")
}

/// A paired local and remote Syncthing, and their folders.
pub(crate) struct Pair {
    pub(crate) local: LocalSyncthing,
    pub(crate) remote: LocalSyncthing,
    pub(crate) local_events: EventHub,
    pub(crate) remote_events: EventHub,
    pub(crate) dir: tempfile::TempDir,
}

impl Pair {
    pub(crate) async fn start() -> Pair {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["local-home", "remote-home", "local", "remote"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let local = start(&dir.path().join("local-home")).await;
        let remote = start(&dir.path().join("remote-home")).await;
        let local_events = EventHub::start(local.client()).await.expect("events");
        let remote_events = EventHub::start(remote.client()).await.expect("events");
        let pair = Pair {
            local,
            remote,
            local_events,
            remote_events,
            dir,
        };
        pair.connect().await;
        pair
    }

    pub(crate) fn local_peer(&self) -> Peer<'_> {
        Peer {
            client: self.local.client(),
            device_id: self.local.device_id(),
            name: "laptop",
        }
    }

    pub(crate) fn remote_peer(&self) -> Peer<'_> {
        Peer {
            client: self.remote.client(),
            device_id: self.remote.device_id(),
            name: "node-1",
        }
    }

    /// Pairs them (the local side dials the remote's sync port) and waits for the
    /// connection.
    pub(crate) async fn connect(&self) {
        let address = format!("tcp://127.0.0.1:{}", self.remote.listen_port());
        pair(self.local_peer(), self.remote_peer(), &address)
            .await
            .expect("pairs");
        wait_connected(
            self.local.client(),
            &self.local_events,
            self.remote.device_id(),
            Duration::from_secs(60),
        )
        .await
        .expect("connects");
    }

    pub(crate) fn local_dir(&self) -> PathBuf {
        self.dir.path().join("local")
    }

    pub(crate) fn remote_dir(&self) -> PathBuf {
        self.dir.path().join("remote")
    }

    pub(crate) fn spec(&self, direction: Direction, ignores: &[&str]) -> FolderSpec {
        let ignores: Vec<String> = ignores.iter().map(|s| s.to_string()).collect();
        FolderSpec {
            id: FOLDER.into(),
            label: "web in pod web-0".into(),
            local_path: self.local_dir(),
            remote_path: self.remote_dir().display().to_string(),
            direction,
            ignores: IgnoreSet::build(&self.local_dir(), &ignores).expect("ignores"),
            ignore_perms: false,
            remote_copy_ownership: false,
        }
    }

    /// Shares the folder pair and waits until both sides are idle with nothing needed.
    pub(crate) async fn share(&self, direction: Direction, ignores: &[&str]) -> FolderSpec {
        let spec = self.spec(direction, ignores);
        share(self.local_peer(), self.remote_peer(), &spec)
            .await
            .expect("shares");
        self.settle().await;
        spec
    }

    /// Waits until both folders are idle and up to date with what they can get.
    pub(crate) async fn settle(&self) {
        for client in [self.local.client(), self.remote.client()] {
            wait_async("the folder to be idle", Duration::from_secs(60), || async {
                let s = client.folder_status(FOLDER).await.ok()?;
                (s.state == "idle" && s.need_total_items == 0).then_some(())
            })
            .await;
        }
    }

    /// Scans `subs` on the local side, as ksync's watcher would.
    pub(crate) async fn scan_local(&self, subs: &[&str]) {
        let subs: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
        self.local.client().scan(FOLDER, &subs).await.expect("scan");
    }

    /// Scans `subs` on the remote side (in a real pod, the agent's Syncthing watcher does).
    pub(crate) async fn scan_remote(&self, subs: &[&str]) {
        let subs: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
        self.remote
            .client()
            .scan(FOLDER, &subs)
            .await
            .expect("scan");
    }
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub(crate) async fn wait_async<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `path` holds exactly `content`.
pub(crate) async fn wait_content(path: &Path, content: &str) {
    wait_async(
        &format!("{} to hold {content:?}", path.display()),
        Duration::from_secs(60),
        || async { (std::fs::read_to_string(path).ok()? == content).then_some(()) },
    )
    .await;
}

/// Waits until `path` does not exist.
pub(crate) async fn wait_gone(path: &Path) {
    wait_async(
        &format!("{} to disappear", path.display()),
        Duration::from_secs(60),
        || async { (!path.exists()).then_some(()) },
    )
    .await;
}

/// Writes `content` to `root/relative`, creating folders.
pub(crate) fn write(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// SHA-256-free content fingerprint: size and a simple hash are enough to tell a partial file.
pub(crate) fn fingerprint(path: &Path) -> Option<(u64, u64)> {
    use std::hash::{Hash, Hasher};
    let data = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    Some((data.len() as u64, h.finish()))
}
