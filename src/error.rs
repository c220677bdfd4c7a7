//! The errors a command can end with, and the one function that maps them to exit codes.
//!
//! | code | meaning                                                              |
//! |------|----------------------------------------------------------------------|
//! | 0    | success                                                              |
//! | 1    | the work failed (I/O, an unexpected condition)                       |
//! | 2    | the command line is wrong (unknown flag, missing argument)           |
//! | 3    | the configuration is invalid (files, templates, spec rules)          |
//! | 4    | the request conflicts with the configuration (duplicate or unknown spec) |
//! | 5    | the cluster or the agent is not usable (unreachable, not installed, a failed check) |

use std::process::ExitCode;

use crate::cluster::ClusterError;
use crate::config::{ConfigError, UserFileError};

/// Why a command failed. Every variant says what to do about it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Loading the configuration failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),

    /// Reading or editing the user file failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    UserFile(#[from] UserFileError),

    /// The spec rules reject what `ksync create` was given.
    #[error("{message}")]
    #[diagnostic(code(ksync::create::invalid), help("{help}"))]
    InvalidSpec {
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },

    /// `ksync create` would add a spec whose name is taken.
    #[error("a spec named `{name}` already exists in {file}")]
    #[diagnostic(code(ksync::create::duplicate_name), help("{help}"))]
    DuplicateName {
        /// The name.
        name: String,
        /// Where it is defined.
        file: String,
        /// How to go on.
        help: String,
    },

    /// `ksync create` would add a spec identical to an existing one under another name.
    #[error("spec `{existing}` already syncs exactly this (only the name differs)")]
    #[diagnostic(
        code(ksync::create::duplicate_spec),
        help("use `{existing}` as it is, or pass --force to add `{name}` anyway")
    )]
    SameSpec {
        /// The existing spec.
        existing: String,
        /// The name asked for.
        name: String,
    },

    /// `ksync delete` was given names that are not in the user file.
    #[error("no spec named {names} in {file}")]
    #[diagnostic(code(ksync::delete::unknown), help("{help}"))]
    UnknownSpecs {
        /// The unknown names, formatted.
        names: String,
        /// The user file.
        file: String,
        /// The known names, or where the names are defined instead.
        help: String,
    },

    /// Neither `KSYNC_HOME` nor `HOME` is set.
    #[error("cannot find the ksync home: neither KSYNC_HOME nor HOME is set")]
    #[diagnostic(
        code(ksync::home),
        help("set HOME, or KSYNC_HOME to the directory ksync keeps its files in")
    )]
    NoHome,

    /// The cluster or its agent failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cluster(#[from] ClusterError),

    /// `ksync doctor` found failing checks.
    #[error("{failed} of {total} checks failed")]
    #[diagnostic(
        code(ksync::doctor::failed),
        help("fix them in order: each check's fix is printed above")
    )]
    DoctorFailed {
        /// Failed checks.
        failed: usize,
        /// All checks run.
        total: usize,
    },

    /// A local file or folder could not be changed.
    #[error("cannot {action} {}: {source}", path.display())]
    #[diagnostic(code(ksync::io))]
    Io {
        /// What ksync tried.
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The working directory cannot be read.
    #[error("cannot determine the working directory")]
    #[diagnostic(code(ksync::cwd), help("run ksync from a directory that exists"))]
    Cwd(#[source] std::io::Error),
}

impl Error {
    /// The process exit code for this error; see the module docs for the table.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The numeric exit code.
    pub fn code(&self) -> u8 {
        match self {
            Error::Config(ConfigError::Invalid(_) | ConfigError::MissingProjectFile { .. })
            | Error::UserFile(UserFileError::Invalid(_))
            | Error::InvalidSpec { .. }
            | Error::Cluster(ClusterError::Agent(_)) => 3,
            Error::DuplicateName { .. } | Error::SameSpec { .. } | Error::UnknownSpecs { .. } => 4,
            Error::Cluster(_) | Error::DoctorFailed { .. } => 5,
            Error::Config(ConfigError::Read { .. })
            | Error::UserFile(UserFileError::Io { .. })
            | Error::Io { .. }
            | Error::NoHome
            | Error::Cwd(_) => 1,
        }
    }
}

/// Exit code of a command line clap rejects.
pub const USAGE_EXIT_CODE: u8 = 2;
