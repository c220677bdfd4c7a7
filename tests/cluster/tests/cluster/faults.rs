//! The fault switches: API server restarts, dropped port-forwards, denied permissions, watch
//! timeouts and bookmarks.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use ksync_test_cluster::{Permission, TestCluster, Workload};
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance::kube_rs::client;
use crate::support::{EVENT, START, cluster_with_echo_pod};

#[tokio::test]
async fn the_api_server_restarts_with_its_state() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pods");
    let url = cluster.server_url();
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);
    let before = pods.list(&ListParams::default()).await.expect("list");

    // A watcher that keeps going through the outage (with back-off, as ksync's does).
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels("app=web"))
        .default_backoff()
        .applied_objects()
        .boxed();
    tokio::spawn(async move {
        while let Some(pod) = stream.next().await {
            if let Ok(pod) = pod
                && tx.send(pod.metadata.name.unwrap_or_default()).is_err()
            {
                return;
            }
        }
    });
    tokio::time::timeout(EVENT, seen.recv())
        .await
        .expect("the pod")
        .expect("name");

    cluster.stop_api_server().await.expect("stop");
    assert!(!cluster.api_server_running().await);
    let address = url.trim_start_matches("http://").to_string();
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "the port is closed"
    );
    let err = pods.list(&ListParams::default()).await.expect_err("down");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "a connection error, not an API error: {err}"
    );
    // The cluster itself keeps running: new pods start while the server is down.
    cluster.scale("default", "web", 2).await.expect("scale");
    let pods_now = cluster
        .wait_for_pods("default", "app=web", 2, START)
        .await
        .expect("pods");

    cluster.start_api_server().await.expect("start");
    assert_eq!(cluster.server_url(), url);
    let after = pods.list(&ListParams::default()).await.expect("list again");
    assert_eq!(after.items.len(), 2);
    let old = &before.items[0];
    let same = after
        .items
        .iter()
        .find(|p| p.metadata.name == old.metadata.name)
        .expect("same pod");
    assert_eq!(same.metadata.uid, old.metadata.uid);
    let new_pod = pods_now
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .find(|n| Some(*n) != old.metadata.name.as_deref())
        .expect("the new pod")
        .to_string();
    let found = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(name) = seen.recv().await {
            if name == new_pod {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "the watcher saw the pod made during the outage"
    );
}

#[tokio::test]
async fn port_forwards_can_be_dropped() {
    let (cluster, pod) = cluster_with_echo_pod().await;
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);
    let echo = |pods: Api<Pod>, pod: String| async move {
        let mut forward = pods.portforward(&pod, &[7000]).await.expect("portforward");
        let mut stream = forward.take_stream(7000).expect("stream");
        stream.write_all(b"one\n").await.expect("write");
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.expect("echo");
        assert_eq!(&buf, b"one\n");
        (forward, stream)
    };
    let (forward, mut stream) = echo(pods.clone(), pod.clone()).await;

    cluster.drop_port_forwards();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(EVENT, stream.read(&mut buf))
        .await
        .expect("the stream ends");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let ended = tokio::time::timeout(EVENT, forward.join())
        .await
        .expect("the session ends");
    assert!(
        ended.is_err(),
        "a dropped connection is an error to the client, not a clean close"
    );

    // New port-forwards work.
    let _ = echo(pods, pod).await;
}

async fn review(
    pods_client: &kube::Client,
    verb: &str,
    resource: &str,
    subresource: &str,
    ns: &str,
) -> bool {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(pods_client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: Some(subresource.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("review");
    answer.status.expect("status").allowed
}

#[tokio::test]
async fn permissions_can_be_denied() {
    let (cluster, pod) = cluster_with_echo_pod().await;
    let client = client(&cluster).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    assert!(review(&client, "list", "pods", "", "default").await);
    assert!(review(&client, "create", "pods", "portforward", "default").await);

    cluster.deny(Permission::new("list", "pods").in_namespace("default"));
    cluster.deny(Permission::new("create", "pods/portforward"));
    assert!(!review(&client, "list", "pods", "", "default").await);
    assert!(review(&client, "list", "pods", "", "other").await);
    assert!(review(&client, "get", "pods", "", "default").await);
    assert!(!review(&client, "create", "pods", "portforward", "default").await);

    match pods
        .list(&ListParams::default())
        .await
        .expect_err("forbidden")
    {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                status.message,
                "pods is forbidden: User \"ksync-test\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
            );
        }
        other => panic!("{other:?}"),
    }
    pods.get(&pod).await.expect("get is still allowed");
    let err = pods
        .portforward(&pod, &[7000])
        .await
        .err()
        .expect("port-forward forbidden");
    assert!(
        err.to_string().contains("403") || err.to_string().contains("forbidden"),
        "{err}"
    );

    cluster.allow_all();
    pods.list(&ListParams::default())
        .await
        .expect("allowed again");
    pods.portforward(&pod, &[7000])
        .await
        .expect("port-forward allowed again");
}

#[tokio::test]
async fn watches_time_out_and_carry_bookmarks() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pods");
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);
    let list = pods.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");

    // timeoutSeconds ends the stream, after a bookmark.
    let started = tokio::time::Instant::now();
    let events: Vec<WatchEvent<Pod>> = pods
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch")
        .try_collect()
        .await
        .expect("events");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(events.last(), Some(WatchEvent::Bookmark(b)) if b.metadata.resource_version == rv),
        "{events:?}"
    );

    // Bookmarks at the rate the test sets, carrying the latest version.
    cluster.set_bookmark_interval(Duration::from_millis(200));
    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    cluster.scale("default", "web", 2).await.expect("scale");
    let mut latest_added = None;
    let bookmarked = tokio::time::timeout(EVENT, async {
        while let Some(event) = stream.try_next().await.expect("event") {
            match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    latest_added = p.metadata.resource_version
                }
                WatchEvent::Bookmark(b)
                    if latest_added.as_deref().is_some_and(|rv| {
                        b.metadata.resource_version.parse::<u64>().ok() >= rv.parse().ok()
                    }) =>
                {
                    return b;
                }
                _ => {}
            }
        }
        panic!("the stream ended");
    })
    .await
    .expect("a bookmark after the changes");
    assert_eq!(bookmarked.types.kind, "Pod");
    drop(stream);

    // Streaming lists: the objects, then a bookmark marking the end of them.
    let events: Vec<WatchEvent<Pod>> = pods
        .watch(&WatchParams::streaming_lists().timeout(2), "")
        .await
        .expect("watch")
        .take_while(|e| futures::future::ready(!matches!(e, Ok(WatchEvent::Bookmark(b)) if b.metadata.annotations.contains_key("k8s.io/initial-events-end"))))
        .try_collect()
        .await
        .expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, WatchEvent::Added(_)))
            .count(),
        2,
        "{events:?}"
    );

    // An expired version: one ERROR event with 410 in a 200 stream, as the API server does.
    cluster.expire_resource_versions();
    let events: Vec<WatchEvent<Pod>> = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("the watch starts")
        .try_collect()
        .await
        .expect("events");
    assert!(
        matches!(&events[..], [WatchEvent::Error(e)] if e.code == 410),
        "{events:?}"
    );
}
