//! The object store: every object of every kind, one resourceVersion counter for all of them
//! (as etcd has), the history of changes that watches replay, and the fan-out of new changes.
//!
//! Writes are atomic: each takes the lock, changes one object, bumps the counter, appends the
//! event to the history and publishes it before the lock is released, so every subscriber sees
//! changes in resourceVersion order. A write that changes nothing is not an event and does not
//! bump the counter, as on a real API server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::discovery::{ResourceType, core};
use crate::status::ApiError;

/// How many past events watches can resume from before their resourceVersion expires.
const HISTORY: usize = 10_000;
/// Events buffered per subscriber before it is considered too slow (and its watch ends).
const FAN_OUT: usize = 65_536;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// It was created.
    Added,
    /// It changed.
    Modified,
    /// It was removed.
    Deleted,
}

impl EventType {
    /// The watch event `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, at one resourceVersion.
#[derive(Debug)]
pub(crate) struct Event {
    /// What happened.
    pub(crate) kind: EventType,
    /// The kind of the object.
    pub(crate) resource: &'static ResourceType,
    /// The object after the change (for a deletion: its last state, at the deletion's
    /// resourceVersion).
    pub(crate) object: Arc<Value>,
    /// The object before the change (none for an addition).
    pub(crate) prev: Option<Arc<Value>>,
    /// The resourceVersion of the change.
    pub(crate) rv: u64,
}

/// Where an object is kept: its kind, then namespace and name.
type Key = (&'static str, &'static str);
type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The store. Cheap to share behind an `Arc`.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

struct Inner {
    /// The last resourceVersion handed out.
    rv: u64,
    /// Watches may resume from any resourceVersion at or above this.
    floor: u64,
    objects: HashMap<Key, Objects>,
    history: VecDeque<Arc<Event>>,
}

/// The start of a watch: objects (or past events) to send first, then the live feed.
pub(crate) struct WatchStart {
    /// Past events after the requested resourceVersion, oldest first.
    pub(crate) replay: Vec<Arc<Event>>,
    /// Every later event.
    pub(crate) live: broadcast::Receiver<Arc<Event>>,
}

/// The current objects of one kind and the live feed after them.
pub(crate) struct Snapshot {
    /// The objects, by namespace and name.
    pub(crate) objects: Vec<Arc<Value>>,
    /// Every later event.
    pub(crate) live: broadcast::Receiver<Arc<Event>>,
    /// The resourceVersion of the snapshot.
    pub(crate) rv: u64,
}

fn key(resource: &ResourceType) -> Key {
    (resource.group, resource.plural)
}

/// `metadata.namespace` and `metadata.name` of an object.
pub(crate) fn name_of(object: &Value) -> (&str, &str) {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default(),
    )
}

