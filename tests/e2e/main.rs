//! ksync's Kubernetes layer end to end, on the project's test cluster (a Kubernetes API backed
//! by real Docker containers, real radar and real Syncthing; see CONTRIBUTING.md).

mod support;

mod doctor;
mod install;
mod lifecycle;
mod targets;
mod tunnels;
