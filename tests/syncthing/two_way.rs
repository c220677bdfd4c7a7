//! Two-way sync: every kind of change travels both ways.

use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::wait_landed;

use crate::support::{FOLDER, Pair, fingerprint, wait_content, wait_gone, write};

#[tokio::test(flavor = "multi_thread")]
async fn pairing_from_scratch() {
    let pair = Pair::start().await;
    let on_remote = pair
        .remote
        .client()
        .device(pair.local.device_id())
        .await
        .expect("api")
        .expect("local device known to the remote");
    assert_eq!(on_remote.addresses, ["dynamic"], "the remote never dials");
    assert!(!on_remote.auto_accept_folders);
    let on_local = pair
        .local
        .client()
        .device(pair.remote.device_id())
        .await
        .expect("api")
        .expect("remote device known locally");
    assert_eq!(
        on_local.addresses,
        [format!("tcp://127.0.0.1:{}", pair.remote.listen_port())]
    );
    assert!(
        pair.remote
            .client()
            .connected(pair.local.device_id())
            .await
            .expect("api")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_changes_reach_the_remote() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(&local, "index.html", "v1");
    pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("index.html"), "v1").await;

    let land = |paths: &[&str]| {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let pair = &pair;
        async move {
            wait_landed(
                pair.local.client(),
                &pair.local_events,
                FOLDER,
                pair.remote.device_id(),
                &paths,
                Duration::from_secs(60),
            )
            .await
            .expect("lands")
        }
    };

    // modify
    write(&local, "index.html", "v2");
    pair.scan_local(&["index.html"]).await;
    assert!(land(&["index.html"]).await.complete);
    assert_eq!(
        std::fs::read_to_string(remote.join("index.html")).expect("read"),
        "v2"
    );

    // create, nested
    write(&local, "static/css/site/app.css", "body{}");
    pair.scan_local(&["static"]).await;
    land(&["static"]).await;
    assert_eq!(
        std::fs::read_to_string(remote.join("static/css/site/app.css")).expect("read"),
        "body{}"
    );

    // rename
    std::fs::rename(
        local.join("static/css/site/app.css"),
        local.join("static/css/site/main.css"),
    )
    .expect("rename");
    pair.scan_local(&["static/css/site/app.css", "static/css/site/main.css"])
        .await;
    land(&["static/css/site/app.css", "static/css/site/main.css"]).await;
    assert!(!remote.join("static/css/site/app.css").exists());
    assert_eq!(
        std::fs::read_to_string(remote.join("static/css/site/main.css")).expect("read"),
        "body{}"
    );

    // delete a tree
    std::fs::remove_dir_all(local.join("static")).expect("rm");
    pair.scan_local(&["static"]).await;
    land(&["static"]).await;
    assert!(!remote.join("static").exists());

    // a 50 MB file
    let big: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(local.join("big.bin"), &big).expect("write");
    pair.scan_local(&["big.bin"]).await;
    land(&["big.bin"]).await;
    assert_eq!(
        fingerprint(&remote.join("big.bin")),
        fingerprint(&local.join("big.bin"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_changes_reach_the_local_side() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    pair.share(Direction::TwoWay, &[]).await;

    write(&remote, "logs/app/out.txt", "from the container");
    pair.scan_remote(&["logs"]).await;
    wait_content(&local.join("logs/app/out.txt"), "from the container").await;

    write(&remote, "logs/app/out.txt", "again");
    pair.scan_remote(&["logs/app/out.txt"]).await;
    wait_content(&local.join("logs/app/out.txt"), "again").await;

    std::fs::rename(
        remote.join("logs/app/out.txt"),
        remote.join("logs/app/renamed.txt"),
    )
    .expect("rename");
    pair.scan_remote(&["logs/app"]).await;
    wait_content(&local.join("logs/app/renamed.txt"), "again").await;
    wait_gone(&local.join("logs/app/out.txt")).await;

    let big: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(40503) >> 8) as u8)
        .collect();
    std::fs::write(remote.join("dump.bin"), &big).expect("write");
    pair.scan_remote(&["dump.bin"]).await;
    crate::support::wait_async(
        "the 50 MB file to arrive whole",
        Duration::from_secs(120),
        || async {
            (fingerprint(&local.join("dump.bin")) == fingerprint(&remote.join("dump.bin")))
                .then_some(())
        },
    )
    .await;

    std::fs::remove_dir_all(remote.join("logs")).expect("rm");
    pair.scan_remote(&["logs"]).await;
    wait_gone(&local.join("logs")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watcher_triggers_scans_of_exactly_the_changed_paths() {
    use ksync::syncthing::trigger::scan_on_change;
    use ksync::watch::{DEFAULT_DEBOUNCE, FolderWatch};

    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    let spec = pair.share(Direction::TwoWay, &[]).await;
    // Syncthing's own watcher off on the local side: only ksync's watcher can make this work.
    let mut config = pair
        .local
        .client()
        .folder(FOLDER)
        .await
        .expect("api")
        .expect("folder");
    config.fs_watcher_enabled = false;
    pair.local.client().put_folder(&config).await.expect("put");
    pair.settle().await;

    let watch = FolderWatch::start(&local, spec.ignores.clone(), DEFAULT_DEBOUNCE).expect("watch");
    let (tx, mut scanned) = tokio::sync::mpsc::channel(16);
    let _task = scan_on_change(watch, pair.local.client().clone(), FOLDER.to_string(), tx);

    write(&local, "pages/about.html", "about");
    write(&local, ".git/index", "never synced");
    let mut batches = Vec::new();
    while !batches
        .iter()
        .flatten()
        .any(|p: &String| p.starts_with("pages"))
    {
        batches.push(scanned.recv().await.expect("a batch"));
    }
    assert!(
        !batches.iter().flatten().any(|p| p.starts_with(".git")),
        "{batches:?}"
    );
    wait_landed(
        pair.local.client(),
        &pair.local_events,
        FOLDER,
        pair.remote.device_id(),
        &batches.concat(),
        Duration::from_secs(60),
    )
    .await
    .expect("lands");
    assert_eq!(
        std::fs::read_to_string(remote.join("pages/about.html")).expect("read"),
        "about"
    );
    assert!(!remote.join(".git").exists());
}
