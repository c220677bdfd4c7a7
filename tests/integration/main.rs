//! Integration tests of the `ksync` binary: every test runs the real binary in a sandbox
//! (its own HOME, KSYNC_HOME and project directory) and checks what a user sees.
//!
//! All integration tests build into this one binary (see CONTRIBUTING.md).

mod helpers;

mod cli_help;
mod config_errors;
mod config_precedence;
mod create_delete;
mod examples;
mod templates;
