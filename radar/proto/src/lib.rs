//! The wire contract between `ksync` (the client) and `radar` (the node agent).
//!
//! The contract lives in `proto/ksync/radar/v1/radar.proto` and is compiled by `build.rs`
//! with protox. Both sides depend on this crate and on nothing else of each other.
//!
//! Compatibility rule: fields and RPCs are only ever added to `v1`. A change that old peers
//! cannot understand bumps [`PROTOCOL_VERSION`]; ksync refuses to talk to a radar whose
//! protocol version differs from its own and names the command that upgrades the agent.

/// Protocol version spoken by this build. Reported by `GetVersion` and checked by ksync.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default TCP port radar listens on (inside the agent pod, on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 40321;

/// Generated messages, client and server for package `ksync.radar.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ksync.radar.v1");
}
