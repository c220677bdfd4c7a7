//! radar against real containers: a real Docker Engine (and the containerd behind it), real
//! processes, a real gRPC client. Every container, volume and network a test makes carries
//! the label `io.ksync.test=radar` and is removed when the test ends.

mod support;

mod agent_image;
mod containerd;
mod refusals;
mod resolve;
mod restart_and_signal;
mod serve;
mod syncthing_restart;
