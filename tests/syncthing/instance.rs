//! The supervised local Syncthing: identity and index survive restarts, a crash is
//! recovered, and an instance left behind by a killed ksync is replaced.

use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::instance::InstanceState;

use crate::support::{FOLDER, Pair, start, wait_content, write};

#[tokio::test(flavor = "multi_thread")]
async fn restarts_keep_the_device_id_and_do_not_rehash() {
    let mut pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    for i in 0..200 {
        write(
            &local,
            &format!("src/{}/file{i}.txt", i % 10),
            &format!("content {i}"),
        );
    }
    pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("src/9/file199.txt"), "content 199").await;
    pair.settle().await;

    let before = pair
        .local
        .client()
        .folder_status(FOLDER)
        .await
        .expect("status");
    let local_id = pair.local.device_id().to_string();
    let key_file = pair.local.home().join("ksync-apikey");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).expect("key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the API key is private");

    // Restart the local side.
    let home = pair.local.home().to_path_buf();
    let old = std::mem::replace(&mut pair.local, start(&home).await);
    drop(old);
    assert_eq!(pair.local.device_id(), local_id);
    pair.local_events = ksync::syncthing::EventHub::start(pair.local.client())
        .await
        .expect("events");
    pair.connect().await;
    pair.settle().await;
    let after = pair
        .local
        .client()
        .folder_status(FOLDER)
        .await
        .expect("status");
    assert_eq!(
        after.sequence, before.sequence,
        "unchanged files were not indexed again"
    );
    assert_eq!(after.local_files, before.local_files);

    // Restart the remote side: same identity; the local side dials its new address.
    let remote_id = pair.remote.device_id().to_string();
    let remote_home = pair.remote.home().to_path_buf();
    let old = std::mem::replace(&mut pair.remote, start(&remote_home).await);
    old.stop().await.expect("stops");
    assert_eq!(pair.remote.device_id(), remote_id);
    pair.remote_events = ksync::syncthing::EventHub::start(pair.remote.client())
        .await
        .expect("events");
    pair.connect().await;
    write(&local, "after-restart.txt", "still syncing");
    pair.scan_local(&["after-restart.txt"]).await;
    wait_content(&remote.join("after-restart.txt"), "still syncing").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_syncthing_is_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let instance = start(dir.path()).await;
    let id = instance.device_id().to_string();
    let mut state = instance.state();
    let InstanceState::Running { pid } = state.borrow().clone() else {
        panic!("running")
    };
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let new_pid = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            state.changed().await.expect("supervisor alive");
            if let InstanceState::Running { pid: new } = state.borrow().clone()
                && new != pid
            {
                return new;
            }
        }
    })
    .await
    .expect("restarted in time");
    assert_ne!(new_pid, pid);
    assert_eq!(instance.client().status().await.expect("answers").my_id, id);
    instance.stop().await.expect("stops");
    assert!(
        !std::path::Path::new(&format!("/proc/{new_pid}")).exists(),
        "stopped for good"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_left_behind_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = start(dir.path()).await;
    let id = first.device_id().to_string();
    first.stop().await.expect("stops");

    // As if a ksync had been killed: Syncthing still runs on this home, and its pid file says so.
    let mut orphan = std::process::Command::new(&crate::support::binary().path)
        .arg("serve")
        .arg(format!("--home={}", dir.path().display()))
        .args(["--no-browser", "--no-restart", "--no-upgrade"])
        .env("STMONITORED", "yes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("orphan starts");
    std::fs::write(
        dir.path().join("ksync-syncthing.pid"),
        orphan.id().to_string(),
    )
    .expect("pid file");

    let second = start(dir.path()).await;
    assert_eq!(second.device_id(), id);
    // start() returns only once the orphan has exited.
    let status = orphan.try_wait().expect("wait");
    assert!(status.is_some(), "the orphan was stopped");
    second.stop().await.expect("stops");
}
