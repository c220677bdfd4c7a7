//! The simulated DaemonSet controller and the agents: applying ksync's agent manifests gives
//! every node an agent pod whose ports reach a real radar and a real Syncthing for that node.

use k8s_openapi::api::core::v1::Pod;
use ksync_test_cluster::{
    Container, Node, RADAR_PORT, SYNCTHING_API_PORT, TestCluster, Volume, Workload,
};
use kube::Api;
use radar_proto::v1::radar_client::RadarClient;
use radar_proto::v1::{GetVersionRequest, ResolvePathRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance::kube_rs::client;
use crate::support::{AGENTS, API_KEY, START, agent_manifests};

const AGENT_SELECTOR: &str = "app.kubernetes.io/name=ksync-agent";

/// A radar client whose connections are port-forwards to `pod`'s radar port, as ksync
/// reaches radar.
async fn radar(pods: &Api<Pod>, pod: &str) -> RadarClient<tonic::transport::Channel> {
    let (pods, pod) = (pods.clone(), pod.to_string());
    let connector = tower::service_fn(move |_: http::Uri| {
        let (pods, pod) = (pods.clone(), pod.clone());
        async move {
            let mut forward = pods
                .portforward(&pod, &[RADAR_PORT])
                .await
                .map_err(std::io::Error::other)?;
            let stream = forward
                .take_stream(RADAR_PORT)
                .ok_or_else(|| std::io::Error::other("no stream"))?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://radar.invalid")
        .connect_with_connector(connector)
        .await
        .expect("radar answers through the port-forward");
    RadarClient::new(channel)
}

/// `GET path` on the agent's Syncthing REST API through a port-forward.
async fn syncthing_get(pods: &Api<Pod>, pod: &str, path: &str, key: &str) -> String {
    let mut forward = pods
        .portforward(pod, &[SYNCTHING_API_PORT])
        .await
        .expect("portforward");
    let mut stream = forward.take_stream(SYNCTHING_API_PORT).expect("stream");
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    response
}

fn agent_on<'a>(agents: &'a [serde_json::Value], node: &str) -> &'a str {
    agents
        .iter()
        .find(|p| p["spec"]["nodeName"] == node)
        .and_then(|p| p["metadata"]["name"].as_str())
        .unwrap_or_else(|| panic!("no agent pod on {node}"))
}

#[tokio::test]
async fn every_node_gets_a_real_radar_and_syncthing() {
    let cluster = TestCluster::with_nodes(&["node-a", "node-b"])
        .await
        .expect("cluster");
    cluster
        .add_workload(
            Workload::new("default", "app")
                .on_node("node-b")
                .volume(Volume::empty_dir("data"))
                .container(
                    Container::new("app")
                        .shell("echo synced > /data/file; exec sleep 2147483647")
                        .mount("data", "/data"),
                ),
        )
        .await
        .expect("workload");
    let app = cluster
        .wait_for_pods("default", "app=app", 1, START)
        .await
        .expect("app");
    let app_pod = app[0]["metadata"]["name"].as_str().expect("name");
    let app_container = cluster
        .container_id("default", app_pod, "app")
        .expect("container");

    cluster
        .apply_yaml(&agent_manifests(), "ksync")
        .await
        .expect("applied");
    cluster
        .wait_for_agents("ksync", "ksync-agent", AGENTS)
        .await
        .expect("agents ready");
    let agents = cluster.pods("ksync", AGENT_SELECTOR).expect("pods");
    assert_eq!(agents.len(), 2);
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("daemonset");
    assert_eq!(ds["status"]["desiredNumberScheduled"], 2);
    assert_eq!(ds["status"]["numberReady"], 2);
    for pod in &agents {
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .expect("statuses");
        let names: Vec<&str> = statuses.iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["radar", "syncthing"]);
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    }

    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "ksync");
    for node in ["node-a", "node-b"] {
        let pod = agent_on(&agents, node);
        let mut radar = radar(&pods, pod).await;
        let version = radar
            .get_version(GetVersionRequest {})
            .await
            .expect("GetVersion")
            .into_inner();
        assert_eq!(version.node_name, node);
        assert_eq!(version.runtime_name, "docker");

        // The Syncthing REST API, with the API key from the agent's Secret.
        let pong = syncthing_get(&pods, pod, "/rest/system/ping", API_KEY).await;
        assert!(pong.starts_with("HTTP/1.0 200"), "{pong}");
        assert!(pong.contains("pong"), "{pong}");
        let refused = syncthing_get(&pods, pod, "/rest/system/ping", "wrong-key").await;
        assert!(refused.starts_with("HTTP/1.0 403"), "{refused}");
    }

    // Each radar serves the containers of its own node only.
    let request = ResolvePathRequest {
        container_id: format!("docker://{app_container}"),
        path: "/data".into(),
        create: false,
    };
    let mut on_b = radar(&pods, agent_on(&agents, "node-b")).await;
    let resolved = on_b
        .resolve_path(request.clone())
        .await
        .expect("resolves on node-b")
        .into_inner();
    let file = std::path::Path::new(&resolved.host_path).join("file");
    let content = std::fs::read_to_string(file).expect("the node path is readable");
    assert_eq!(content, "synced\n");
    let mut on_a = radar(&pods, agent_on(&agents, "node-a")).await;
    on_a.resolve_path(request)
        .await
        .expect_err("node-a's radar does not serve node-b's containers");
}

