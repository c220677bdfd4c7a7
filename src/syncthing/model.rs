//! Typed shapes of the Syncthing 1.19 REST API that ksync reads and writes.
//!
//! Unknown fields are ignored on read, and ksync only writes the fields it sets: a `PATCH`
//! changes just those, and a `PUT` of an object read back keeps the rest (`extra`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /rest/system/status` (the fields ksync uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    /// This device's ID.
    #[serde(rename = "myID")]
    pub my_id: String,
    /// When this process started (RFC 3339).
    pub start_time: String,
}

/// `GET /rest/system/version`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemVersion {
    /// e.g. `v1.19.2-ds1`.
    pub version: String,
}

/// A device in the configuration (`/rest/config/devices/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConfig {
    /// Device ID.
    #[serde(rename = "deviceID")]
    pub device_id: String,
    /// A name for people.
    pub name: String,
    /// Where to dial it: `tcp://127.0.0.1:PORT`, or `dynamic` for a device that dials us.
    pub addresses: Vec<String>,
    /// Accept folders it shares without asking: always false for ksync.
    #[serde(default)]
    pub auto_accept_folders: bool,
    /// Fields ksync does not set, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The folder types Syncthing knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderType {
    /// Sends and receives.
    #[serde(rename = "sendreceive")]
    SendReceive,
    /// Only sends: never changes local files.
    #[serde(rename = "sendonly")]
    SendOnly,
    /// Only receives: local changes are kept but not sent.
    #[serde(rename = "receiveonly")]
    ReceiveOnly,
}

/// A device a folder is shared with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderDevice {
    /// Device ID.
    #[serde(rename = "deviceID")]
    pub device_id: String,
}

/// A folder in the configuration (`/rest/config/folders/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FolderConfig {
    /// Folder ID (the same on both devices).
    pub id: String,
    /// A name for people.
    pub label: String,
    /// Path on this device.
    pub path: String,
    /// Type.
    #[serde(rename = "type")]
    pub folder_type: FolderType,
    /// Devices it is shared with (this device included).
    pub devices: Vec<FolderDevice>,
    /// Full rescan interval, a safety net; ksync triggers scans itself.
    pub rescan_interval_s: u32,
    /// Syncthing's own watcher (a fallback behind ksync's).
    pub fs_watcher_enabled: bool,
    /// Syncthing's watcher delay (whole seconds; 0 would turn it off).
    pub fs_watcher_delay_s: u32,
    /// Ignore permission bits.
    pub ignore_perms: bool,
    /// Give new files the owner of their folder (needs root or CAP_CHOWN).
    pub copy_ownership_from_parent: bool,
    /// Conflict copies kept per file; -1 keeps all.
    pub max_conflicts: i32,
    /// Skip fsync on received files.
    pub disable_fsync: bool,
    /// Paused folders neither scan nor sync.
    #[serde(default)]
    pub paused: bool,
    /// Fields ksync does not set, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `GET /rest/db/completion?folder=&device=`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// Percent of the folder's global data the device has.
    pub completion: f64,
    /// Bytes it still needs.
    pub need_bytes: u64,
    /// Items it still needs.
    pub need_items: u64,
    /// Deletes it still needs.
    pub need_deletes: u64,
    /// The device's index sequence as known here; 0 until it sent an index.
    pub sequence: u64,
}

impl Completion {
    /// True when the device has everything and has sent an index at all (before its first
    /// index, Syncthing reports 100 % for a device that has nothing).
    pub fn is_complete(&self) -> bool {
        self.sequence > 0
            && self.need_items == 0
            && self.need_deletes == 0
            && self.need_bytes == 0
            && self.completion >= 100.0
    }
}

/// `GET /rest/db/status?folder=` (the fields ksync uses).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FolderStatus {
    /// `idle`, `scanning`, `syncing`, `error`, …
    pub state: String,
    /// Why it is in `error`.
    #[serde(default)]
    pub error: String,
    /// This device's index sequence for the folder.
    pub sequence: u64,
    /// Files here.
    pub local_files: u64,
    /// Files in the cluster's latest version.
    pub global_files: u64,
    /// Items this device needs.
    pub need_total_items: u64,
    /// Items that failed to sync in the last pull.
    pub pull_errors: u64,
    /// Items changed here in a receive-only folder (not sent).
    #[serde(default)]
    pub receive_only_total_items: u64,
}

/// `GET /rest/db/file?folder=&file=` (the fields ksync uses).
#[derive(Debug, Clone, Deserialize)]
pub struct FileInfo {
    /// Devices that have the global version.
    pub availability: Option<Vec<Availability>>,
    /// The cluster's latest version.
    pub global: FileVersion,
}

/// One device that has a file.
#[derive(Debug, Clone, Deserialize)]
pub struct Availability {
    /// Device ID.
    pub id: String,
}

/// A file's version record.
#[derive(Debug, Clone, Deserialize)]
pub struct FileVersion {
    /// Whether this version is a deletion.
    pub deleted: bool,
    /// Index sequence of this version.
    pub sequence: u64,
}

/// One event from `/rest/events` or `/rest/events/disk`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// ID within this subscription.
    pub id: u64,
    /// ID across all subscriptions.
    #[serde(rename = "globalID")]
    pub global_id: u64,
    /// e.g. `RemoteIndexUpdated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's data.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Event {
    /// `data.folder`, when the event has one.
    pub fn folder(&self) -> Option<&str> {
        self.data.get("folder").and_then(|v| v.as_str())
    }

    /// `data.device`, when the event has one.
    pub fn device(&self) -> Option<&str> {
        self.data.get("device").and_then(|v| v.as_str())
    }
}

/// `GET /rest/db/ignores?folder=`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
pub struct Ignores {
    /// The patterns, one per line, as in `.stignore`.
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
}

/// One folder error (`GET /rest/folder/errors`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FolderError {
    /// What went wrong.
    pub error: String,
    /// The item, relative to the folder.
    pub path: String,
}

/// `GET /rest/folder/errors?folder=`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct FolderErrors {
    /// The errors of the last pull.
    #[serde(default)]
    pub errors: Option<Vec<FolderError>>,
}
