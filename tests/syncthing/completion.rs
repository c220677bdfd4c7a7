//! The completion API resolves only once a change is really on the other side, and changes
//! are told apart by where they were made.

use std::time::Duration;

use ksync::spec::Direction;
use ksync::syncthing::changes::{Origin, next_change};
use ksync::syncthing::wait_landed;

use crate::support::{FOLDER, Pair, fingerprint, wait_async, write};

#[tokio::test(flavor = "multi_thread")]
async fn not_fooled_by_a_transfer_in_progress() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    pair.share(Direction::TwoWay, &[]).await;
    // Slow the receiver down so the transfer is visibly in progress for a while.
    pair.remote
        .client()
        .patch_options(&serde_json::json!({ "maxRecvKbps": 8000, "limitBandwidthInLan": true }))
        .await
        .expect("options");

    let big: Vec<u8> = (0..40 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 13) as u8)
        .collect();
    std::fs::write(local.join("big.bin"), &big).expect("write");
    pair.scan_local(&["big.bin"]).await;
    let waiter = {
        let client = pair.local.client().clone();
        let device = pair.remote.device_id().to_string();
        let events = &pair.local_events;
        async move {
            wait_landed(
                &client,
                events,
                FOLDER,
                &device,
                &["big.bin".to_string()],
                Duration::from_secs(120),
            )
            .await
        }
    };
    tokio::pin!(waiter);

    // While the receiver holds only a partial temporary file, the wait must not end.
    let partial = wait_async(
        "a partial transfer on the receiver",
        Duration::from_secs(60),
        || async {
            std::fs::read_dir(&remote)
                .ok()?
                .flatten()
                .find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .contains(".syncthing.big.bin")
                })
                .map(|e| e.path())
        },
    );
    tokio::select! {
        landed = &mut waiter => panic!("completion resolved before the transfer started: {landed:?}"),
        _ = partial => {}
    }
    assert!(
        !remote.join("big.bin").exists(),
        "only the temporary file exists yet"
    );
    let landed = waiter.await.expect("lands");
    // At the moment it resolves, the whole file is there.
    assert_eq!(
        fingerprint(&remote.join("big.bin")),
        fingerprint(&local.join("big.bin"))
    );
    assert!(landed.complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_told_apart_by_origin() {
    let pair = Pair::start().await;
    let (local, remote) = (pair.local_dir(), pair.remote_dir());
    pair.share(Direction::TwoWay, &[]).await;
    let mut changes = pair.local_events.subscribe_disk();

    write(&remote, "generated/cache.json", "{}");
    pair.scan_remote(&["generated"]).await;
    let change = wait_for_path(&mut changes, "generated/cache.json").await;
    assert_eq!(change.origin, Origin::Remote, "{change:?}");
    assert_eq!(change.action, "modified");

    write(&local, "src/app.js", "x");
    pair.scan_local(&["src"]).await;
    let change = wait_for_path(&mut changes, "src/app.js").await;
    assert_eq!(change.origin, Origin::Local, "{change:?}");

    std::fs::remove_file(remote.join("generated/cache.json")).expect("rm");
    pair.scan_remote(&["generated/cache.json"]).await;
    let change = wait_for_path(&mut changes, "generated/cache.json").await;
    assert_eq!(
        (change.origin, change.action.as_str()),
        (Origin::Remote, "deleted")
    );
}

async fn wait_for_path(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<ksync::syncthing::model::Event>>,
    path: &str,
) -> ksync::syncthing::changes::Change {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let change = next_change(rx, FOLDER).await.expect("events");
            if change.path == path {
                return change;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change of {path} reported"))
}
