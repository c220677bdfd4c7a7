//! Faults: an unreachable peer, a folder that disappears, a full disk. Each gives a clear
//! error or recovers, and no local file is lost.

use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::folder::check_health;
use ksync::syncthing::{SyncthingError, share, wait_landed};

use crate::support::{FOLDER, Pair, start, wait_async, wait_content, write};

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_peer_times_out_clearly_then_recovers() {
    let mut pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    pair.share(Direction::TwoWay, &[]).await;

    let remote_home = pair.remote.home().to_path_buf();
    let remote_id = pair.remote.device_id().to_string();
    let stand_in = tempfile::tempdir().expect("tempdir");
    let old = std::mem::replace(&mut pair.remote, start(stand_in.path()).await);
    old.stop().await.expect("stops");

    write(&local, "while-away.txt", "queued");
    pair.scan_local(&["while-away.txt"]).await;
    let err = wait_landed(
        pair.local.client(),
        &pair.local_events,
        FOLDER,
        &remote_id,
        &["while-away.txt".to_string()],
        Duration::from_secs(2),
    )
    .await
    .expect_err("the peer is gone");
    assert!(matches!(err, SyncthingError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("to land on device"), "{err}");

    // The peer comes back (same identity, new address): the queued change lands.
    let stand_in_instance = std::mem::replace(&mut pair.remote, start(&remote_home).await);
    stand_in_instance.stop().await.expect("stops");
    pair.remote_events = ksync::syncthing::EventHub::start(pair.remote.client())
        .await
        .expect("events");
    pair.connect().await;
    wait_landed(
        pair.local.client(),
        &pair.local_events,
        FOLDER,
        pair.remote.device_id(),
        &["while-away.txt".to_string()],
        Duration::from_secs(60),
    )
    .await
    .expect("lands after reconnecting");
    assert_eq!(
        std::fs::read_to_string(remote.join("while-away.txt")).expect("read"),
        "queued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_remote_folder_stops_instead_of_deleting() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    for name in ["a.txt", "b.txt", "sub/c.txt"] {
        write(&local, name, name);
    }
    let mut spec = pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("sub/c.txt"), "sub/c.txt").await;

    // The container's folder is gone (a restart without a volume).
    std::fs::remove_dir_all(&remote).expect("rm");
    let _ = pair.remote.client().scan(FOLDER, &[]).await;
    let err = wait_async(
        "the remote folder to report the loss",
        Duration::from_secs(60),
        || async {
            check_health(pair.remote.client(), FOLDER, "remote")
                .await
                .err()
        },
    )
    .await;
    let SyncthingError::Folder { side, reason, .. } = &err else {
        panic!("unexpected {err}")
    };
    assert_eq!(*side, "remote");
    assert!(reason.contains("missing"), "{reason}");
    // Nothing was deleted locally.
    for name in ["a.txt", "b.txt", "sub/c.txt"] {
        assert_eq!(
            std::fs::read_to_string(local.join(name)).expect("kept"),
            name
        );
    }

    // Recovery: the folder comes back (radar re-creates it) and is shared afresh.
    std::fs::create_dir_all(&remote).expect("mkdir");
    spec.id = format!("{FOLDER}-2");
    share(pair.local_peer(), pair.remote_peer(), &spec)
        .await
        .expect("shares again");
    wait_content(&remote.join("sub/c.txt"), "sub/c.txt").await;
    for name in ["a.txt", "b.txt", "sub/c.txt"] {
        assert_eq!(
            std::fs::read_to_string(local.join(name)).expect("kept"),
            name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_on_the_remote_is_reported_and_loses_nothing() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    // A 4 MiB filesystem for the container side.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&remote)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "the full-disk test mounts a small tmpfs (needs root)"
    );
    let _unmount = Unmount(remote.clone());
    pair.remote
        .client()
        .patch_options(&serde_json::json!({ "minHomeDiskFree": { "value": 0, "unit": "%" } }))
        .await
        .expect("options");

    write(&local, "small.txt", "fits");
    pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("small.txt"), "fits").await;

    let big = vec![7u8; 8 * 1024 * 1024];
    std::fs::write(local.join("big.bin"), &big).expect("write");
    pair.scan_local(&["big.bin"]).await;
    let health = wait_async(
        "the remote to report the failed pull",
        Duration::from_secs(90),
        || async {
            let h = check_health(pair.remote.client(), FOLDER, "remote")
                .await
                .ok()?;
            (!h.pull_errors.is_empty()).then_some(h)
        },
    )
    .await;
    assert_eq!(health.pull_errors[0].path, "big.bin");
    assert!(
        health.pull_errors[0].error.contains("space")
            || health.pull_errors[0].error.contains("disk"),
        "{:?}",
        health.pull_errors
    );
    // The local file is intact, and later small changes still land.
    assert_eq!(
        std::fs::read(local.join("big.bin")).expect("read").len(),
        big.len()
    );
    write(&local, "small.txt", "still fits");
    pair.scan_local(&["small.txt"]).await;
    wait_content(&remote.join("small.txt"), "still fits").await;
}

/// Unmounts the test's tmpfs.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_local_folder_deletes_nothing_in_the_container() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(&local, "main.go", "package main");
    pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("main.go"), "package main").await;

    // The user moves the project away.
    std::fs::rename(&local, pair.dir.path().join("moved")).expect("mv");
    let _ = pair.local.client().scan(FOLDER, &[]).await;
    let err = wait_async(
        "the local folder to report the loss",
        Duration::from_secs(60),
        || async {
            check_health(pair.local.client(), FOLDER, "local")
                .await
                .err()
        },
    )
    .await;
    assert!(
        matches!(err, SyncthingError::Folder { side: "local", .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("main.go")).expect("kept"),
        "package main"
    );
}
