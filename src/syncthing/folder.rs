//! Pairing a local Syncthing with a node's, and sharing one folder pair between them.
//!
//! Direction decides the folder types:
//!
//! | spec | local folder | remote folder | effect |
//! |---|---|---|---|
//! | two-way | send-receive | send-receive | changes flow both ways; concurrent edits keep a conflict copy |
//! | local read-only | send-only | receive-only | local files are never written; changes made in the container are kept there, not sent, and do not block later syncs |
//! | remote read-only | receive-only | send-only | container files are never written; local edits stay local |
//!
//! The protected side is send-only and its peer receive-only, so the protected side never
//! sees a newer version it would have to override: neither side gets stuck "out of sync".
//! Conflict copies are always kept (`maxConflicts = -1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::SyncthingError;
use super::client::Client;
use super::events::{EventHub, RESET};
use super::ignores::{IgnoreSet, is_syncthing_temp};
use super::model::{DeviceConfig, Event, FolderConfig, FolderDevice, FolderType};
use crate::spec::Direction;

/// One side of a pairing.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// Its API.
    pub client: &'a Client,
    /// Its device ID.
    pub device_id: &'a str,
    /// A name for it, shown in the other's configuration.
    pub name: &'a str,
}

/// Makes the two devices know each other. Only the local side dials (at `remote_address`,
/// e.g. a tunnel's `tcp://127.0.0.1:PORT`); the remote waits (`dynamic`, which with discovery
/// off never resolves), so the two never race to connect. Neither accepts folders on its own.
pub async fn pair(
    local: Peer<'_>,
    remote: Peer<'_>,
    remote_address: &str,
) -> Result<(), SyncthingError> {
    let device = |id: &str, name: &str, address: &str| DeviceConfig {
        device_id: id.to_string(),
        name: name.to_string(),
        addresses: vec![address.to_string()],
        auto_accept_folders: false,
        extra: Default::default(),
    };
    ensure_device(
        remote.client,
        &device(local.device_id, local.name, "dynamic"),
    )
    .await?;
    ensure_device(
        local.client,
        &device(remote.device_id, remote.name, remote_address),
    )
    .await
}

/// Configures `wanted` on `client`'s Syncthing unless it already has that device with the same
/// addresses and folder auto-accept, so pairing again leaves an unchanged device as it is.
async fn ensure_device(client: &Client, wanted: &DeviceConfig) -> Result<(), SyncthingError> {
    let current = client.device(&wanted.device_id).await?;
    if current
        .as_ref()
        .map(|d| (&d.addresses, d.auto_accept_folders))
        != Some((&wanted.addresses, wanted.auto_accept_folders))
    {
        client.put_device(wanted).await?;
    }
    Ok(())
}

/// Waits until `client`'s Syncthing is connected to `device`.
pub async fn wait_connected(
    client: &Client,
    events: &EventHub,
    device: &str,
    timeout: Duration,
) -> Result<(), SyncthingError> {
    let mut rx = events.subscribe();
    let deadline = Instant::now() + timeout;
    loop {
        if client.connected(device).await? {
            return Ok(());
        }
        next_matching(&mut rx, deadline, timeout, "the devices to connect", |e| {
            e.kind == "DeviceConnected" || e.kind == RESET
        })
        .await?;
    }
}

/// One folder pair.
#[derive(Debug, Clone)]
pub struct FolderSpec {
    /// Folder ID, the same on both sides.
    pub id: String,
    /// A name for people.
    pub label: String,
    /// The local folder (must exist).
    pub local_path: PathBuf,
    /// The folder on the node (from radar).
    pub remote_path: String,
    /// Which way changes flow.
    pub direction: Direction,
    /// What is never synced.
    pub ignores: IgnoreSet,
    /// Ignore permission bits (default false: modes, such as the executable bit, travel).
    pub ignore_perms: bool,
    /// New files in the container get the owner of their folder (default true), so the
    /// container's user can use what lands.
    pub remote_copy_ownership: bool,
}

impl FolderSpec {
    /// Folder types of (local, remote).
    pub fn types(&self) -> (FolderType, FolderType) {
        match self.direction {
            Direction::TwoWay => (FolderType::SendReceive, FolderType::SendReceive),
            Direction::LocalReadOnly => (FolderType::SendOnly, FolderType::ReceiveOnly),
            Direction::RemoteReadOnly => (FolderType::ReceiveOnly, FolderType::SendOnly),
        }
    }

    fn config(
        &self,
        path: String,
        folder_type: FolderType,
        devices: [&str; 2],
        copy_ownership: bool,
    ) -> FolderConfig {
        FolderConfig {
            id: self.id.clone(),
            label: self.label.clone(),
            path,
            folder_type,
            devices: devices
                .iter()
                .map(|d| FolderDevice {
                    device_id: d.to_string(),
                })
                .collect(),
            rescan_interval_s: 3600,
            fs_watcher_enabled: true,
            fs_watcher_delay_s: 1,
            ignore_perms: self.ignore_perms,
            copy_ownership_from_parent: copy_ownership,
            max_conflicts: -1,
            disable_fsync: false,
            paused: false,
            extra: Default::default(),
        }
    }
}

/// Marks where ksync's generated patterns start in a `.stignore`; lines above it are the
/// user's own and are kept.
const STIGNORE_MARKER: &str =
    "// ---- patterns below are written by ksync (edit .ksyncignore instead) ----";

