//! `cargo bench --bench sync`: how fast a local edit lands on the other side, with ksync's
//! triggered scans and with plain Syncthing (`fsWatcherDelayS = 1`, the original ksync's
//! setting), plus initial syncs and the idle cost of the pair. Two real Syncthings on
//! loopback, as in the test suite. Prints figures; asserts nothing. See BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ksync::spec::Direction;
use ksync::syncthing::folder::wait_connected;
use ksync::syncthing::ignores::IgnoreSet;
use ksync::syncthing::trigger::scan_on_change;
use ksync::syncthing::{
    EventHub, FolderSpec, InstanceOptions, LocalSyncthing, Peer, SyncthingBinary, pair, share,
    wait_landed,
};
use ksync::watch::{DEFAULT_DEBOUNCE, FolderWatch};

const EDITS: usize = 40;

struct Setup {
    local: LocalSyncthing,
    remote: LocalSyncthing,
    local_events: EventHub,
    root: tempfile::TempDir,
}

impl Setup {
    fn local_peer(&self) -> Peer<'_> {
        Peer {
            client: self.local.client(),
            device_id: self.local.device_id(),
            name: "laptop",
        }
    }
    fn remote_peer(&self) -> Peer<'_> {
        Peer {
            client: self.remote.client(),
            device_id: self.remote.device_id(),
            name: "node",
        }
    }
    fn dirs(&self, id: &str) -> (PathBuf, PathBuf) {
        let local = self.root.path().join(id).join("local");
        let remote = self.root.path().join(id).join("remote");
        std::fs::create_dir_all(&local).expect("mkdir");
        std::fs::create_dir_all(&remote).expect("mkdir");
        (local, remote)
    }
    fn spec(&self, id: &str, local: &Path, remote: &Path) -> FolderSpec {
        FolderSpec {
            id: id.into(),
            label: id.into(),
            local_path: local.to_path_buf(),
            remote_path: remote.display().to_string(),
            direction: Direction::TwoWay,
            ignores: IgnoreSet::build(local, &[]).expect("ignores"),
            ignore_perms: false,
            remote_copy_ownership: false,
        }
    }
    async fn idle(&self, id: &str) {
        for client in [self.local.client(), self.remote.client()] {
            loop {
                let s = client.folder_status(id).await.expect("status");
                if s.state == "idle" && s.need_total_items == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn instance(home: &Path) -> LocalSyncthing {
    let binary = SyncthingBinary::find(
        std::env::var("KSYNC_SYNCTHING").ok().as_deref(),
        None,
        std::env::var("PATH").ok().as_deref(),
    )
    .expect("syncthing 1.19+ on PATH (apt-get install syncthing)");
    LocalSyncthing::start(InstanceOptions {
        binary,
        home: home.to_path_buf(),
        start_timeout: Duration::from_secs(60),
    })
    .await
    .expect("syncthing starts")
}

/// Waits (polling every 0.2 ms) until `path` holds `content`; the time it got there.
fn wait_file(path: &Path, content: &[u8], timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read(path).ok().as_deref() == Some(content) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[k.clamp(1, sorted.len()) - 1]
}

fn stats(name: &str, values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    let (p50, p95, max) = (
        percentile(values, 50.0),
        percentile(values, 95.0),
        values[values.len() - 1],
    );
    println!(
        "{name:<58} n={:<3} p50 {p50:>8.1} ms   p95 {p95:>8.1} ms   max {max:>8.1} ms",
        values.len()
    );
    (p50, p95, max)
}

/// A random pause between edits: at least 300 ms (Syncthing holds index updates for 250 ms
/// after each one it sends) plus up to one watcher delay, so edits fall at every phase of
/// Syncthing's 1 s watcher timer.
fn pause() -> Duration {
    Duration::from_millis(300 + rand::random_range(0..1000))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "ksync sync benchmark (two Syncthing {} processes on loopback)\n",
        std::process::Command::new("syncthing")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .unwrap_or("?")
                .to_string())
            .unwrap_or_default()
    );
    let root = tempfile::tempdir().expect("tempdir");
    let local = instance(&root.path().join("local-home")).await;
    let remote = instance(&root.path().join("remote-home")).await;
    let local_events = EventHub::start(local.client()).await.expect("events");
    let setup = Setup {
        local,
        remote,
        local_events,
        root,
    };
    pair(
        setup.local_peer(),
        setup.remote_peer(),
        &format!("tcp://127.0.0.1:{}", setup.remote.listen_port()),
    )
    .await
    .expect("pair");
    wait_connected(
        setup.local.client(),
        &setup.local_events,
        setup.remote.device_id(),
        Duration::from_secs(60),
    )
    .await
    .expect("connect");

    // (a) ksync: its watcher and triggered scans; Syncthing's watcher stays on as a fallback.
    let (a_local, a_remote) = setup.dirs("ksync");
    let spec = setup.spec("ksync", &a_local, &a_remote);
    share(setup.local_peer(), setup.remote_peer(), &spec)
        .await
        .expect("share");
    setup.idle("ksync").await;
    let watch =
        FolderWatch::start(&a_local, spec.ignores.clone(), DEFAULT_DEBOUNCE).expect("watch");
    let (tx, mut scanned) = tokio::sync::mpsc::channel(64);
    let _trigger = scan_on_change(watch, setup.local.client().clone(), "ksync".into(), tx);
    let mut ksync_ms = Vec::new();
    let mut completion_lag_ms = Vec::new();
    for i in 0..EDITS {
        tokio::time::sleep(pause()).await;
        while scanned.try_recv().is_ok() {}
        let content = format!("edit {i} {}\n", "x".repeat(80));
        let t0 = Instant::now();
        std::fs::write(a_local.join("probe.txt"), &content).expect("write");
        let target = a_remote.join("probe.txt");
        let bytes = content.clone().into_bytes();
        let landing = tokio::task::spawn_blocking(move || {
            wait_file(&target, &bytes, Duration::from_secs(30))
        });
        let batch = scanned.recv().await.expect("a batch");
        let landed = wait_landed(
            setup.local.client(),
            &setup.local_events,
            "ksync",
            setup.remote.device_id(),
            &batch,
            Duration::from_secs(30),
        )
        .await
        .map(|_| Instant::now());
        let t_file = landing.await.expect("join").expect("landed in time");
        ksync_ms.push((t_file - t0).as_secs_f64() * 1000.0);
        if let Ok(t_done) = landed {
            completion_lag_ms.push((t_done.max(t_file) - t_file).as_secs_f64() * 1000.0);
        }
    }

    // (b) plain Syncthing, watcher delay 1 s, no ksync watcher.
    let (b_local, b_remote) = setup.dirs("plain");
    share(
        setup.local_peer(),
        setup.remote_peer(),
        &setup.spec("plain", &b_local, &b_remote),
    )
    .await
    .expect("share");
    setup.idle("plain").await;
    let mut plain_ms = Vec::new();
    for i in 0..EDITS {
        tokio::time::sleep(pause()).await;
        let content = format!("edit {i} {}\n", "y".repeat(80));
        let t0 = Instant::now();
        std::fs::write(b_local.join("probe.txt"), &content).expect("write");
        let target = b_remote.join("probe.txt");
        let bytes = content.into_bytes();
        let t_file = tokio::task::spawn_blocking(move || {
            wait_file(&target, &bytes, Duration::from_secs(30))
        })
        .await
        .expect("join")
        .expect("landed in time");
        plain_ms.push((t_file - t0).as_secs_f64() * 1000.0);
    }

    println!("edit → identical file on the other side (small file, {EDITS} edits each)");
    let (a50, a95, _) = stats("(a) ksync: own watcher + triggered scan", &mut ksync_ms);
    let (b50, b95, _) = stats("(b) plain Syncthing, fsWatcherDelayS = 1", &mut plain_ms);
    println!(
        "{:<58} p50 {:>6.0}x      p95 {:>6.0}x",
        "ratio (b) / (a)",
        b50 / a50,
        b95 / a95
    );
    stats(
        "completion API: \"landed\" reported after the file is there",
        &mut completion_lag_ms,
    );

    // Initial syncs: a new share of 5,000 small files, and of 200 MB in 20 files.
    println!("\ninitial sync of a new share (until the receiver is idle with every file)");
    for (id, files, size) in [
        ("bulk5k", 5000usize, 1000usize),
        ("bulk200m", 20, 10 * 1024 * 1024),
    ] {
        let (l, r) = setup.dirs(id);
        for i in 0..files {
            let path = l.join(format!("d{}/e{}/f{i}.bin", i % 10, (i / 10) % 10));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let data: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
            std::fs::write(path, data).expect("write");
        }
        let t0 = Instant::now();
        share(
            setup.local_peer(),
            setup.remote_peer(),
            &setup.spec(id, &l, &r),
        )
        .await
        .expect("share");
        loop {
            let s = setup
                .remote
                .client()
                .folder_status(id)
                .await
                .expect("status");
            if s.local_files == files as u64 && s.need_total_items == 0 && s.state == "idle" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        let mb = (files * size) as f64 / 1e6;
        println!(
            "{:<58} {secs:>6.2} s   ({:.0} files/s, {:.0} MB/s)",
            format!("{files} files × {size} B ({mb:.0} MB)"),
            files as f64 / secs,
            mb / secs
        );
    }

    // Idle cost: CPU of both processes over 10 s with nothing to do.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = [
        setup.local.state().borrow().clone(),
        setup.remote.state().borrow().clone(),
    ];
    let pids: Vec<u32> = pids
        .iter()
        .filter_map(|s| match s {
            ksync::syncthing::instance::InstanceState::Running { pid } => Some(*pid),
            _ => None,
        })
        .collect();
    let before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let used: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - before;
    println!(
        "\nidle CPU of the pair over {:.0} s (4 folders shared)           {:.2} % of one core",
        t0.elapsed().as_secs_f64(),
        used / t0.elapsed().as_secs_f64() * 100.0
    );

    setup.local.stop().await.expect("stop");
    setup.remote.stop().await.expect("stop");
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
