//! A container created directly in containerd (with `ctr`, no Docker involved) is resolved and
//! restarted through radar's non-Docker path: the host's /proc.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use radar_proto::v1::{ResolvePathRequest, RestartMethod, RestartRequest, Storage};

use crate::support::{RadarOptions, TestRadar, random_hex, run, test_image, try_run, wait_for};

const NAMESPACE: &str = "ksync-test";
const IMAGE_REF: &str = "docker.io/ksync-test/busybox:1";

/// containerd's socket: the system one, or the one Docker runs.
pub(crate) fn socket() -> &'static str {
    [
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
    ]
    .into_iter()
    .find(|s| Path::new(s).exists())
    .expect("no containerd socket at /run/containerd/containerd.sock or /var/run/docker/containerd/containerd.sock; the containerd test needs one")
}

fn ctr(args: &[&str]) -> String {
    let mut all = vec!["-a", socket(), "-n", NAMESPACE];
    all.extend_from_slice(args);
    run("ctr", &all)
}

fn image() {
    static IMPORTED: OnceLock<()> = OnceLock::new();
    IMPORTED.get_or_init(|| {
        test_image();
        if ctr(&["images", "ls", "-q"]).lines().any(|l| l == IMAGE_REF) {
            return;
        }
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {} | ctr -a {} -n {NAMESPACE} images import -",
                crate::support::TEST_IMAGE,
                socket()
            ))
            .status()
            .expect("docker save | ctr import");
        assert!(
            status.success(),
            "importing the test image into containerd failed"
        );
    });
}

/// A containerd container with a Kubernetes-style 64-hex id, removed when dropped.
struct CtrContainer {
    id: String,
}

impl CtrContainer {
    fn start(script: &str) -> CtrContainer {
        image();
        let id = random_hex(64);
        ctr(&[
            "run",
            "-d",
            "--label",
            crate::support::TEST_LABEL,
            IMAGE_REF,
            &id,
            "/bin/sh",
            "-c",
            script,
        ]);
        let container = CtrContainer { id };
        wait_for(
            "the containerd container to set up /app",
            Duration::from_secs(30),
            || container.exec(&["test", "-d", "/app"]).map(|_| ()),
        );
        container
    }

    fn exec(&self, args: &[&str]) -> Option<String> {
        let exec_id = format!("probe-{}", random_hex(8));
        let mut all = vec![
            "-a",
            socket(),
            "-n",
            NAMESPACE,
            "task",
            "exec",
            "--exec-id",
            &exec_id,
            &self.id,
        ];
        all.extend_from_slice(args);
        let (ok, out, _) = try_run("ctr", &all);
        ok.then_some(out)
    }

    fn task_status(&self) -> String {
        ctr(&["task", "ls"])
            .lines()
            .find(|l| l.starts_with(&self.id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        for args in [
            vec!["task", "kill", "-s", "KILL", self.id.as_str()],
            vec!["task", "rm", "-f", self.id.as_str()],
            vec!["containers", "rm", self.id.as_str()],
        ] {
            let mut all = vec!["-a", socket(), "-n", NAMESPACE];
            all.extend_from_slice(&args);
            let _ = Command::new("ctr").args(&all).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_container_without_docker() {
    let c = CtrContainer::start("mkdir -p /app && exec sleep 3600");
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let id = format!("containerd://{}", c.id);

    let reply = radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: id.clone(),
            path: "/app/site".into(),
            create: true,
        })
        .await
        .expect("resolves through /proc")
        .into_inner();
    assert!(reply.created);
    assert_eq!(reply.storage(), Storage::RootFilesystem);
    std::fs::write(Path::new(&reply.host_path).join("index.html"), "from radar").expect("write");
    assert_eq!(
        c.exec(&["cat", "/app/site/index.html"]).as_deref(),
        Some("from radar")
    );

    let restarted = radar
        .client
        .restart(RestartRequest {
            container_id: id.clone(),
        })
        .await
        .expect("restarts")
        .into_inner();
    assert_eq!(restarted.method(), RestartMethod::KillMainProcess);
    assert_eq!(restarted.old_pid, reply.pid);
    assert!(
        restarted.note.contains("must be synced again"),
        "{}",
        restarted.note
    );
    wait_for(
        "containerd to see the task stopped",
        Duration::from_secs(20),
        || (c.task_status() == "STOPPED").then_some(()),
    );
    let gone = radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: id,
            path: "/app".into(),
            create: false,
        })
        .await
        .expect_err("no process any more");
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
}