/// Shares the folder pair: creates (or updates) it on both sides, paused until both have
/// the ignore patterns, so nothing ignored is ever scanned or sent. A folder already
/// configured as asked is left running untouched (changing a folder restarts it).
pub async fn share(
    local: Peer<'_>,
    remote: Peer<'_>,
    spec: &FolderSpec,
) -> Result<(), SyncthingError> {
    if !spec.local_path.is_dir() {
        return Err(SyncthingError::Folder {
            folder: spec.id.clone(),
            side: "local",
            reason: format!(
                "{} is not a folder; create it first",
                spec.local_path.display()
            ),
        });
    }
    let mut patterns = user_stignore(&spec.local_path);
    patterns.push(STIGNORE_MARKER.to_string());
    patterns.extend(spec.ignores.stignore().iter().cloned());

    let (local_type, remote_type) = spec.types();
    let devices = [local.device_id, remote.device_id];
    let sides = [
        (
            remote,
            spec.config(
                spec.remote_path.clone(),
                remote_type,
                devices,
                spec.remote_copy_ownership,
            ),
        ),
        (
            local,
            spec.config(
                spec.local_path.display().to_string(),
                local_type,
                devices,
                false,
            ),
        ),
    ];
    for (peer, wanted) in sides {
        let current = peer.client.folder(&spec.id).await?;
        let same = current.as_ref().is_some_and(|c| same_settings(c, &wanted))
            && peer.client.ignores(&spec.id).await? == patterns;
        if same {
            continue;
        }
        let paused = FolderConfig {
            paused: true,
            ..wanted.clone()
        };
        peer.client.put_folder(&paused).await?;
        peer.client.set_ignores(&spec.id, &patterns).await?;
        peer.client.put_folder(&wanted).await?;
    }
    Ok(())
}

fn same_settings(current: &FolderConfig, wanted: &FolderConfig) -> bool {
    let mut current_devices: Vec<&str> = current
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    let mut wanted_devices: Vec<&str> = wanted
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    current_devices.sort_unstable();
    wanted_devices.sort_unstable();
    current.path.trim_end_matches('/') == wanted.path.trim_end_matches('/')
        && current.folder_type == wanted.folder_type
        && current_devices == wanted_devices
        && current.ignore_perms == wanted.ignore_perms
        && current.copy_ownership_from_parent == wanted.copy_ownership_from_parent
        && current.max_conflicts == wanted.max_conflicts
        && current.fs_watcher_enabled == wanted.fs_watcher_enabled
        && !current.paused
}

/// The user's own lines of an existing `.stignore` (those above ksync's marker).
fn user_stignore(root: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.join(".stignore")) else {
        return Vec::new();
    };
    text.lines()
        .take_while(|l| *l != STIGNORE_MARKER)
        .map(str::to_string)
        .collect()
}

/// What a folder's side reports about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Items that failed to sync in the last pull, with Syncthing's reasons (a full disk,
    /// permissions, …). The folder keeps syncing everything else.
    pub pull_errors: Vec<super::model::FolderError>,
    /// Items changed on this side of a receive-only folder (kept here, not sent).
    pub receive_only_changes: u64,
}

/// Checks one side of a folder. A folder Syncthing stopped is an error that says why: most
/// often its path or the `.stfolder` marker in it disappeared (a container restarted
/// without a volume, a local folder was moved). Syncthing then syncs nothing from or to that
/// side, so no deletion can spread from a vanished folder.
pub async fn check_health(
    client: &Client,
    folder: &str,
    side: &'static str,
) -> Result<Health, SyncthingError> {
    let status = client.folder_status(folder).await?;
    if status.state == "error" {
        return Err(SyncthingError::Folder {
            folder: folder.to_string(),
            side,
            reason: status.error,
        });
    }
    let errors = client.folder_errors(folder).await?;
    Ok(Health {
        pull_errors: errors.errors.unwrap_or_default(),
        receive_only_changes: status.receive_only_total_items,
    })
}

/// Removes the folder from both sides (its files stay where they are).
pub async fn unshare(local: Peer<'_>, remote: Peer<'_>, id: &str) -> Result<(), SyncthingError> {
    for peer in [local, remote] {
        match peer.client.delete_folder(id).await {
            Ok(()) | Err(SyncthingError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Conflict copies in the folder (`*.sync-conflict-*`), skipping ignored paths and copies
/// Syncthing is still writing (they appear under their own name once complete).
pub fn conflicts(root: &Path, ignores: &IgnoreSet) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if ignores.is_ignored(&path, is_dir) || path.starts_with(".stfolder") {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.contains(".sync-conflict-") && !is_syncthing_temp(&name) {
                found.push(path.clone());
            }
            if is_dir {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Waits for an event `accept` takes, until `deadline`.
pub(crate) async fn next_matching(
    rx: &mut broadcast::Receiver<Arc<Event>>,
    deadline: Instant,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Event) -> bool,
) -> Result<(), SyncthingError> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => {
                return Err(SyncthingError::Timeout {
                    what: what.to_string(),
                    seconds: timeout.as_secs(),
                });
            }
            Ok(Ok(event)) if accept(&event) => return Ok(()),
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return Ok(()),
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                return Err(SyncthingError::Unreachable {
                    url: "the event stream".into(),
                    reason: "it closed".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_finished_copies_outside_ignored_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for file in [
            "config.sync-conflict-20261127-233420-QA5WKU4.yaml",
            "web/app.sync-conflict-20261127-233421-BODVUEN.js",
            // Still being pulled: not a conflict copy yet.
            ".syncthing.config.sync-conflict-20261127-233422-QA5WKU4.yaml.tmp",
            "node_modules/x.sync-conflict-20261127-233423-QA5WKU4.js",
            "config.yaml",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        }
        let ignores = IgnoreSet::build(root, &["node_modules/".into()]).expect("ignores");
        assert_eq!(
            conflicts(root, &ignores),
            [
                PathBuf::from("config.sync-conflict-20261127-233420-QA5WKU4.yaml"),
                PathBuf::from("web/app.sync-conflict-20261127-233421-BODVUEN.js"),
            ]
        );
    }
}
