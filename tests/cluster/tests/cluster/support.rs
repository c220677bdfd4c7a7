//! Helpers for the tests: running kubectl, following a program's output line by line, a pod
//! with servers to forward to, the rendered agent manifests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ksync_test_cluster::{Container, TestCluster, Workload};

/// How long pods may take to start.
pub(crate) const START: Duration = Duration::from_secs(90);
/// How long agents (radar and Syncthing) may take to start.
pub(crate) const AGENTS: Duration = Duration::from_secs(120);
/// How long a single expected event may take.
pub(crate) const EVENT: Duration = Duration::from_secs(60);
/// The agents' Syncthing API key in tests.
pub(crate) const API_KEY: &str = "k5u1KjXHbUn4mTRw9cVZ2eQp";

/// Runs kubectl against the cluster; panics with its stderr unless it succeeds.
#[track_caller]
pub(crate) fn kubectl(cluster: &TestCluster, args: &[&str]) -> String {
    let out = cluster.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl against the cluster, expecting it to fail; returns its stderr.
#[track_caller]
pub(crate) fn kubectl_fails(cluster: &TestCluster, args: &[&str]) -> String {
    let out = cluster.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running program whose output lines are read as they come; killed (by pid) when
/// dropped.
pub(crate) struct Lines {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Starts `command` with its stdout piped.
    pub(crate) fn spawn(mut command: Command) -> Lines {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Finds a line matching `predicate` among those read so far, or waits for one.
    #[track_caller]
    pub(crate) fn expect_seen(
        &mut self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> String {
        if let Some(line) = self.seen.iter().find(|l| predicate(l)) {
            return line.clone();
        }
        self.expect(what, timeout, predicate)
    }

    /// Waits for a line matching `predicate`; panics with everything seen after `timeout`.
    #[track_caller]
    pub(crate) fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if predicate(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {what} within {timeout:?}; the output was:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The words of a line.
pub(crate) fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// ksync's agent manifests as `ksync init` applies them, as one YAML stream.
pub(crate) fn agent_manifests() -> String {
    let manifests = ksync::agent::render(&ksync::agent::AgentSettings {
        api_key: API_KEY.into(),
        ..ksync::agent::AgentSettings::default()
    })
    .expect("the agent manifests render");
    ksync::agent::to_yaml_stream(&manifests)
}

/// A one-node cluster running [`echo_workload`], once its pod is ready; with the pod's name.
pub(crate) async fn cluster_with_echo_pod() -> (TestCluster, String) {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster.add_workload(echo_workload()).await.expect("echo");
    let pods = cluster
        .wait_for_pods("default", "app=echo", 1, START)
        .await
        .expect("pod");
    let name = pods[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    (cluster, name)
}

/// A pod with two real servers: an echo server on 7000 (busybox `nc` running `cat`) and a
/// web server on 8080 (busybox `httpd`) serving "hello from the pod".
pub(crate) fn echo_workload() -> Workload {
    Workload::new("default", "echo")
        .container(
            Container::new("echo")
                .command(["nc", "-ll", "-p", "7000", "-e", "cat"])
                .port(7000)
                .ready_on_port(7000),
        )
        .container(
            Container::new("web")
                .shell("mkdir -p /www && echo 'hello from the pod' > /www/index.html && exec httpd -f -p 8080 -h /www")
                .port(8080)
                .ready_on_port(8080),
        )
}
