//! The local Syncthing that ksync supervises.
//!
//! - Its home persists (`~/.ksync/syncthing` by default): the same device ID on every run and
//!   no full rehash of unchanged files after a restart.
//! - Its API key is random, made once, and stored with mode 0600.
//! - It listens on loopback only (REST on a free port), with global and local discovery,
//!   relays, NAT traversal, usage and crash reporting and auto-upgrade off from its very first
//!   start (`syncthing-home`).
//! - It runs as a single process (`STMONITORED=yes`) that ksync restarts with backoff if it
//!   dies, and stops cleanly (REST shutdown, then SIGTERM, then SIGKILL, by PID).
//! - A stale instance left by a ksync that was killed is found through its pid file and
//!   stopped before a new one starts.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::SyncthingError;
use super::binary::SyncthingBinary;
use super::client::Client;

/// How a local instance is started.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    /// The binary.
    pub binary: SyncthingBinary,
    /// Its home (config, keys, database).
    pub home: PathBuf,
    /// How long to wait for it to answer after a start.
    pub start_timeout: Duration,
}

/// The state the supervisor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    /// Answering.
    Running {
        /// Its PID.
        pid: u32,
    },
    /// Died; being restarted.
    Restarting {
        /// How it ended.
        reason: String,
    },
    /// Stopped by ksync.
    Stopped,
}

/// A running, supervised local Syncthing.
#[derive(Debug)]
pub struct LocalSyncthing {
    client: Client,
    device_id: String,
    home: PathBuf,
    gui_port: u16,
    listen_port: u16,
    state: watch::Receiver<InstanceState>,
    stop: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
    supervisor: Option<JoinHandle<()>>,
}

/// File names inside the home.
const API_KEY_FILE: &str = "ksync-apikey";
const PID_FILE: &str = "ksync-syncthing.pid";
const LOG_FILE: &str = "syncthing.log";

