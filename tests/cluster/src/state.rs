//! What the API server and the simulated cluster share: the objects, the access rules, the
//! fault switches, where each pod's ports are, and the log of requests served.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::access::Access;
use crate::faults::Faults;
use crate::portforward::PortMap;
use crate::store::Store;

/// The cluster's shared state; lives behind an `Arc` for as long as the cluster.
#[derive(Default)]
pub(crate) struct State {
    /// Every object.
    pub(crate) store: Store,
    /// Permissions tests have denied.
    pub(crate) access: Access,
    /// The API server's fault switches.
    pub(crate) faults: Faults,
    /// Where pods' ports are, for port-forwards.
    pub(crate) ports: PortMap,
    /// The last requests served (`METHOD path?query`), oldest first.
    requests: Mutex<VecDeque<String>>,
}

/// How many requests the log keeps.
const REQUEST_LOG: usize = 10_000;

impl State {
    /// Logs a request.
    pub(crate) fn log_request(&self, line: String) {
        let mut log = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(line);
    }

    /// The logged requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
