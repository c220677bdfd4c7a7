//! The programs the test cluster runs: radar (built from this workspace), Syncthing (from
//! `PATH`), and child processes that die with the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crate::error::Error;

/// Environment variable naming a radar binary to use instead of building one.
pub const RADAR_BIN_ENV: &str = "KSYNC_RADAR_BIN";

/// The radar binary: `$KSYNC_RADAR_BIN`, or this workspace's, built with cargo on first use
/// (a no-op when it is up to date; `tests/run` builds it before the tests).
pub(crate) fn radar() -> Result<PathBuf, Error> {
    static RADAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RADAR
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(RADAR_BIN_ENV) {
                return Ok(PathBuf::from(path));
            }
            build_radar()
        })
        .clone()
        .map_err(Error::Program)
}

fn build_radar() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "radar",
            "--bin",
            "radar",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit());
    let release = std::env::current_exe()
        .ok()
        .is_some_and(|exe| exe.components().any(|c| c.as_os_str() == "release"));
    if release {
        command.arg("--release");
    }
    let out = command.output().map_err(|e| {
        format!("cannot run cargo to build radar ({RADAR_BIN_ENV} is not set): {e}")
    })?;
    if !out.status.success() {
        return Err("building radar (`cargo build -p radar`) failed; see the output above".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "radar")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no radar executable".to_string())
}

/// The Syncthing binary on `PATH`.
pub(crate) fn syncthing() -> Result<PathBuf, Error> {
    which("syncthing").ok_or_else(|| {
        Error::Program(
            "the test cluster runs a real Syncthing per node: apt-get install syncthing (tests/run does)"
                .into(),
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A command for a child process of the test cluster: in its own process group (so it and
/// its children are stopped together), killed if the test process dies first when
/// `setpriv` is available, output appended to `log`.
pub(crate) fn command(program: &Path, log: &Path) -> Result<tokio::process::Command, Error> {
    let mut command = match which("setpriv") {
        Some(setpriv) => {
            let mut c = tokio::process::Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        }
        None => tokio::process::Command::new(program),
    };
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(Error::io(format!("open {}", log.display())))
    };
    command
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .process_group(0)
        .kill_on_drop(true);
    Ok(command)
}

/// Sends `signal` to the process group led by `pid` (a child started by [`command`]).
pub(crate) fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // Already gone is fine.
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}
