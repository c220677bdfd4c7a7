//! The command line: global flags, one module per subcommand, and dispatch.
//!
//! Each subcommand module owns its clap arguments and a `run` that only calls domain code
//! (`config`, `spec`, …) and prints.

mod clean;
mod config;
mod create;
mod delete;
mod doctor;
mod init;
mod version;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Flags, KsyncHome, LoadOptions};
use crate::error::Error;

/// ksync keeps local folders in sync with containers running in Kubernetes, and reloads the
/// containers when a sync lands.
///
/// Specs (local folder → container path, picked by pod name or label selector) come from the
/// project's ksync.toml (nearest in this directory or a parent), ksync.local.toml beside it,
/// and ~/.ksync/ksync.yaml.
#[derive(Debug, Parser)]
#[command(
    name = "ksync",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Run as if ksync was started in DIR.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Use this project file instead of searching for ksync.toml.
    #[arg(short = 'f', long = "file", global = true, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Set a template variable, overriding [vars] (repeatable).
    #[arg(long = "var", global = true, value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,

    /// Log level: error, warn, info, debug or trace (logs go to stderr).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a spec to ~/.ksync/ksync.yaml.
    #[command(visible_alias = "c")]
    Create(create::CreateArgs),
    /// Remove specs from ~/.ksync/ksync.yaml.
    #[command(visible_alias = "d")]
    Delete(delete::DeleteArgs),
    /// Show the merged, rendered specs and where each value comes from.
    Config(config::ConfigArgs),
    /// Install or upgrade the ksync agent in the cluster.
    Init(init::InitArgs),
    /// Remove what `ksync init` installed (and, with --local, local Syncthing state).
    Clean(clean::CleanArgs),
    /// Check everything ksync needs, in order, with a fix for each failure.
    Doctor(doctor::DoctorArgs),
    /// Show version information (of this ksync and of the agent).
    Version(version::VersionArgs),
}

/// How commands that print data print it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Pretty,
    /// For programs: one JSON document.
    Json,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "variable name `{key}` must be letters, digits and `_` (it is used as `vars.{key}`)"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// What every command starts from.
#[derive(Debug)]
pub struct Context {
    cwd: PathBuf,
    global: GlobalArgs,
    home: Option<KsyncHome>,
    env: BTreeMap<String, String>,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, Error> {
        let cwd = std::env::current_dir().map_err(Error::Cwd)?;
        let cwd = match &global.directory {
            Some(dir) => crate::config::absolutize(&cwd, dir),
            None => cwd,
        };
        Ok(Context {
            cwd,
            global,
            home: KsyncHome::from_env(),
            env: crate::template::process_env(),
        })
    }

    fn home(&self) -> Result<&KsyncHome, Error> {
        self.home.as_ref().ok_or(Error::NoHome)
    }

    /// How to reach the cluster: `--kubeconfig`, and the context from the merged settings
    /// (which include `--context`).
    fn cluster_options(
        &self,
        settings: &crate::config::Settings,
    ) -> crate::cluster::ClusterOptions {
        crate::cluster::ClusterOptions {
            kubeconfig: self.global.kubeconfig.clone(),
            context: settings.context.as_ref().map(|c| c.value.clone()),
        }
    }

    /// Connects to the cluster the configuration names.
    async fn cluster(&self) -> Result<crate::cluster::Cluster, Error> {
        let loaded = crate::config::load(&self.load_options(None))?;
        Ok(crate::cluster::Cluster::connect(&self.cluster_options(&loaded.settings)).await?)
    }

    /// Options for [`crate::config::load`]; `namespace` is a command's `--namespace`.
    fn load_options(&self, namespace: Option<String>) -> LoadOptions {
        LoadOptions {
            cwd: self.cwd.clone(),
            project_file: self.global.file.clone(),
            home: self.home.clone(),
            env: self.env.clone(),
            flags: Flags {
                context: self.global.context.clone(),
                namespace,
                log_level: self.global.log_level.clone(),
                vars: self.global.vars.clone(),
            },
        }
    }
}

/// The whole program: parse the command line, set up logging and error reports, run, and
/// turn the outcome into the exit code (see [`crate::error`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .width(100)
                .build(),
        )
    }));
    init_logging(cli.global.log_level.as_deref());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "ksync: cannot start the async runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.exit_code();
            let _ = writeln!(std::io::stderr().lock(), "{:?}", miette::Report::new(error));
            code
        }
    }
}

/// Logs go to stderr at `--log-level`, else `KSYNC_LOG_LEVEL`, else `warn`.
fn init_logging(flag: Option<&str>) {
    let level = flag
        .map(str::to_string)
        .or_else(|| std::env::var("KSYNC_LOG_LEVEL").ok())
        .unwrap_or_else(|| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(format!("ksync={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("ksync=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::Create(args) => create::run(&ctx, args),
        Command::Delete(args) => delete::run(&ctx, args),
        Command::Config(args) => config::run(&ctx, args),
        Command::Init(args) => init::run(&ctx, args).await,
        Command::Clean(args) => clean::run(&ctx, args).await,
        Command::Doctor(args) => doctor::run(&ctx, args).await,
        Command::Version(args) => version::run(&ctx, args).await,
    }
}

/// Writes `text` to stdout; a closed pipe (`ksync config | head`) is not an error.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Reports warnings on stderr, rendered like errors (with file, line and fix).
fn warn_all<'a>(warnings: impl IntoIterator<Item = &'a crate::diagnostic::Problem>) {
    let mut err = std::io::stderr().lock();
    for warning in warnings {
        let _ = write!(err, "{:?}", miette::Report::new(warning.clone()));
        let _ = writeln!(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vars_are_key_value() {
        assert_eq!(parse_var("tag=v1=x"), Ok(("tag".into(), "v1=x".into())));
        assert!(parse_var("tag").is_err());
        assert!(parse_var("a.b=1").is_err());
    }
}
