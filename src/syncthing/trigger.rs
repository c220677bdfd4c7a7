//! Local file events to Syncthing scans: each batch from ksync's watcher is scanned right
//! away (`POST /rest/db/scan?sub=…`), and then handed on so the caller can wait for exactly
//! those paths to land.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::Client;
use crate::watch::FolderWatch;

/// Scans every batch `watch` yields in `folder`, then sends the batch on `scanned`. Ends
/// when the watch ends or nobody listens any more. A failed scan is logged and the batch is
/// still handed on (Syncthing's own watcher, one second behind, picks the change up).
pub fn scan_on_change(
    mut watch: FolderWatch,
    client: Client,
    folder: String,
    scanned: mpsc::Sender<Vec<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(batch) = watch.next().await {
            if let Err(e) = client.scan(&folder, &batch).await {
                tracing::warn!(%folder, error = %e, "scan request failed; Syncthing's watcher will catch up");
            }
            if scanned.send(batch).await.is_err() {
                return;
            }
        }
    })
}
