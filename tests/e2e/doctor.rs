//! `ksync doctor` passes on a healthy cluster, and names the failing check and its fix for:
//! no agent, an agent not ready on one node, a missing permission, a radar of another
//! protocol version.

use std::net::SocketAddr;
use std::time::Duration;

use ksync_test_cluster::{Permission, TestCluster};
use radar_proto::v1::radar_server::{Radar, RadarServer};
use radar_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::support::{Run, cluster, ksync};

fn doctor(cluster: &TestCluster, home: &std::path::Path) -> Run {
    ksync(cluster, home, &["doctor"])
}

/// The line of check `name`, and the fix line after it.
fn check<'a>(run: &'a Run, name: &str) -> (&'a str, Option<&'a str>) {
    let mut lines = run.stdout.lines();
    let line = lines
        .by_ref()
        .find(|l| l.chars().skip(2).collect::<String>().starts_with(name))
        .unwrap_or_else(|| panic!("no check {name} in:\n{}", run.stdout));
    let fix = lines.next().filter(|l| l.trim_start().starts_with("fix:"));
    (line, fix)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_cluster_passes() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    let run = doctor(&cluster, home.path());
    let out = run.ok();
    for name in [
        "kubeconfig",
        "API server",
        "permissions",
        "agent",
        "radar",
        "node runtime",
        "local Syncthing",
    ] {
        let (line, fix) = check(&run, name);
        assert!(line.starts_with('✓'), "{line}\n{out}");
        assert!(fix.is_none());
    }
    assert!(check(&run, "agent").0.contains("ready on 2 of 2"));
    assert!(check(&run, "node runtime").0.contains("docker"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_agent() {
    let cluster = cluster(&["node-a"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    let run = doctor(&cluster, home.path());
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    let (line, fix) = check(&run, "agent");
    assert!(
        line.starts_with('✗') && line.contains("no agent DaemonSet"),
        "{line}"
    );
    assert!(fix.expect("a fix").contains("ksync init"));
    assert!(check(&run, "radar").0.starts_with('-'), "skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_not_ready_on_one_node() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    cluster.hold_agent_down("node-b").await.expect("hold");
    cluster
        .wait_for(
            "node-b's agent to be unready",
            Duration::from_secs(60),
            |c| {
                c.pods("ksync", "app.kubernetes.io/name=ksync-agent")
                    .ok()?
                    .iter()
                    .any(|p| p["spec"]["nodeName"] == "node-b" && !ksync_test_cluster::pod_ready(p))
                    .then_some(())
            },
        )
        .await
        .expect("unready");
    let run = doctor(&cluster, home.path());
    assert_eq!(run.code, 5);
    let (line, fix) = check(&run, "agent");
    assert!(
        line.starts_with('✗') && line.contains("not ready on node-b"),
        "{line}"
    );
    assert!(
        fix.expect("a fix")
            .contains("kubectl -n ksync describe pod")
    );
    cluster.release_agent("node-b").await.expect("release");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_permission() {
    let cluster = cluster(&["node-a"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    cluster.deny(Permission::new("create", "pods/portforward"));
    let run = doctor(&cluster, home.path());
    assert_eq!(run.code, 5);
    let (line, fix) = check(&run, "permissions");
    assert!(
        line.starts_with('✗') && line.contains("create pods/portforward in namespace ksync"),
        "{line}"
    );
    assert!(fix.expect("a fix").contains("rolebinding"));
}

/// A radar that speaks another protocol version.
struct OldRadar;

#[tonic::async_trait]
impl Radar for OldRadar {
    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            radar_version: "0.0.9".into(),
            protocol_version: 99,
            node_name: "node-a".into(),
            runtime_name: "docker".into(),
            runtime_version: String::new(),
            git_commit: String::new(),
        }))
    }
    async fn resolve_path(
        &self,
        _: Request<ResolvePathRequest>,
    ) -> Result<Response<ResolvePathResponse>, Status> {
        Err(Status::unimplemented("old radar"))
    }
    async fn restart(
        &self,
        _: Request<RestartRequest>,
    ) -> Result<Response<RestartResponse>, Status> {
        Err(Status::unimplemented("old radar"))
    }
    async fn signal(&self, _: Request<SignalRequest>) -> Result<Response<SignalResponse>, Status> {
        Err(Status::unimplemented("old radar"))
    }
    async fn restart_syncthing(
        &self,
        _: Request<RestartSyncthingRequest>,
    ) -> Result<Response<RestartSyncthingResponse>, Status> {
        Err(Status::unimplemented("old radar"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn radar_of_another_protocol() {
    let cluster = cluster(&["node-a"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RadarServer::new(OldRadar))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    cluster
        .redirect_agent_port("node-a", 40321, addr)
        .expect("redirect");
    let run = doctor(&cluster, home.path());
    assert_eq!(run.code, 5, "{}", run.stdout);
    let (line, fix) = check(&run, "radar");
    assert!(
        line.starts_with('✗') && line.contains("protocol v99"),
        "{line}"
    );
    assert!(fix.expect("a fix").contains("ksync init --upgrade"));
}