impl LocalSyncthing {
    /// Starts Syncthing in `options.home` and waits until it answers.
    pub async fn start(options: InstanceOptions) -> Result<LocalSyncthing, SyncthingError> {
        let home = options.home.clone();
        create_private_dir(&home)?;
        stop_stale(&home).await;
        let key = api_key(&home)?;

        let mut last_error = None;
        // A free port can be taken between choosing and binding it: try a few.
        for _ in 0..3 {
            let gui_port = free_port(&home)?;
            let listen_port = free_port(&home)?;
            syncthing_home::init_home(
                &options.binary.path,
                &home,
                &format!("tcp://127.0.0.1:{listen_port}"),
                &format!("127.0.0.1:{gui_port}"),
            )
            .map_err(|reason| SyncthingError::State {
                action: "prepare",
                path: home.clone(),
                reason,
            })?;
            let client = Client::new(&format!("http://127.0.0.1:{gui_port}"), &key);
            let child = spawn(&options.binary.path, &home, gui_port, &key)?;
            match wait_ready(&client, child, &home, options.start_timeout).await {
                Ok(child) => {
                    let device_id = client.status().await?.my_id;
                    // Dial again soon after a tunnel comes back, instead of in a minute.
                    client
                        .patch_options(&serde_json::json!({ "reconnectionIntervalS": 2 }))
                        .await?;
                    let pid = child.id().unwrap_or(0);
                    let (state_tx, state) = watch::channel(InstanceState::Running { pid });
                    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
                    let supervisor = tokio::spawn(supervise(
                        child,
                        options.clone(),
                        gui_port,
                        key.clone(),
                        client.clone(),
                        state_tx,
                        stop_rx,
                    ));
                    return Ok(LocalSyncthing {
                        client,
                        device_id,
                        home,
                        gui_port,
                        listen_port,
                        state,
                        stop: Arc::new(Mutex::new(Some(stop_tx))),
                        supervisor: Some(supervisor),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(SyncthingError::Start {
            reason: "no free port".into(),
            log: home.join(LOG_FILE),
            home,
        }))
    }

    /// Its REST API.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Its device ID.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Its home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Its REST port on 127.0.0.1.
    pub fn gui_port(&self) -> u16 {
        self.gui_port
    }

    /// Its sync (BEP) port on 127.0.0.1.
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// The supervisor's view of it.
    pub fn state(&self) -> watch::Receiver<InstanceState> {
        self.state.clone()
    }

    /// Stops it cleanly and waits until it has exited.
    pub async fn stop(mut self) -> Result<(), SyncthingError> {
        if let Some(stop) = self.stop.lock().await.take() {
            let _ = stop.send(());
        }
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.await;
        }
        Ok(())
    }
}

impl Drop for LocalSyncthing {
    fn drop(&mut self) {
        // Without `stop`, the supervisor is aborted and the child, spawned with
        // kill_on_drop, is killed with it.
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
    }
}

fn create_private_dir(home: &Path) -> Result<(), SyncthingError> {
    std::fs::create_dir_all(home).map_err(|e| state_error("create", home, &e))?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| state_error("protect", home, &e))
}

fn state_error(action: &'static str, path: &Path, e: &std::io::Error) -> SyncthingError {
    SyncthingError::State {
        action,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The API key: read, or made once and stored with mode 0600.
fn api_key(home: &Path) -> Result<String, SyncthingError> {
    let path = home.join(API_KEY_FILE);
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_string();
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    let key = Alphanumeric.sample_string(&mut rand::rng(), 40);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| state_error("write", &path, &e))?;
    file.write_all(key.as_bytes())
        .map_err(|e| state_error("write", &path, &e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| state_error("protect", &path, &e))?;
    Ok(key)
}

fn free_port(home: &Path) -> Result<u16, SyncthingError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| state_error("find a free port for", home, &e))
}

fn spawn(binary: &Path, home: &Path, gui_port: u16, key: &str) -> Result<Child, SyncthingError> {
    let log_path = home.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| state_error("open", &log_path, &e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| state_error("open", &log_path, &e))?;
    let child = Command::new(binary)
        .arg("serve")
        .arg(format!("--home={}", home.display()))
        .args([
            "--no-browser",
            "--no-restart",
            "--no-upgrade",
            "--logflags=3",
        ])
        .arg(format!("--gui-address=http://127.0.0.1:{gui_port}"))
        .arg(format!("--gui-apikey={key}"))
        .env("STMONITORED", "yes")
        .env("STNODEFAULTFOLDER", "1")
        .env("STHASHING", "minio")
        .env("STNOUPGRADE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SyncthingError::Unrunnable {
            path: binary.to_path_buf(),
            reason: e.to_string(),
        })?;
    if let Some(pid) = child.id() {
        let pid_path = home.join(PID_FILE);
        std::fs::write(&pid_path, pid.to_string())
            .map_err(|e| state_error("write", &pid_path, &e))?;
    }
    Ok(child)
}

/// Waits until the API answers; fails early if the process exits.
async fn wait_ready(
    client: &Client,
    mut child: Child,
    home: &Path,
    timeout: Duration,
) -> Result<Child, SyncthingError> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(10);
    loop {
        if client.ping().await.is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(home.join(LOG_FILE)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(SyncthingError::Start {
                reason: format!("it exited ({status}): {}", tail.join(" | ")),
                log: home.join(LOG_FILE),
                home: home.to_path_buf(),
            });
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(SyncthingError::Start {
                reason: format!("its API did not answer within {} s", timeout.as_secs()),
                log: home.join(LOG_FILE),
                home: home.to_path_buf(),
            });
        }
        // Polling the API is the readiness check Syncthing offers (it has no ready signal).
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Watches the child; restarts it with backoff when it dies; stops it on request.
async fn supervise(
    child: Child,
    options: InstanceOptions,
    gui_port: u16,
    key: String,
    client: Client,
    state: watch::Sender<InstanceState>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut child = Some(child);
    let mut restarts: u32 = 0;
    loop {
        match child.as_mut() {
            Some(running) => {
                tokio::select! {
                    _ = &mut stop => {
                        shutdown(&client, running).await;
                        let _ = std::fs::remove_file(options.home.join(PID_FILE));
                        let _ = state.send(InstanceState::Stopped);
                        return;
                    }
                    status = running.wait() => {
                        let reason = match status {
                            Ok(s) => format!("it exited ({s})"),
                            Err(e) => format!("waiting for it failed: {e}"),
                        };
                        tracing::warn!(%reason, "local Syncthing died; restarting it");
                        let _ = state.send(InstanceState::Restarting { reason });
                        child = None;
                    }
                }
            }
            None => {
                restarts += 1;
                let backoff = Duration::from_millis(200 * u64::from(restarts.min(25)));
                tokio::select! {
                    _ = &mut stop => {
                        let _ = state.send(InstanceState::Stopped);
                        return;
                    }
                    () = tokio::time::sleep(backoff) => {}
                }
                let started = match spawn(&options.binary.path, &options.home, gui_port, &key) {
                    Ok(new) => wait_ready(&client, new, &options.home, options.start_timeout).await,
                    Err(e) => Err(e),
                };
                match started {
                    Ok(new) => {
                        let _ = state.send(InstanceState::Running {
                            pid: new.id().unwrap_or(0),
                        });
                        child = Some(new);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "restarting the local Syncthing failed; trying again");
                    }
                }
            }
        }
    }
}

/// REST shutdown, then SIGTERM, then SIGKILL, waiting for the exit after each.
async fn shutdown(client: &Client, child: &mut Child) {
    let _ = client.shutdown().await;
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_ok()
    {
        return;
    }
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Stops an instance a previous ksync left running on this home (found by its pid file and
/// its command line naming this home).
pub async fn stop_stale(home: &Path) {
    let pid_path = home.join(PID_FILE);
    let Some(pid) = std::fs::read_to_string(&pid_path)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    let ours = cmdline.contains(&format!("--home={}", home.display())) && cmdline.contains("serve");
    if ours && let Some(p) = rustix::process::Pid::from_raw(pid) {
        tracing::info!(pid, "stopping a Syncthing left running by an earlier ksync");
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_alive(pid) && Instant::now() < deadline {
            // Not our child: its exit can only be seen in /proc.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if is_alive(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    let _ = std::fs::remove_file(pid_path);
}

/// True while `pid` runs (a zombie has exited).
fn is_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}
