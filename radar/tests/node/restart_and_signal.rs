//! Restart (Docker keeps the writable layer) and Signal.

use std::time::Duration;

use radar_proto::v1::{ResolvePathRequest, RestartMethod, RestartRequest, SignalRequest};

use crate::support::{Container, RadarOptions, TestRadar, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn docker_restart_keeps_the_writable_layer() {
    let c = Container::start(&[], "mkdir -p /app && echo ready && exec sleep 3600");
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let id = c.pod_status_id();
    let before = radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: id.clone(),
            path: "/app".into(),
            create: false,
        })
        .await
        .expect("resolves")
        .into_inner();
    std::fs::write(
        std::path::Path::new(&before.host_path).join("synced.txt"),
        "v1",
    )
    .expect("write");

    let reply = radar
        .client
        .restart(RestartRequest {
            container_id: id.clone(),
        })
        .await
        .expect("restarts")
        .into_inner();
    assert_eq!(reply.method(), RestartMethod::Runtime);
    assert_eq!(reply.old_pid, before.pid);
    assert_ne!(reply.new_pid, reply.old_pid);
    assert_eq!(reply.new_pid, c.pid());
    assert_eq!(c.read("/app/synced.txt").as_deref(), Some("v1"));

    let after = radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: id,
            path: "/app".into(),
            create: false,
        })
        .await
        .expect("resolves again")
        .into_inner();
    assert_eq!(
        after.pid, reply.new_pid,
        "the new pid tells callers the container restarted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_reaches_the_main_process() {
    let c = Container::start(
        &[],
        "trap 'echo HUP >> /tmp/signals' HUP; trap 'echo USR1 >> /tmp/signals' USR1; echo ready; while :; do sleep 3600 & wait $!; done",
    );
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    for signal in ["HUP", "SIGUSR1"] {
        let reply = radar
            .client
            .signal(SignalRequest {
                container_id: c.pod_status_id(),
                signal: signal.into(),
            })
            .await
            .expect("signalled")
            .into_inner();
        assert_eq!(reply.pid, c.pid());
    }
    wait_for(
        "both signals to be recorded",
        Duration::from_secs(10),
        || {
            let got = c.read("/tmp/signals")?;
            (got.contains("HUP") && got.contains("USR1")).then_some(())
        },
    );
    let bad = radar
        .client
        .signal(SignalRequest {
            container_id: c.pod_status_id(),
            signal: "SIGNOPE".into(),
        })
        .await
        .expect_err("unknown signal");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
