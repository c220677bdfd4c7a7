//! `radar serve` and its flags.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::runtime::{NodeIdentity, RuntimeConfig, Runtimes};
use crate::server::{RadarService, serve};
use crate::syncthing::SyncthingApi;

/// radar, ksync's node agent: tells ksync where a container's files are on this node, and
/// restarts or signals containers on request.
#[derive(Debug, Parser)]
#[command(name = "radar", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the radar gRPC API.
    Serve(ServeArgs),
}

/// Flags of `radar serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Keep the default inside the agent pod: ksync reaches radar
    /// through a port-forward, and nothing else should.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: IpAddr,

    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = radar_proto::DEFAULT_PORT)]
    pub port: u16,

    /// Name of the node this radar serves (default: the host name).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// Only serve containers whose runtime label KEY equals the node name (for hosts that run
    /// containers of several simulated nodes; real nodes leave it unset).
    #[arg(long, value_name = "KEY")]
    pub node_label: Option<String>,

    /// The host's proc filesystem (radar must run in the host PID namespace).
    #[arg(long, default_value = "/proc", value_name = "DIR")]
    pub proc: PathBuf,

    /// The Docker API socket; used for Docker containers when it exists.
    #[arg(long, default_value = "/var/run/docker.sock", value_name = "PATH")]
    pub docker_socket: PathBuf,

    /// Seconds a container's main process has to exit after SIGTERM before SIGKILL, on
    /// restart.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub stop_timeout: u64,

    /// The REST API of the Syncthing beside radar in the agent pod.
    #[arg(long, default_value = "http://127.0.0.1:8384", value_name = "URL")]
    pub syncthing_url: String,

    /// File holding that Syncthing's API key (mounted from the agent's Secret).
    #[arg(long, value_name = "PATH")]
    pub syncthing_api_key_file: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

/// The whole program: parse, run, exit code (0 after a clean shutdown, 1 on failure).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let filter = tracing_subscriber::EnvFilter::try_new(format!("radar={}", args.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("radar=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Binds, prints `radar listening on ADDR`, and serves until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), String> {
    let node_name = match args.node_name {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .map_err(|e| format!("no --node-name and cannot read the host name: {e}"))?,
    };
    let api_key = match &args.syncthing_api_key_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|k| k.trim().to_string())
                .map_err(|e| {
                    format!(
                        "cannot read the Syncthing API key from {}: {e}",
                        path.display()
                    )
                })?,
        ),
        None => None,
    };
    let runtimes = Runtimes::new(RuntimeConfig {
        proc_root: args.proc,
        docker_socket: args.docker_socket,
        stop_timeout: Duration::from_secs(args.stop_timeout),
        node: NodeIdentity {
            name: node_name.clone(),
            label: args.node_label,
        },
    });
    let service = RadarService::new(
        runtimes,
        SyncthingApi {
            url: args.syncthing_url,
            api_key,
        },
    );
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "radar listening on {local}");
    let _ = out.flush();
    drop(out);
    tracing::info!(%local, node = %node_name, "serving");
    serve(listener, service, shutdown_signal())
        .await
        .map_err(|e| format!("the gRPC server failed: {e}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
}
