//! Reading the host's `/proc`: which processes belong to a container, their namespaces and
//! mounts. Radar runs in the host PID namespace, so this sees every container on the node,
//! whatever runtime started it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The host's proc filesystem (normally `/proc`).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

/// One mount of a process's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted, as the process sees it.
    pub mount_point: String,
    /// The filesystem type (`overlay`, `ext4`, `tmpfs`, …).
    pub fs_type: String,
}

impl ProcFs {
    /// The proc filesystem mounted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcFs { root: root.into() }
    }

    /// Where proc is mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `/proc/<pid>/root`: the process's view of its root filesystem, mounts included.
    pub fn root_of(&self, pid: u32) -> PathBuf {
        self.root.join(pid.to_string()).join("root")
    }

    /// True while the process exists.
    pub fn exists(&self, pid: u32) -> bool {
        self.root.join(pid.to_string()).exists()
    }

    fn pids(&self) -> io::Result<impl Iterator<Item = u32>> {
        Ok(fs::read_dir(&self.root)?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()))
    }

    /// The main process of the container with runtime id `id`: the processes whose cgroup
    /// is the container's (`…/<id>`, `…/docker-<id>.scope`, `…/cri-containerd-<id>.scope`,
    /// `…/crio-<id>.scope`), and of those the one that is pid 1 of its own PID namespace (or,
    /// failing that, the one whose parent is outside the container).
    pub fn main_pid_of(&self, id: &str) -> io::Result<Option<u32>> {
        let mut members = Vec::new();
        for pid in self.pids()? {
            let Ok(cgroups) = fs::read_to_string(self.root.join(pid.to_string()).join("cgroup"))
            else {
                continue;
            };
            if cgroups.lines().any(|line| cgroup_line_names(line, id)) {
                members.push(pid);
            }
        }
        let statuses: Vec<(u32, Status)> = members
            .iter()
            .filter_map(|pid| Some((*pid, self.status(*pid).ok()?)))
            .collect();
        if let Some((pid, _)) = statuses.iter().find(|(_, s)| s.ns_pid_is_one) {
            return Ok(Some(*pid));
        }
        Ok(statuses
            .iter()
            .filter(|(_, s)| !members.contains(&s.ppid))
            .map(|(pid, _)| *pid)
            .min())
    }

    /// A process whose command name is `comm` (e.g. `containerd`, `crio`), if any runs.
    pub fn find_command(&self, comm: &str) -> Option<u32> {
        self.pids().ok()?.find(|pid| {
            fs::read_to_string(self.root.join(pid.to_string()).join("comm"))
                .is_ok_and(|c| c.trim_end() == comm)
        })
    }

    /// The mounts of the process's mount namespace.
    pub fn mounts(&self, pid: u32) -> io::Result<Vec<Mount>> {
        let text = fs::read_to_string(self.root.join(pid.to_string()).join("mountinfo"))?;
        Ok(text.lines().filter_map(parse_mountinfo_line).collect())
    }

    fn status(&self, pid: u32) -> io::Result<Status> {
        let text = fs::read_to_string(self.root.join(pid.to_string()).join("status"))?;
        let mut status = Status {
            ppid: 0,
            ns_pid_is_one: false,
        };
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("PPid:") {
                status.ppid = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("NSpid:") {
                let ids: Vec<&str> = v.split_whitespace().collect();
                status.ns_pid_is_one = ids.len() > 1 && ids.last() == Some(&"1");
            }
        }
        Ok(status)
    }
}

struct Status {
    ppid: u32,
    ns_pid_is_one: bool,
}

/// True when a `/proc/<pid>/cgroup` line puts the process in container `id`'s cgroup.
fn cgroup_line_names(line: &str, id: &str) -> bool {
    // "hierarchy-id:controllers:path"
    let Some(path) = line.splitn(3, ':').nth(2) else {
        return false;
    };
    let Some(last) = path.trim_end_matches('/').rsplit('/').next() else {
        return false;
    };
    let last = last.strip_suffix(".scope").unwrap_or(last);
    if last.contains("conmon") {
        return false; // CRI-O's monitor process, not the container
    }
    last == id || last.ends_with(&format!("-{id}")) || last.ends_with(&format!(":{id}"))
}

/// Parses one line of `/proc/<pid>/mountinfo`.
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    // id parent major:minor root mount-point options [optional…] - fstype source super-options
    let fields: Vec<&str> = line.split(' ').collect();
    let mount_point = unescape_octal(fields.get(4)?);
    let dash = fields.iter().position(|f| *f == "-")?;
    let fs_type = fields.get(dash + 1)?.to_string();
    Some(Mount {
        mount_point,
        fs_type,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &s[i + 1..(i + 4).min(s.len())];
            if digits.len() == 3
                && let Ok(v) = u8::from_str_radix(digits, 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a9c0e";

    #[test]
    fn cgroup_paths_of_every_runtime() {
        for line in [
            "9:pids:/docker/4f2a9c0e",
            "0::/system.slice/docker-4f2a9c0e.scope",
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-4f2a9c0e.scope",
            "1:name=systemd:/kubepods/burstable/pod1/4f2a9c0e",
            "0::/kubepods.slice/kubepods-pod1.slice/crio-4f2a9c0e.scope",
            "0::/kubepods/pod1/cri-containerd:4f2a9c0e",
        ] {
            assert!(cgroup_line_names(line, ID), "{line}");
        }
        for line in [
            "0::/kubepods.slice/crio-conmon-4f2a9c0e.scope",
            "9:pids:/docker/4f2a9c0e1",
            "9:pids:/docker/4f2a9c0e/child",
            "0::/",
        ] {
            assert!(!cgroup_line_names(line, ID), "{line}");
        }
    }

    #[test]
    fn mountinfo_lines() {
        let line = r"736 712 0:150 / /data\040dir rw,relatime master:1 - ext4 /dev/vda rw";
        assert_eq!(
            parse_mountinfo_line(line),
            Some(Mount {
                mount_point: "/data dir".into(),
                fs_type: "ext4".into()
            })
        );
    }

    #[test]
    fn own_process_is_visible() {
        let proc = ProcFs::new("/proc");
        let me = std::process::id();
        assert!(proc.exists(me));
        assert!(!proc.mounts(me).expect("mounts").is_empty());
    }
}
