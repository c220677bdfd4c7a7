//! ksync's Syncthing orchestration against two real Syncthing processes (Debian's package)
//! on loopback: "local" stands for the laptop, "remote" for a node's agent.

mod support;

mod completion;
mod directions;
mod faults;
mod instance;
mod two_way;
