//! What radar refuses: paths that leave the container, bad paths, bad or unknown ids, and
//! containers of another node.

use radar_proto::v1::{ResolvePathRequest, RestartRequest};
use tonic::Code;

use crate::support::{Container, RadarOptions, TestRadar, random_hex};

async fn resolve(radar: &mut TestRadar, id: &str, path: &str) -> tonic::Status {
    radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: id.into(),
            path: path.into(),
            create: true,
        })
        .await
        .expect_err(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_leave_the_container() {
    let c = Container::start(
        &[],
        "ln -s / /app-root && mkdir -p /app && ln -s ../../etc /app/x && echo hi > /app/file && echo ready && exec sleep 3600",
    );
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let id = c.pod_status_id();
    for path in ["/app-root", "/app/x", "/app/x/ksync"] {
        let status = resolve(&mut radar, &id, path).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
    }
    assert!(
        !std::path::Path::new("/etc/ksync").exists(),
        "nothing was created on the node"
    );
    for path in ["app", "/app/../etc", "/app//x", "/"] {
        let status = resolve(&mut radar, &id, path).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
    }
    let status = resolve(&mut radar, &id, "/app/file").await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = resolve(&mut radar, &id, "/proc/ksync").await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_malformed_ids() {
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    for id in [
        format!("docker://{}", random_hex(64)),
        format!("containerd://{}", random_hex(64)),
    ] {
        let status = resolve(&mut radar, &id, "/app").await;
        assert_eq!(status.code(), Code::NotFound, "{id}: {status:?}");
    }
    for id in ["", "abc", "docker://", "rkt://abc", "docker://a/../b"] {
        let status = resolve(&mut radar, id, "/app").await;
        assert_eq!(status.code(), Code::InvalidArgument, "{id}: {status:?}");
        let status = radar
            .client
            .restart(RestartRequest {
                container_id: id.into(),
            })
            .await
            .expect_err(id);
        assert_eq!(status.code(), Code::InvalidArgument, "{id}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_of_another_node() {
    let other = Container::start(
        &["--label", "io.ksync.node=node-b"],
        "mkdir -p /app && echo ready && exec sleep 3600",
    );
    let unlabelled = Container::start(&[], "mkdir -p /app && echo ready && exec sleep 3600");
    let mine = Container::start(
        &["--label", "io.ksync.node=node-a"],
        "mkdir -p /app && echo ready && exec sleep 3600",
    );
    let mut radar = TestRadar::start(RadarOptions {
        node: "node-a".into(),
        node_label: Some("io.ksync.node".into()),
        ..RadarOptions::default()
    })
    .await;
    let status = resolve(&mut radar, &other.pod_status_id(), "/app").await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("runs on node node-b"),
        "{status:?}"
    );
    let status = radar
        .client
        .restart(RestartRequest {
            container_id: other.pod_status_id(),
        })
        .await
        .expect_err("other node");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = resolve(&mut radar, &unlabelled.pod_status_id(), "/app").await;
    assert_eq!(status.code(), Code::PermissionDenied);
    radar
        .client
        .resolve_path(ResolvePathRequest {
            container_id: mine.pod_status_id(),
            path: "/app".into(),
            create: false,
        })
        .await
        .expect("own node's container");
}
