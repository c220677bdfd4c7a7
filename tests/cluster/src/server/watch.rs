//! Watch streams: newline-delimited JSON events over a chunked response.
//!
//! As on a real API server: without a resourceVersion (or with `0`) the stream starts with the
//! current objects as `ADDED`; with one it replays every change after it, or sends one
//! `ERROR` event with a `410 Expired` status when that version is older than the history kept.
//! An object that stops matching the selectors arrives as `DELETED`, one that starts matching
//! as `ADDED`. `allowWatchBookmarks` brings `BOOKMARK` events (periodically and before a
//! timeout), `sendInitialEvents` the streaming-list form (initial objects, then a bookmark
//! annotated `k8s.io/initial-events-end`). `timeoutSeconds` (shortened by the
//! [`crate::faults`] cap) ends the stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::discovery::ResourceType;
use crate::filter::Filter;
use crate::server::table::Format;
use crate::state::State;
use crate::status::ApiError;
use crate::store::{Event, EventType};

/// The frames of a watch response body.
pub(crate) type Frames = mpsc::Receiver<Result<Frame<Bytes>, Infallible>>;

/// What a watch asks for.
pub(crate) struct WatchRequest {
    /// The kind.
    pub(crate) resource: &'static ResourceType,
    /// One namespace, or all.
    pub(crate) namespace: Option<String>,
    /// The selectors.
    pub(crate) filter: Filter,
    /// `resourceVersion`.
    pub(crate) resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents`.
    pub(crate) initial_events: bool,
    /// `timeoutSeconds`.
    pub(crate) timeout: Option<Duration>,
    /// How objects are rendered.
    pub(crate) format: Format,
}

/// Starts a watch: the body's frames are produced by a task that ends with the stream.
pub(crate) fn start(
    state: Arc<State>,
    request: WatchRequest,
    stop: CancellationToken,
) -> Result<Frames, ApiError> {
    let (tx, rx) = mpsc::channel(256);
    let ended = state.faults.watches.token();
    let timeout = state.faults.watch_timeout(request.timeout);
    let start = begin(&state, &request)?;
    tokio::spawn(async move {
        let mut stream = Stream {
            tx,
            request,
            last_rv: start.rv,
        };
        let run = async {
            match start.feed {
                Feed::Expired(err) => {
                    let _ = stream.send("ERROR", err.to_status()).await;
                }
                Feed::Events {
                    initial,
                    replay,
                    live,
                } => {
                    stream.run(&state, initial, replay, live).await;
                }
            }
        };
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let timed_out = tokio::select! {
            () = run => false,
            () = deadline => true,
            () = ended.cancelled() => false,
            () = stop.cancelled() => false,
        };
        if timed_out && stream.request.bookmarks {
            let _ = stream.bookmark(false).await;
        }
    });
    Ok(rx)
}

struct Start {
    rv: u64,
    feed: Feed,
}

enum Feed {
    Expired(ApiError),
    Events {
        /// Objects to send as `ADDED` first (a watch from "now").
        initial: Option<Vec<Arc<Value>>>,
        /// Past events to send first (a watch from a resourceVersion).
        replay: Vec<Arc<Event>>,
        live: broadcast::Receiver<Arc<Event>>,
    },
}

fn begin(state: &State, request: &WatchRequest) -> Result<Start, ApiError> {
    let from = match request.resource_version.as_deref() {
        None | Some("" | "0") => None,
        Some(rv) if request.initial_events => {
            // Streaming lists start from "now" whatever the version.
            let _ = rv;
            None
        }
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))?,
        ),
    };
    match from {
        None => {
            let snapshot = state
                .store
                .snapshot(request.resource, request.namespace.as_deref());
            Ok(Start {
                rv: snapshot.rv,
                feed: Feed::Events {
                    initial: Some(snapshot.objects),
                    replay: Vec::new(),
                    live: snapshot.live,
                },
            })
        }
        Some(rv) => match state.store.watch_from(rv) {
            Ok(start) => Ok(Start {
                rv,
                feed: Feed::Events {
                    initial: None,
                    replay: start.replay,
                    live: start.live,
                },
            }),
            Err(err) => Ok(Start {
                rv,
                feed: Feed::Expired(err),
            }),
        },
    }
}

struct Stream {
    tx: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    request: WatchRequest,
    /// Every event up to this version has been considered (sent or filtered out).
    last_rv: u64,
}

/// The client went away.
struct Gone;

impl Stream {
    async fn run(
        &mut self,
        state: &State,
        initial: Option<Vec<Arc<Value>>>,
        replay: Vec<Arc<Event>>,
        mut live: broadcast::Receiver<Arc<Event>>,
    ) {
        if self.initial(initial).await.is_err() {
            return;
        }
        for event in replay {
            if self.event(&event).await.is_err() {
                return;
            }
        }
        let mut bookmarks = tokio::time::interval(state.faults.bookmark_every());
        bookmarks.tick().await;
        loop {
            tokio::select! {
                event = live.recv() => match event {
                    Ok(event) => {
                        if self.event(&event).await.is_err() {
                            return;
                        }
                    }
                    // Too slow to keep up: end the stream; the client watches again.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmarks.tick(), if self.request.bookmarks => {
                    if self.bookmark(false).await.is_err() {
                        return;
                    }
                }
                () = self.tx.closed() => return,
            }
        }
    }

    async fn initial(&mut self, initial: Option<Vec<Arc<Value>>>) -> Result<(), Gone> {
        let Some(objects) = initial else {
            return Ok(());
        };
        for object in objects {
            if self.request.filter.matches(&object) {
                let rendered = self.request.format.object(&object);
                self.send("ADDED", rendered).await?;
            }
        }
        if self.request.initial_events {
            self.bookmark(true).await?;
        }
        Ok(())
    }

    async fn event(&mut self, event: &Event) -> Result<(), Gone> {
        if event.rv <= self.last_rv {
            return Ok(());
        }
        self.last_rv = event.rv;
        if !std::ptr::eq(event.resource, self.request.resource) {
            return Ok(());
        }
        if let Some(ns) = &self.request.namespace
            && crate::store::name_of(&event.object).0 != ns
        {
            return Ok(());
        }
        let filter = &self.request.filter;
        let now = filter.matches(&event.object);
        let before = event.prev.as_deref().is_some_and(|p| filter.matches(p));
        let kind = match (event.kind, before, now) {
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, _) => return Ok(()),
            (_, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (_, true, false) => EventType::Deleted,
            (_, false, false) => return Ok(()),
        };
        let object = if kind == EventType::Deleted && event.kind != EventType::Deleted {
            // It left the selection: its last state that matched, at this version.
            let mut prev = event.prev.as_deref().cloned().unwrap_or_default();
            prev["metadata"]["resourceVersion"] = json!(event.rv.to_string());
            self.request.format.object(&prev)
        } else {
            self.request.format.object(&event.object)
        };
        self.send(kind.as_str(), object).await
    }

    async fn bookmark(&mut self, initial_end: bool) -> Result<(), Gone> {
        let mut metadata = json!({ "resourceVersion": self.last_rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({
            "kind": self.request.resource.kind,
            "apiVersion": self.request.resource.api_version(),
            "metadata": metadata,
        });
        self.send("BOOKMARK", object).await
    }

    async fn send(&mut self, kind: &str, object: Value) -> Result<(), Gone> {
        let mut line =
            serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap_or_default();
        line.push(b'\n');
        self.tx
            .send(Ok(Frame::data(Bytes::from(line))))
            .await
            .map_err(|_| Gone)
    }
}
