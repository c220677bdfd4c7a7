//! The sandbox every integration test runs `ksync` in.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private HOME (so `~/.ksync`) and project directory, removed when dropped.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

/// What a `ksync` run printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "ksync failed:\n{}{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with `code` and returns stderr.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\n{}{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).expect("stdout is JSON")
    }
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["home", "project"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let cwd = dir.path().join("project");
        Sandbox {
            dir,
            env: Vec::new(),
            cwd,
        }
    }

    /// The sandbox root (stands for `[SANDBOX]` in snapshots).
    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The project directory, where `ksync` runs unless told otherwise.
    pub(crate) fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    /// The user file `~/.ksync/ksync.yaml` (HOME is the sandbox's `home`).
    pub(crate) fn user_file(&self) -> PathBuf {
        self.dir.path().join("home/.ksync/ksync.yaml")
    }

    /// Writes `text` to `path` (relative to the sandbox root), creating directories.
    pub(crate) fn write(&self, path: &str, text: &str) -> PathBuf {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(&full, text).expect("write");
        full
    }

    /// Creates a directory (relative to the sandbox root).
    pub(crate) fn mkdir(&self, path: &str) -> PathBuf {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(&full).expect("mkdir");
        full
    }

    /// Reads a file (relative to the sandbox root).
    pub(crate) fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(path)).expect("read")
    }

    /// Sets an environment variable for later runs.
    pub(crate) fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs later commands in `dir` (relative to the sandbox root).
    pub(crate) fn cd(&mut self, dir: &str) -> &mut Self {
        self.cwd = self.mkdir(dir);
        self
    }

    /// Runs `ksync ARGS` with a clean environment.
    pub(crate) fn ksync(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksync"));
        cmd.args(args).current_dir(&self.cwd).env_clear();
        for key in ["PATH", "LANG", "TERM"] {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        cmd.env("HOME", self.dir.path().join("home"))
            .env("USER", "dev")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env("GIT_CEILING_DIRECTORIES", self.dir.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("ksync runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `text` with the sandbox path replaced by `[SANDBOX]`, for snapshots.
    pub(crate) fn redact(&self, text: &str) -> String {
        let root = self.dir.path().display().to_string();
        text.replace(&root, "[SANDBOX]")
    }
}

/// The `specs` array of `ksync config -o json`, keyed by name.
pub(crate) fn spec<'a>(config: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    config["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no spec {name} in {config:#}"))
}
