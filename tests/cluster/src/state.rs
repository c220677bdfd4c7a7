//! What the API server and the simulated cluster share: the objects, the access rules, the
//! fault switches and where each pod's ports are.

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
}
