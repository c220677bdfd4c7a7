//! Read-only modes hold their direction and never delete on the protected side; conflicts
//! keep both versions; ignores hold both ways.

use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::folder::conflicts;
use ksync::syncthing::wait_landed;

use crate::support::{FOLDER, Pair, wait_content, write};

#[tokio::test(flavor = "multi_thread")]
async fn local_read_only_never_touches_local_files() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(&local, "app.py", "print('v1')");
    write(&local, "keep.txt", "mine");
    let spec = pair.share(Direction::LocalReadOnly, &[]).await;
    wait_content(&remote.join("app.py"), "print('v1')").await;
    wait_content(&remote.join("keep.txt"), "mine").await;

    // The container changes, adds and deletes files: nothing comes back.
    write(&remote, "app.py", "print('patched in the container')");
    write(&remote, "cache.db", "generated");
    std::fs::remove_file(remote.join("keep.txt")).expect("rm");
    pair.scan_remote(&[]).await;

    // A local change still lands, and its landing is reported although the container
    // keeps its own edits.
    write(&local, "new.py", "print('new')");
    pair.scan_local(&["new.py"]).await;
    let landed = wait_landed(
        pair.local.client(),
        &pair.local_events,
        FOLDER,
        pair.remote.device_id(),
        &["new.py".to_string()],
        Duration::from_secs(60),
    )
    .await
    .expect("the local change lands");
    assert_eq!(
        std::fs::read_to_string(remote.join("new.py")).expect("read"),
        "print('new')"
    );
    assert!(!landed.complete, "the container still differs: {landed:?}");

    pair.settle().await;
    assert_eq!(
        std::fs::read_to_string(local.join("app.py")).expect("read"),
        "print('v1')"
    );
    assert_eq!(
        std::fs::read_to_string(local.join("keep.txt")).expect("read"),
        "mine"
    );
    assert!(!local.join("cache.db").exists());
    let local_status = pair
        .local
        .client()
        .folder_status(FOLDER)
        .await
        .expect("status");
    assert_eq!(
        local_status.need_total_items, 0,
        "the send-only side is never out of sync"
    );

    // Editing the file again locally puts the local version back in the container; the
    // container's edit is kept as a conflict copy.
    write(&local, "app.py", "print('v2')");
    pair.scan_local(&["app.py"]).await;
    wait_content(&remote.join("app.py"), "print('v2')").await;
    assert_eq!(
        conflicts(&remote, &spec.ignores).len(),
        1,
        "the container's edit is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_read_only_never_touches_container_files() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(&remote, "report.csv", "a,b");
    write(&remote, "data/keep.bin", "container data");
    pair.share(Direction::RemoteReadOnly, &[]).await;
    wait_content(&local.join("report.csv"), "a,b").await;

    // Local edits, additions and deletions stay local.
    write(&local, "report.csv", "edited on the laptop");
    write(&local, "notes.txt", "local only");
    std::fs::remove_dir_all(local.join("data")).expect("rm");
    pair.scan_local(&[]).await;

    // Container changes still arrive.
    write(&remote, "later.csv", "c,d");
    pair.scan_remote(&["later.csv"]).await;
    wait_content(&local.join("later.csv"), "c,d").await;

    pair.settle().await;
    assert_eq!(
        std::fs::read_to_string(remote.join("report.csv")).expect("read"),
        "a,b"
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("data/keep.bin")).expect("read"),
        "container data"
    );
    assert!(!remote.join("notes.txt").exists());
    let remote_status = pair
        .remote
        .client()
        .folder_status(FOLDER)
        .await
        .expect("status");
    assert_eq!(
        remote_status.need_total_items, 0,
        "the send-only side is never out of sync"
    );
    // The laptop's edit is still there: nothing overwrote it.
    assert_eq!(
        std::fs::read_to_string(local.join("report.csv")).expect("read"),
        "edited on the laptop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_keeps_both_versions() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(&local, "config.yaml", "base");
    let spec = pair.share(Direction::TwoWay, &[]).await;
    wait_content(&remote.join("config.yaml"), "base").await;

    // Both sides edit before either side scans.
    write(&local, "config.yaml", "laptop edit");
    write(&remote, "config.yaml", "container edit");
    pair.scan_remote(&["config.yaml"]).await;
    pair.scan_local(&["config.yaml"]).await;

    let both = crate::support::wait_async(
        "a conflict copy on both sides",
        Duration::from_secs(60),
        || async {
            let l = conflicts(&local, &spec.ignores);
            let r = conflicts(&remote, &spec.ignores);
            (l.len() == 1 && r.len() == 1).then_some(l)
        },
    )
    .await;
    pair.settle().await;
    let winner = std::fs::read_to_string(local.join("config.yaml")).expect("read");
    let loser = std::fs::read_to_string(local.join(&both[0])).expect("read");
    let mut versions = [winner.clone(), loser];
    versions.sort();
    assert_eq!(
        versions,
        ["container edit", "laptop edit"],
        "neither edit is lost"
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("config.yaml")).expect("read"),
        winner
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ignores_hold_both_ways() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    write(
        &local,
        ".ksyncignore",
        "# local build output\ntarget/\n*.log\n",
    );
    write(&local, ".stignore", "// my own pattern\nsecret.env\n");
    write(&local, ".git/HEAD", "ref: refs/heads/main");
    write(&local, "target/debug/app", "binary");
    write(&local, "debug.log", "noise");
    write(&local, "secret.env", "TOKEN=1");
    write(&local, "node_modules/x/index.js", "module");
    write(&local, "src/main.rs", "fn main() {}");
    pair.share(Direction::TwoWay, &["node_modules"]).await;
    wait_content(&remote.join("src/main.rs"), "fn main() {}").await;

    write(
        &remote,
        "node_modules/y/index.js",
        "installed in the container",
    );
    write(&remote, "server.log", "container log");
    write(&remote, "src/lib.rs", "// from the container");
    pair.scan_remote(&[]).await;
    wait_content(&local.join("src/lib.rs"), "// from the container").await;
    pair.settle().await;

    for ignored in [
        ".git/HEAD",
        "target/debug/app",
        "debug.log",
        "secret.env",
        "node_modules/x/index.js",
    ] {
        assert!(
            !remote.join(ignored).exists(),
            "{ignored} must not reach the container"
        );
    }
    for ignored in ["node_modules/y/index.js", "server.log"] {
        assert!(
            !local.join(ignored).exists(),
            "{ignored} must not reach the laptop"
        );
    }
    let stignore = std::fs::read_to_string(local.join(".stignore")).expect("read");
    assert!(
        stignore.starts_with("// my own pattern\nsecret.env\n"),
        "the user's patterns are kept: {stignore}"
    );
    for client in [pair.local.client(), pair.remote.client()] {
        let patterns = client.ignores(FOLDER).await.expect("ignores");
        assert!(
            patterns.contains(&"node_modules".to_string())
                && patterns.contains(&"target".to_string()),
            "{patterns:?}"
        );
    }
}
