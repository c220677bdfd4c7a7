//! Tunnels to a node's agent carry gRPC to a real radar and Syncthing's API, and recover
//! when every port-forward is dropped.

use std::time::Duration;

use ksync::cluster::radar::Radar;
use ksync::cluster::tunnel::{NodeTunnel, TunnelPool};
use radar_proto::v1::GetVersionRequest;

use crate::support::{client, cluster, ksync};

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_reach_radar_and_syncthing_and_recover() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    let kube = client(&cluster).await;

    for node in ["node-a", "node-b"] {
        let tunnel = NodeTunnel::open(&kube, "ksync", node)
            .await
            .expect("tunnel");
        let radar = Radar::connect(tunnel.radar, node)
            .await
            .expect("radar answers");
        assert_eq!(radar.version.node_name, node);
        assert_eq!(
            radar.version.protocol_version,
            radar_proto::PROTOCOL_VERSION
        );
    }

    let tunnel = NodeTunnel::open(&kube, "ksync", "node-a")
        .await
        .expect("tunnel");
    let mut radar = Radar::connect(tunnel.radar, "node-a")
        .await
        .expect("radar")
        .client;
    let key = cluster
        .get("secrets", "ksync", "ksync-agent")
        .expect("secret")["data"]["apikey"]
        .as_str()
        .map(|b64| String::from_utf8(base64_decode(b64)).expect("utf-8"))
        .expect("key");
    let ping = || {
        let url = format!("http://{}/rest/system/ping", tunnel.syncthing_api);
        let key = key.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("X-API-Key", key)
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .text()
                .await
                .ok()
        }
    };
    assert!(
        ping_text(&ping().await),
        "Syncthing's API answers through the tunnel"
    );

    // Every port-forward drops; new requests work again, through new forwards.
    let before = cluster
        .requests()
        .iter()
        .filter(|r| r.contains("/portforward"))
        .count();
    cluster.drop_port_forwards();
    let recovered = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if radar.get_version(GetVersionRequest {}).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "radar answers again through the tunnel");
    assert!(ping_text(&ping().await), "Syncthing's API answers again");
    let after = cluster
        .requests()
        .iter()
        .filter(|r| r.contains("/portforward"))
        .count();
    assert!(
        after > before,
        "new port-forwards were opened ({before} → {after})"
    );
}

fn ping_text(answer: &Option<String>) -> bool {
    answer.as_deref().is_some_and(|t| t.contains("pong"))
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tunnel_per_node_is_shared() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    let home = tempfile::tempdir().expect("tempdir");
    ksync(&cluster, home.path(), &["init"]).ok();
    let pool = TunnelPool::new(client(&cluster).await, "ksync").waiting(Duration::from_secs(3));
    let a1 = pool.get("node-a").await.expect("tunnel");
    let a2 = pool.get("node-a").await.expect("tunnel");
    let b = pool.get("node-b").await.expect("tunnel");
    assert!(
        std::sync::Arc::ptr_eq(&a1, &a2),
        "the same tunnel serves every user of a node"
    );
    assert_ne!(a1.radar, b.radar);
    let missing = pool.get("node-z").await.expect_err("no agent there");
    assert!(missing.to_string().contains("node-z"), "{missing}");
}
