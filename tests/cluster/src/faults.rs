//! Switches tests flip to make the API server misbehave the way real ones do: connections
//! dropped, watches ended early, bookmarks at a chosen rate.
//!
//! The faults that concern containers and processes (killing radar, restarting a container,
//! rescheduling a pod) live with what they break; [`crate::TestCluster`] exposes them all.

use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A token that can be fired many times: firing cancels everyone holding the current token
/// and hands out a fresh one to later holders.
#[derive(Debug, Default)]
pub(crate) struct Tripwire(Mutex<CancellationToken>);

impl Tripwire {
    /// The token to hold now.
    pub(crate) fn token(&self) -> CancellationToken {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Cancels every token handed out so far.
    pub(crate) fn fire(&self) {
        let old = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        old.cancel();
    }
}

/// The API server's fault switches.
#[derive(Debug)]
pub(crate) struct Faults {
    /// Fired to drop every open port-forward connection.
    pub(crate) port_forwards: Tripwire,
    /// Fired to end every open watch stream.
    pub(crate) watches: Tripwire,
    settings: Mutex<WatchSettings>,
}

#[derive(Debug, Clone, Copy)]
struct WatchSettings {
    timeout_cap: Option<Duration>,
    bookmark_every: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            port_forwards: Tripwire::default(),
            watches: Tripwire::default(),
            settings: Mutex::new(WatchSettings {
                timeout_cap: None,
                bookmark_every: Duration::from_secs(1),
            }),
        }
    }
}

impl Faults {
    fn settings(&self) -> std::sync::MutexGuard<'_, WatchSettings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a watch asking for `requested` really lasts: the request's `timeoutSeconds`,
    /// shortened to the cap a test set.
    pub(crate) fn watch_timeout(&self, requested: Option<Duration>) -> Option<Duration> {
        match (requested, self.settings().timeout_cap) {
            (Some(r), Some(cap)) => Some(r.min(cap)),
            (r, cap) => r.or(cap),
        }
    }

    /// Caps every watch stream at `cap` (none: only `timeoutSeconds` ends them).
    pub(crate) fn set_watch_timeout_cap(&self, cap: Option<Duration>) {
        self.settings().timeout_cap = cap;
    }

    /// How often watches that allow bookmarks get one.
    pub(crate) fn bookmark_every(&self) -> Duration {
        self.settings().bookmark_every
    }

    /// Sets how often watches that allow bookmarks get one.
    pub(crate) fn set_bookmark_every(&self, every: Duration) {
        self.settings().bookmark_every = every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tripwire_cancels_only_tokens_handed_out_before() {
        let wire = Tripwire::default();
        let before = wire.token();
        wire.fire();
        let after = wire.token();
        assert!(before.is_cancelled());
        assert!(!after.is_cancelled());
    }

    #[test]
    fn the_cap_shortens_watches() {
        let faults = Faults::default();
        let s = Duration::from_secs;
        assert_eq!(faults.watch_timeout(Some(s(290))), Some(s(290)));
        assert_eq!(faults.watch_timeout(None), None);
        faults.set_watch_timeout_cap(Some(s(2)));
        assert_eq!(faults.watch_timeout(Some(s(290))), Some(s(2)));
        assert_eq!(faults.watch_timeout(Some(s(1))), Some(s(1)));
        assert_eq!(faults.watch_timeout(None), Some(s(2)));
    }
}
