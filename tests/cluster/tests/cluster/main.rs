//! Tests of the test cluster: against the real `kubectl`, kube-rs and the official Python
//! client (the `conformance` modules), and of what it runs (pods as Docker containers, agent
//! pods as radar and Syncthing) and its fault switches.

mod support;

mod agents;
mod channel_protocol;
mod conformance;
mod faults;
mod pods;
