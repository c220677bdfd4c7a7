//! ResolvePath on the root filesystem and on volumes: what radar returns is really the
//! container's file, both ways.

use radar_proto::v1::{ResolvePathRequest, Storage};

use crate::support::{Container, RadarOptions, TestRadar, Volume};

fn request(id: &str, path: &str, create: bool) -> ResolvePathRequest {
    ResolvePathRequest {
        container_id: id.into(),
        path: path.into(),
        create,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn root_filesystem_both_ways() {
    let c = Container::start(
        &[],
        "mkdir -p /app && echo inside > /app/inside && echo ready && exec sleep 3600",
    );
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let reply = radar
        .client
        .resolve_path(request(&c.pod_status_id(), "/app", false))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(reply.pid, c.pid());
    assert_eq!(reply.storage(), Storage::RootFilesystem);
    assert!(!reply.created);
    let host = std::path::Path::new(&reply.host_path);
    assert_eq!(
        std::fs::read_to_string(host.join("inside"))
            .expect("read")
            .trim(),
        "inside"
    );
    std::fs::write(host.join("from-node"), "written through radar's path\n").expect("write");
    assert_eq!(
        c.read("/app/from-node").as_deref(),
        Some("written through radar's path")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_folders_are_created_for_the_container_user() {
    let c = Container::start(
        &[],
        "mkdir -p /home/app && chown 1000:1000 /home/app && echo ready && exec sleep 3600",
    );
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let missing = radar
        .client
        .resolve_path(request(&c.pod_status_id(), "/home/app/src/web", false))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let reply = radar
        .client
        .resolve_path(request(&c.pod_status_id(), "/home/app/src/web", true))
        .await
        .expect("created")
        .into_inner();
    assert!(reply.created);
    assert_eq!(
        c.exec(&["stat", "-c", "%u:%g %a", "/home/app/src/web"]),
        "1000:1000 755"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn named_volume_and_bind_mount() {
    let volume = Volume::new();
    let bind = tempfile::tempdir().expect("tempdir");
    let c = Container::start(
        &[
            "-v",
            &format!("{}:/data", volume.name),
            "-v",
            &format!("{}:/bind", bind.path().display()),
        ],
        "echo ready && exec sleep 3600",
    );
    let mut radar = TestRadar::start(RadarOptions::default()).await;

    let reply = radar
        .client
        .resolve_path(request(&c.pod_status_id(), "/data/site", true))
        .await
        .expect("volume path")
        .into_inner();
    assert_eq!(reply.storage(), Storage::Volume);
    assert_eq!(reply.mount_point, "/data");
    std::fs::write(
        std::path::Path::new(&reply.host_path).join("index.html"),
        "hi",
    )
    .expect("write");
    assert_eq!(c.read("/data/site/index.html").as_deref(), Some("hi"));

    let reply = radar
        .client
        .resolve_path(request(&c.pod_status_id(), "/bind", false))
        .await
        .expect("bind mount")
        .into_inner();
    assert_eq!(reply.storage(), Storage::Volume);
    assert_eq!(reply.mount_point, "/bind");
    std::fs::write(std::path::Path::new(&reply.host_path).join("f"), "bound").expect("write");
    assert_eq!(
        std::fs::read_to_string(bind.path().join("f")).expect("read"),
        "bound"
    );
    c.exec(&["sh", "-c", "echo from-container > /bind/g"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(&reply.host_path).join("g")).expect("read"),
        "from-container\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_shared_by_two_containers() {
    let volume = Volume::new();
    let mount = format!("{}:/shared", volume.name);
    let writer = Container::start(&["-v", &mount], "echo ready && exec sleep 3600");
    let reader = Container::start(&["-v", &mount], "echo ready && exec sleep 3600");
    let mut radar = TestRadar::start(RadarOptions::default()).await;
    let reply = radar
        .client
        .resolve_path(request(&writer.pod_status_id(), "/shared/code", true))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(reply.storage(), Storage::Volume);
    std::fs::write(
        std::path::Path::new(&reply.host_path).join("main.py"),
        "print(1)",
    )
    .expect("write");
    assert_eq!(reply.pid, writer.pid());
    assert_eq!(
        reader.read("/shared/code/main.py").as_deref(),
        Some("print(1)")
    );
}
