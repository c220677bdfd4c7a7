//! Syncthing's events, long-polled once per instance and fanned out to every subscriber.
//!
//! The pump starts after the newest existing event, so history is never replayed. When
//! Syncthing restarts, its event IDs start over: the pump notices, starts after the new
//! newest event, and tells subscribers with a [`RESET`] event so they re-read any state
//! they derive from events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::SyncthingError;
use super::client::Client;
use super::model::Event;

/// Kind of the synthetic event sent when events may have been missed (Syncthing restarted
/// or could not be reached for a while).
pub const RESET: &str = "KsyncEventsReset";

/// How long one long poll waits for events.
const POLL: Duration = Duration::from_secs(60);

/// Events of one Syncthing.
#[derive(Debug)]
pub struct EventHub {
    events: broadcast::Sender<Arc<Event>>,
    disk: broadcast::Sender<Arc<Event>>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventHub {
    /// Subscribes to `client`'s Syncthing. Returns once both subscriptions exist, so every
    /// event caused by what the caller does next is seen.
    pub async fn start(client: &Client) -> Result<EventHub, SyncthingError> {
        let (events, _) = broadcast::channel(4096);
        let (disk, _) = broadcast::channel(4096);
        let mut tasks = Vec::new();
        for is_disk in [false, true] {
            let since = client.last_event_id(is_disk).await?;
            let tx = if is_disk {
                disk.clone()
            } else {
                events.clone()
            };
            tasks.push(tokio::spawn(pump(client.clone(), is_disk, since, tx)));
        }
        Ok(EventHub {
            events,
            disk,
            tasks,
        })
    }

    /// All events of the default mask (index updates, folder state, completion, devices).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// `LocalChangeDetected` and `RemoteChangeDetected`.
    pub fn subscribe_disk(&self) -> broadcast::Receiver<Arc<Event>> {
        self.disk.subscribe()
    }
}

impl Drop for EventHub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn pump(client: Client, disk: bool, mut since: u64, tx: broadcast::Sender<Arc<Event>>) {
    let mut failures: u32 = 0;
    loop {
        let result = if disk {
            client.disk_events(since, POLL).await
        } else {
            client.events(since, POLL).await
        };
        match result {
            Ok(events) => {
                if failures > 0 {
                    // Back after an outage: if Syncthing restarted, its IDs start over.
                    failures = 0;
                    if let Ok(last) = client.last_event_id(disk).await
                        && last < since
                    {
                        since = last;
                        let _ = tx.send(Arc::new(reset_event()));
                        continue;
                    }
                }
                for event in events {
                    since = since.max(event.id);
                    let _ = tx.send(Arc::new(event));
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::debug!(api = client.base(), error = %e, "event poll failed; retrying");
                    let _ = tx.send(Arc::new(reset_event()));
                }
                let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

fn reset_event() -> Event {
    Event {
        id: 0,
        global_id: 0,
        kind: RESET.into(),
        data: serde_json::Value::Null,
    }
}
