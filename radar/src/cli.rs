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
    /// Prepare the agent Syncthing's home before it starts (the agent pod's init container):
    /// keys and config on first run, then no discovery, relays, NAT, usage or crash reports.
    SyncthingInit(SyncthingInitArgs),
    /// Check that radar or the pod's Syncthing answers (readiness probes); exit 0 if so.
    Probe(ProbeArgs),
}

/// Flags of `radar syncthing-init`.
#[derive(Debug, Args)]
pub struct SyncthingInitArgs {
    /// Syncthing's home directory.
    #[arg(long, default_value = "/var/syncthing", value_name = "DIR")]
    pub home: PathBuf,
    /// The Syncthing binary.
    #[arg(long, default_value = "syncthing", value_name = "PATH")]
    pub syncthing: PathBuf,
    /// Syncthing's sync (BEP) listen address.
    #[arg(long, default_value = "tcp://0.0.0.0:22000", value_name = "URL")]
    pub listen: String,
    /// Syncthing's GUI/REST address; keep it on loopback inside the pod.
    #[arg(long, default_value = "127.0.0.1:8384", value_name = "ADDR")]
    pub gui_address: String,
}

/// What `radar probe` checks.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `radar` or `syncthing`.
    #[arg(value_parser = ["radar", "syncthing"])]
    pub target: String,
    /// radar's address.
    #[arg(long, default_value = "127.0.0.1:40321", value_name = "ADDR")]
    pub addr: SocketAddr,
    /// Syncthing's REST API.
    #[arg(long, default_value = "http://127.0.0.1:8384", value_name = "URL")]
    pub syncthing_url: String,
    /// File holding Syncthing's API key.
    #[arg(long, value_name = "PATH")]
    pub syncthing_api_key_file: Option<PathBuf>,
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

    /// containerd's socket, asked for the runtime's version on nodes without Docker.
    #[arg(
        long,
        default_value = "/run/containerd/containerd.sock",
        value_name = "PATH"
    )]
    pub containerd_socket: PathBuf,

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

/// The whole program: parse, run, exit code (0 on success or a clean shutdown, 1 on
/// failure).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match &cli.command {
        Command::Serve(args) => args.log_level.clone(),
        _ => "warn".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!("radar={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("radar=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::SyncthingInit(args) => {
            syncthing_home::init_home(&args.syncthing, &args.home, &args.listen, &args.gui_address)
        }
        command => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(async {
                match command {
                    Command::Serve(args) => run(args).await,
                    Command::Probe(args) => probe(args).await,
                    Command::SyncthingInit(_) => Ok(()),
                }
            }),
            Err(e) => Err(format!("cannot start the async runtime: {e}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            let _ = writeln!(std::io::stderr(), "radar: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `radar probe`: one request with a short deadline.
async fn probe(args: ProbeArgs) -> Result<(), String> {
    let deadline = Duration::from_secs(3);
    if args.target == "radar" {
        let check = async {
            let mut client = radar_proto::v1::radar_client::RadarClient::connect(format!(
                "http://{}",
                args.addr
            ))
            .await
            .map_err(|e| format!("radar at {} does not answer: {e}", args.addr))?;
            client
                .get_version(radar_proto::v1::GetVersionRequest {})
                .await
                .map(|_| ())
                .map_err(|e| format!("radar at {} fails: {e}", args.addr))
        };
        return tokio::time::timeout(deadline, check)
            .await
            .map_err(|_| format!("radar at {} did not answer within {deadline:?}", args.addr))?;
    }
    let key = read_key(args.syncthing_api_key_file.as_deref())?.unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(deadline)
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!(
        "{}/rest/system/ping",
        args.syncthing_url.trim_end_matches('/')
    );
    let response = client
        .get(&url)
        .header("X-API-Key", key)
        .send()
        .await
        .map_err(|e| format!("Syncthing at {} does not answer: {e}", args.syncthing_url))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "Syncthing at {} answered {}",
            args.syncthing_url,
            response.status()
        ))
    }
}

fn read_key(path: Option<&std::path::Path>) -> Result<Option<String>, String> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .map(|k| k.trim().to_string())
            .map_err(|e| {
                format!(
                    "cannot read the Syncthing API key from {}: {e}",
                    path.display()
                )
            })
    })
    .transpose()
}

/// Binds, prints `radar listening on ADDR`, and serves until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), String> {
    let node_name = match args.node_name {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .map_err(|e| format!("no --node-name and cannot read the host name: {e}"))?,
    };
    let api_key = read_key(args.syncthing_api_key_file.as_deref())?;
    let runtimes = Runtimes::new(RuntimeConfig {
        proc_root: args.proc,
        docker_socket: args.docker_socket,
        containerd_socket: args.containerd_socket,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serves_on_loopback_by_default() {
        let cli = Cli::try_parse_from(["radar", "serve"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(args.port, 40321);
    }
}
