//! Signalling and stopping processes by pid, race-free through pidfds: a pid that is reused
//! after we looked it up is never signalled by mistake once the pidfd is open.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::error::RadarError;

/// Parses a signal name (`HUP`, `SIGHUP`, `hup`) or number (`1`).
pub fn parse_signal(name: &str) -> Result<Signal, RadarError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let signal = match bare {
        "HUP" => Some(Signal::HUP),
        "INT" => Some(Signal::INT),
        "QUIT" => Some(Signal::QUIT),
        "KILL" => Some(Signal::KILL),
        "USR1" => Some(Signal::USR1),
        "USR2" => Some(Signal::USR2),
        "TERM" => Some(Signal::TERM),
        "CONT" => Some(Signal::CONT),
        "STOP" => Some(Signal::STOP),
        "WINCH" => Some(Signal::WINCH),
        number => number.parse::<i32>().ok().and_then(Signal::from_named_raw),
    };
    signal.ok_or_else(|| {
        RadarError::InvalidArgument(format!(
            "`{name}` is not a signal radar sends; use HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP, WINCH or a number"
        ))
    })
}

/// An open handle on a process.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    fd: OwnedFd,
}

impl Process {
    /// Opens process `pid` (in radar's PID namespace, which is the host's).
    pub fn open(pid: u32) -> Result<Self, RadarError> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| RadarError::Internal(format!("{pid} is not a valid pid")))?;
        let fd = pidfd_open(raw, PidfdFlags::empty()).map_err(|e| {
            if e == rustix::io::Errno::SRCH {
                RadarError::FailedPrecondition(format!(
                    "process {pid} has exited; the container may be restarting, try again"
                ))
            } else {
                RadarError::Internal(format!("cannot open process {pid}: {e}"))
            }
        })?;
        Ok(Process { pid, fd })
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) -> Result<(), RadarError> {
        pidfd_send_signal(&self.fd, signal).map_err(|e| match e {
            rustix::io::Errno::SRCH => RadarError::FailedPrecondition(format!(
                "process {} has exited; the container may be restarting, try again",
                self.pid
            )),
            rustix::io::Errno::PERM => RadarError::PermissionDenied(format!(
                "radar may not signal process {}: it needs CAP_KILL in the host PID namespace",
                self.pid
            )),
            e => RadarError::Internal(format!("cannot signal process {}: {e}", self.pid)),
        })
    }

    /// Waits until the process has exited, for at most `timeout`; true if it did. (A pidfd
    /// becomes readable when its process exits.)
    pub async fn wait_exit(self, timeout: Duration) -> Result<bool, RadarError> {
        let pid = self.pid;
        let wait = move || {
            let timeout = Timespec {
                tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            loop {
                match poll(&mut fds, Some(&timeout)) {
                    Ok(n) => return Ok(n > 0),
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::task::spawn_blocking(wait)
            .await
            .map_err(|e| RadarError::Internal(format!("cannot watch process {pid}: {e}")))?
            .map_err(|e| RadarError::Internal(format!("cannot watch process {pid}: {e}")))
    }

    /// Stops the process: SIGTERM, then SIGKILL if it is still there after `grace`.
    pub async fn stop(self, grace: Duration) -> Result<(), RadarError> {
        let pid = self.pid;
        self.signal(Signal::TERM)?;
        let again = Process::open(pid);
        if self.wait_exit(grace).await? {
            return Ok(());
        }
        tracing::info!(pid, ?grace, "process ignored SIGTERM; sending SIGKILL");
        let process = again?;
        process.signal(Signal::KILL)?;
        if process.wait_exit(grace).await? {
            Ok(())
        } else {
            Err(RadarError::Internal(format!(
                "process {pid} did not exit after SIGKILL"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("HUP").expect("hup"), Signal::HUP);
        assert_eq!(parse_signal("sigusr1").expect("usr1"), Signal::USR1);
        assert_eq!(parse_signal("15").expect("15"), Signal::TERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[tokio::test]
    async fn stop_escalates_to_kill() {
        // A child that ignores SIGTERM (an ignored signal stays ignored across exec).
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; exec sleep 1000"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("child says it is ready");
        let process = Process::open(child.id()).expect("open");
        process
            .stop(Duration::from_millis(300))
            .await
            .expect("stopped");
        let status = child.wait().expect("reaped");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}
