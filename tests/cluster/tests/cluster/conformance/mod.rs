//! The test cluster against independent clients: whatever they accept from it, they would
//! accept from a real API server, and the other way around.

pub(crate) mod kube_rs;
mod kubectl;
mod python;
