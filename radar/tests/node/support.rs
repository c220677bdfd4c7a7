//! Docker containers, a radar server and a client for the tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use radar::runtime::{NodeIdentity, RuntimeConfig, Runtimes};
use radar::server::{RadarService, serve};
use radar::syncthing::SyncthingApi;
use radar_proto::v1::radar_client::RadarClient;
use tonic::transport::Channel;

/// The image every test container runs: busybox from Debian's busybox-static.
pub(crate) const TEST_IMAGE: &str = "ksync-test/busybox:1";
/// Label on everything the tests create.
pub(crate) const TEST_LABEL: &str = "io.ksync.test=radar";

/// Runs a command and returns its stdout; panics with its stderr on failure.
#[track_caller]
pub(crate) fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a command and returns whether it succeeded, and its stdout and stderr.
pub(crate) fn try_run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// Waits until `check` returns `Some`, polling; panics with `what` after `timeout`.
#[track_caller]
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Like [`wait_for`], for asynchronous checks.
pub(crate) async fn wait_for_async<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A random lowercase hex string of `len` characters.
pub(crate) fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

/// Builds the test image once per process (idempotent across processes).
pub(crate) fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if try_run("docker", &["image", "inspect", TEST_IMAGE]).0 {
            return;
        }
        let busybox = Path::new("/usr/bin/busybox");
        assert!(
            busybox.exists(),
            "the tests need Debian's busybox-static (/usr/bin/busybox); tests/run installs it"
        );
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        for dir in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
            std::fs::create_dir_all(r.join(dir)).expect("mkdir");
        }
        std::fs::copy(busybox, r.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "cat", "ls", "sleep", "echo", "mkdir", "ln", "rm", "touch", "printf", "id",
            "chown", "test", "true", "kill", "stat", "readlink",
        ] {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).expect("applet");
        }
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n")
            .expect("passwd");
        std::fs::write(r.join("etc/group"), "root:x:0:\napp:x:1000:\n").expect("group");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c . | docker import --change 'CMD [\"/bin/sh\"]' - {TEST_IMAGE} >/dev/null",
                r.display()
            ))
            .status()
            .expect("tar | docker import");
        assert!(status.success(), "building {TEST_IMAGE} failed");
    });
    TEST_IMAGE
}

/// A Docker container, removed (with its anonymous volumes) when dropped.
pub(crate) struct Container {
    pub(crate) id: String,
}

impl Container {
    /// Starts `script` under `sh -c` in the test image with extra `docker run` flags, and
    /// waits until the script has printed `ready`.
    pub(crate) fn start(flags: &[&str], script: &str) -> Container {
        let image = test_image();
        let mut args = vec!["run", "-d", "--label", TEST_LABEL];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[image, "/bin/sh", "-c", script]);
        let id = run("docker", &args);
        let container = Container { id };
        container.wait_ready();
        container
    }

    fn wait_ready(&self) {
        wait_for(
            "the container to print `ready`",
            Duration::from_secs(30),
            || {
                let (_, out, _) = try_run("docker", &["logs", &self.id]);
                out.lines().any(|l| l == "ready").then_some(())
            },
        );
    }

    /// `docker://<id>`, as in a pod status.
    pub(crate) fn pod_status_id(&self) -> String {
        format!("docker://{}", self.id)
    }

    /// The main pid Docker reports.
    pub(crate) fn pid(&self) -> u32 {
        run("docker", &["inspect", "-f", "{{.State.Pid}}", &self.id])
            .parse()
            .expect("pid")
    }

    /// Runs a command in the container and returns stdout.
    #[track_caller]
    pub(crate) fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    /// True when a command in the container succeeds.
    pub(crate) fn exec_ok(&self, args: &[&str]) -> bool {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(args);
        try_run("docker", &all).0
    }

    /// `cat` of a file in the container, or `None` when it cannot be read.
    pub(crate) fn read(&self, path: &str) -> Option<String> {
        let (ok, out, _) = try_run("docker", &["exec", &self.id, "cat", path]);
        ok.then_some(out)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.id])
            .output();
    }
}

/// A named Docker volume, removed when dropped.
pub(crate) struct Volume {
    pub(crate) name: String,
}

impl Volume {
    pub(crate) fn new() -> Volume {
        let name = format!("ksync-test-{}", random_hex(12));
        run(
            "docker",
            &["volume", "create", "--label", TEST_LABEL, &name],
        );
        Volume { name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.name])
            .output();
    }
}

/// Settings of an in-process radar.
pub(crate) struct RadarOptions {
    pub(crate) node: String,
    pub(crate) node_label: Option<String>,
    pub(crate) docker_socket: PathBuf,
    pub(crate) syncthing: SyncthingApi,
}

impl Default for RadarOptions {
    fn default() -> Self {
        RadarOptions {
            node: "node-a".into(),
            node_label: None,
            docker_socket: "/var/run/docker.sock".into(),
            syncthing: SyncthingApi {
                url: "http://127.0.0.1:9".into(),
                api_key: None,
            },
        }
    }
}

/// A radar served in-process on 127.0.0.1 and a client connected to it.
pub(crate) struct TestRadar {
    pub(crate) client: RadarClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestRadar {
    pub(crate) async fn start(options: RadarOptions) -> TestRadar {
        let runtimes = Runtimes::new(RuntimeConfig {
            proc_root: "/proc".into(),
            docker_socket: options.docker_socket,
            containerd_socket: "/nonexistent/containerd.sock".into(),
            stop_timeout: Duration::from_secs(1),
            node: NodeIdentity {
                name: options.node,
                label: options.node_label,
            },
        });
        let service = RadarService::new(runtimes, options.syncthing);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, service, async {
            let _ = stopped.await;
        }));
        let client = RadarClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        TestRadar {
            client,
            stop: Some(stop),
        }
    }
}

impl Drop for TestRadar {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; used for processes that take a port
/// number rather than a listener).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