/// The current time as Kubernetes writes timestamps.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An RFC 3339 time (as Docker gives them, with nanoseconds) as Kubernetes writes
/// timestamps, to the second.
pub(crate) fn timestamp(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| now())
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Store {
        let (events, _) = broadcast::channel(FAN_OUT);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                floor: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data: every write is prepared
        // before the map is touched.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last resourceVersion handed out.
    #[cfg(test)]
    pub(crate) fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub(crate) fn get(&self, resource: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .objects
            .get(&key(resource))?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object of a kind, in one namespace or all, and the resourceVersion of the list.
    pub(crate) fn list(&self, resource: &ResourceType, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        (Self::objects_of(&inner, resource, ns), inner.rv)
    }

    fn objects_of(inner: &Inner, resource: &ResourceType, ns: Option<&str>) -> Vec<Arc<Value>> {
        inner
            .objects
            .get(&key(resource))
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((o_ns, _), _)| ns.is_none_or(|ns| ns == o_ns))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every object of a kind now, and every later event (atomically: no event is missed or
    /// seen twice).
    pub(crate) fn snapshot(&self, resource: &ResourceType, ns: Option<&str>) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            objects: Self::objects_of(&inner, resource, ns),
            live: self.events.subscribe(),
            rv: inner.rv,
        }
    }

    /// Events after `rv`, and every later event; `410 Expired` when `rv` is older than the
    /// history the store keeps.
    pub(crate) fn watch_from(&self, rv: u64) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        if rv < inner.floor {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                inner.floor
            )));
        }
        Ok(WatchStart {
            replay: inner
                .history
                .iter()
                .filter(|e| e.rv > rv)
                .cloned()
                .collect(),
            live: self.events.subscribe(),
        })
    }

    /// `410 Expired` when `rv` is older than the history the store keeps.
    pub(crate) fn check_version(&self, rv: u64) -> Result<(), ApiError> {
        let inner = self.lock();
        if rv < inner.floor {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                inner.floor
            )));
        }
        Ok(())
    }

    /// Every later event.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        let _inner = self.lock();
        self.events.subscribe()
    }

    /// Forgets the history: every resourceVersion handed out so far is now too old to
    /// resume a watch from.
    pub(crate) fn expire(&self) {
        let mut inner = self.lock();
        inner.rv += 1;
        inner.floor = inner.rv;
        inner.history.clear();
    }

    /// Creates, replaces or leaves an object: `change` gets the current object (if any) and
    /// returns the new one. The store then sets `metadata` it owns (uid, timestamps,
    /// resourceVersion, generation). Returns the stored object and whether it was created.
    pub(crate) fn write(
        &self,
        resource: &'static ResourceType,
        ns: &str,
        name: &str,
        change: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        self.write_or_preview(resource, ns, name, false, change)
    }

    /// Like [`Store::write`]; with `dry_run`, returns what would be stored without storing
    /// it (`?dryRun=All`).
    pub(crate) fn write_or_preview(
        &self,
        resource: &'static ResourceType,
        ns: &str,
        name: &str,
        dry_run: bool,
        change: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Arc<Value>, bool), ApiError> {
        let mut inner = self.lock();
        let id = (ns.to_string(), name.to_string());
        let current = inner
            .objects
            .get(&key(resource))
            .and_then(|objects| objects.get(&id))
            .cloned();
        if current.is_none() && resource.namespaced {
            Self::check_namespace(&inner, ns)?;
        }
        let mut object = change(current.as_deref())?;
        let meta = object
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the object is not a JSON object"))?;
        meta.insert("apiVersion".into(), json!(resource.api_version()));
        meta.insert("kind".into(), json!(resource.kind));
        let metadata = object["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("the object has no metadata"))?;
        metadata.insert("name".into(), json!(name));
        if resource.namespaced {
            metadata.insert("namespace".into(), json!(ns));
        } else {
            metadata.remove("namespace");
        }
        match &current {
            Some(current) => {
                let old = &current["metadata"];
                for field in ["uid", "creationTimestamp"] {
                    metadata.insert(field.into(), old[field].clone());
                }
                if let Some(generation) = old["generation"].as_u64() {
                    let bump = resource.has_generation() && current["spec"] != object["spec"];
                    object["metadata"]["generation"] = json!(generation + u64::from(bump));
                }
                object["metadata"]["resourceVersion"] = old["resourceVersion"].clone();
                if object == **current {
                    return Ok((current.clone(), false));
                }
            }
            None => {
                metadata.insert("uid".into(), json!(crate::random::uid()));
                metadata.insert("creationTimestamp".into(), json!(now()));
                if resource.has_generation() {
                    metadata.insert("generation".into(), json!(1));
                }
            }
        }
        if dry_run {
            return Ok((Arc::new(object), current.is_none()));
        }
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let object = Arc::new(object);
        inner
            .objects
            .entry(key(resource))
            .or_default()
            .insert(id, object.clone());
        let created = current.is_none();
        let kind = if created {
            EventType::Added
        } else {
            EventType::Modified
        };
        self.publish(&mut inner, kind, resource, object.clone(), current, rv);
        Ok((object, created))
    }

    /// Changes an existing object; `404` when there is none.
    pub(crate) fn update(
        &self,
        resource: &'static ResourceType,
        ns: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        self.write(resource, ns, name, |current| {
            let mut object = current
                .ok_or_else(|| ApiError::not_found(&resource.qualified(), name))?
                .clone();
            change(&mut object)?;
            Ok(object)
        })
        .map(|(object, _)| object)
    }

    /// Creates an object; `409` when it exists.
    pub(crate) fn create(
        &self,
        resource: &'static ResourceType,
        object: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let (ns, name) = name_of(&object);
        let (ns, name) = (ns.to_string(), name.to_string());
        self.write(resource, &ns, &name, |current| match current {
            Some(_) => Err(ApiError::already_exists(&resource.qualified(), &name)),
            None => Ok(object),
        })
        .map(|(object, _)| object)
    }

    /// Removes an object and returns its last state.
    pub(crate) fn delete(
        &self,
        resource: &'static ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let removed = inner
            .objects
            .get_mut(&key(resource))
            .and_then(|objects| objects.remove(&(ns.to_string(), name.to_string())))
            .ok_or_else(|| ApiError::not_found(&resource.qualified(), name))?;
        inner.rv += 1;
        let rv = inner.rv;
        let mut last = (*removed).clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let last = Arc::new(last);
        self.publish(
            &mut inner,
            EventType::Deleted,
            resource,
            last.clone(),
            Some(removed),
            rv,
        );
        Ok(last)
    }

    fn check_namespace(inner: &Inner, ns: &str) -> Result<(), ApiError> {
        let namespace = inner
            .objects
            .get(&key(core("namespaces")))
            .and_then(|objects| objects.get(&(String::new(), ns.to_string())))
            .ok_or_else(|| ApiError::not_found("namespaces", ns))?;
        if namespace["metadata"]["deletionTimestamp"].is_string() {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    fn publish(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: &'static ResourceType,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
        rv: u64,
    ) {
        let event = Arc::new(Event {
            kind,
            resource,
            object,
            prev,
            rv,
        });
        inner.history.push_back(event.clone());
        if inner.history.len() > HISTORY
            && let Some(oldest) = inner.history.pop_front()
        {
            inner.floor = oldest.rv;
        }
        // No subscriber is not an error: nobody is watching.
        let _ = self.events.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_default_namespace() -> Store {
        let store = Store::new();
        store
            .create(core("namespaces"), json!({"metadata": {"name": "default"}}))
            .expect("namespace");
        store
    }

    fn secret(name: &str, value: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {"k": value}})
    }

    #[test]
    fn writes_bump_one_counter_and_noops_do_not() {
        let store = store_with_default_namespace();
        let secrets = core("secrets");
        let a = store.create(secrets, secret("a", "MQ==")).expect("create");
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .parse()
            .expect("number");
        assert_eq!(store.resource_version(), rv_a);
        assert_eq!(a["kind"], "Secret");
        assert_eq!(a["apiVersion"], "v1");
        assert!(a["metadata"]["uid"].is_string());

        let same = store
            .update(secrets, "default", "a", |_| Ok(()))
            .expect("no-op");
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        assert_eq!(store.resource_version(), rv_a);

        let changed = store
            .update(secrets, "default", "a", |o| {
                o["data"]["k"] = json!("Mg==");
                Ok(())
            })
            .expect("update");
        assert_eq!(
            changed["metadata"]["resourceVersion"],
            (rv_a + 1).to_string()
        );
        assert_eq!(changed["metadata"]["uid"], a["metadata"]["uid"]);

        let err = store.create(secrets, secret("a", "")).expect_err("exists");
        assert_eq!(err.code, 409);
        let err = store
            .create(
                secrets,
                json!({"metadata": {"name": "x", "namespace": "nope"}}),
            )
            .expect_err("no namespace");
        assert_eq!(
            (err.code, err.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
    }

    #[test]
    fn watches_resume_from_history_until_it_expires() {
        let store = store_with_default_namespace();
        let secrets = core("secrets");
        let start = store.resource_version();
        store.create(secrets, secret("a", "")).expect("a");
        store.create(secrets, secret("b", "")).expect("b");
        store.delete(secrets, "default", "a").expect("delete");

        let watch = store.watch_from(start).expect("in history");
        let seen: Vec<(EventType, &str)> = watch
            .replay
            .iter()
            .map(|e| (e.kind, name_of(&e.object).1))
            .collect();
        assert_eq!(
            seen,
            [
                (EventType::Added, "a"),
                (EventType::Added, "b"),
                (EventType::Deleted, "a")
            ]
        );
        let deleted = &watch.replay[2];
        assert_eq!(
            deleted.object["metadata"]["resourceVersion"],
            deleted.rv.to_string()
        );

        store.expire();
        let err = store.watch_from(start).err().expect("expired");
        assert_eq!((err.code, err.reason), (410, "Expired"));
        assert!(store.watch_from(store.resource_version()).is_ok());
    }

    #[tokio::test]
    async fn subscribers_see_changes_in_order() {
        let store = store_with_default_namespace();
        let mut live = store.subscribe();
        store.create(core("secrets"), secret("a", "")).expect("a");
        store
            .delete(core("secrets"), "default", "a")
            .expect("delete");
        let first = live.recv().await.expect("added");
        let second = live.recv().await.expect("deleted");
        assert_eq!(
            (first.kind, second.kind),
            (EventType::Added, EventType::Deleted)
        );
        assert!(first.rv < second.rv);
        assert!(second.prev.is_some());
    }
}