#[tokio::test]
async fn agents_come_back_after_kills_and_follow_nodes_and_templates() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .apply_yaml(&agent_manifests(), "ksync")
        .await
        .expect("applied");
    cluster
        .wait_for_agents("ksync", "ksync-agent", AGENTS)
        .await
        .expect("agents ready");
    let agent = cluster.agent("node-a").expect("node-a's agent");
    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "ksync");

    // radar killed: the kubelet restarts it, on the same port.
    let pod = cluster.pods("ksync", AGENT_SELECTOR).expect("pods")[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    cluster.kill_radar("node-a").await.expect("kill");
    let restarted = |container: &'static str, count: u64| {
        let pod = pod.clone();
        move |c: &TestCluster| {
            let p = c.get("pods", "ksync", &pod)?;
            let s = p["status"]["containerStatuses"]
                .as_array()?
                .iter()
                .find(|s| s["name"] == container)?
                .clone();
            (s["restartCount"] == count && s["ready"] == true).then_some(s)
        }
    };
    let radar_status = cluster
        .wait_for("radar to restart", AGENTS, restarted("radar", 1))
        .await
        .expect("radar restarted");
    assert_eq!(radar_status["lastState"]["terminated"]["exitCode"], 137);
    let version = radar(&pods, &pod)
        .await
        .get_version(GetVersionRequest {})
        .await
        .expect("answers again");
    assert_eq!(version.into_inner().node_name, "node-a");

    // Syncthing killed (monitor and all): restarted with the same identity.
    let before = syncthing_get(&pods, &pod, "/rest/system/status", API_KEY).await;
    cluster.kill_syncthing("node-a").await.expect("kill");
    cluster
        .wait_for("Syncthing to restart", AGENTS, restarted("syncthing", 1))
        .await
        .expect("syncthing restarted");
    let after = syncthing_get(&pods, &pod, "/rest/system/status", API_KEY).await;
    let id = |s: &str| -> String {
        let body = s.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        v["myID"].as_str().unwrap_or_default().to_string()
    };
    assert!(!id(&before).is_empty(), "{before}");
    assert_eq!(id(&before), id(&after));

    // A new node gets an agent.
    cluster.add_node(Node::new("node-b")).await.expect("node");
    cluster
        .wait_for_agents("ksync", "ksync-agent", AGENTS)
        .await
        .expect("agents ready");
    assert_eq!(
        cluster.pods("ksync", AGENT_SELECTOR).expect("pods").len(),
        2
    );

    // A changed template replaces the pods; the node keeps its agent's addresses.
    let changed =
        agent_manifests().replace("\"--log-level\", \"info\"", "\"--log-level\", \"debug\"");
    assert_ne!(changed, agent_manifests());
    cluster
        .apply_yaml(&changed, "ksync")
        .await
        .expect("re-applied");
    cluster
        .wait_for_agents("ksync", "ksync-agent", AGENTS)
        .await
        .expect("rolled");
    let rolled = cluster.pods("ksync", AGENT_SELECTOR).expect("pods");
    assert_eq!(rolled.len(), 2);
    assert!(rolled.iter().all(|p| p["metadata"]["name"] != pod.as_str()));
    assert_eq!(cluster.agent("node-a").expect("agent").radar, agent.radar);

    // A node that goes takes its agent pod.
    cluster.remove_node("node-b").await.expect("removed");
    cluster
        .wait_for("node-b's agent to go", START, |c| {
            let pods = c.pods("ksync", AGENT_SELECTOR).ok()?;
            (pods.len() == 1 && pods[0]["spec"]["nodeName"] == "node-a").then_some(())
        })
        .await
        .expect("one agent left");
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("daemonset");
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1);
}
