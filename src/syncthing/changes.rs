//! Which changes came from where. Syncthing reports every change it applies to a folder on
//! disk as `LocalChangeDetected` (found by scanning: made on this side) or
//! `RemoteChangeDetected` (pulled from a peer). ksync reloads containers only for changes made
//! on the local side, so an app that writes into its synced folder never causes a reload loop.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::model::Event;

/// Where a change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// On the device that reports it (e.g. the laptop, for the local Syncthing).
    Local,
    /// On a peer, and pulled here (e.g. in the container, for the local Syncthing).
    Remote,
}

/// One change Syncthing applied or detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Folder ID.
    pub folder: String,
    /// Path relative to the folder.
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub action: String,
    /// Where it was made.
    pub origin: Origin,
    /// Short ID of the device that made it.
    pub modified_by: String,
}

impl Change {
    /// The change a disk event describes; `None` for other events.
    pub fn from_event(event: &Event) -> Option<Change> {
        let origin = match event.kind.as_str() {
            "LocalChangeDetected" => Origin::Local,
            "RemoteChangeDetected" => Origin::Remote,
            _ => return None,
        };
        let field = |name: &str| {
            event
                .data
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Some(Change {
            folder: field("folder"),
            path: field("path"),
            action: field("action"),
            origin,
            modified_by: field("modifiedBy"),
        })
    }

    /// True for a conflict copy Syncthing made (`name.sync-conflict-DATE-TIME-DEVICE.ext`).
    pub fn is_conflict_copy(&self) -> bool {
        self.path.contains(".sync-conflict-")
    }
}

/// The next change of `folder` from a disk-event subscription; `None` when it closed.
pub async fn next_change(rx: &mut broadcast::Receiver<Arc<Event>>, folder: &str) -> Option<Change> {
    loop {
        match rx.recv().await {
            Ok(event) => {
                if let Some(change) = Change::from_event(&event)
                    && change.folder == folder
                {
                    return Some(change);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "change events were missed");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
