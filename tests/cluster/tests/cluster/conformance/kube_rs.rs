//! kube-rs (the client ksync uses) against the test cluster: typed objects, discovery,
//! `runtime::watcher` through stream timeouts and a `410 Gone`, `Patch::Apply`, and
//! port-forwarding.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use ksync_test_cluster::{TestCluster, Workload};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{EVENT, START, agent_manifests, cluster_with_echo_pod};

/// A kube client from the cluster's kubeconfig, as ksync builds one.
pub(crate) async fn client(cluster: &TestCluster) -> Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn typed_objects_and_discovery() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pods");
    let client = client(&cluster).await;

    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for (group, kind) in [
        ("", "Pod"),
        ("apps", "DaemonSet"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    ] {
        let found = discovery.groups().any(|g| {
            g.name() == group
                && g.recommended_resources()
                    .iter()
                    .any(|(r, _)| r.kind == kind)
        });
        assert!(found, "discovery lists {group}/{kind}");
    }

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    let pod = &list.items[0];
    let status = pod.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let container = &status.container_statuses.as_ref().expect("containers")[0];
    assert!(container.ready);
    assert!(
        container
            .container_id
            .as_deref()
            .expect("id")
            .starts_with("docker://")
    );
    let err = pods.get("nope").await.expect_err("missing");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
            assert_eq!(status.message, "pods \"nope\" not found");
        }
        other => panic!("{other:?}"),
    }
}

/// Collects a watcher's events into a channel, so the test can wait for each.
fn watch_pods(
    client: Client,
    labels: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<watcher::Event<Pod>, watcher::Error>> {
    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut stream = watcher(pods, watcher::Config::default().labels(labels)).boxed();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next_matching(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Result<watcher::Event<Pod>, watcher::Error>>,
    what: &str,
    predicate: impl Fn(&Result<watcher::Event<Pod>, watcher::Error>) -> bool,
) {
    let found = tokio::time::timeout(EVENT, async {
        while let Some(event) = events.recv().await {
            if predicate(&event) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the watcher did not yield {what}");
}

fn pod_named(event: &Result<watcher::Event<Pod>, watcher::Error>, name: &str) -> bool {
    matches!(event, Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) if p.metadata.name.as_deref() == Some(name))
}

#[tokio::test]
async fn watcher_survives_stream_timeouts_and_gone() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    let first = cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pods");
    let first = first[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    // Every watch stream ends after a second, whatever timeoutSeconds kube-rs asks for.
    cluster.cap_watch_timeout(Some(Duration::from_secs(1)));
    let mut events = watch_pods(client(&cluster).await, "app=web");
    next_matching(&mut events, "the existing pod", |e| pod_named(e, &first)).await;
    next_matching(&mut events, "the end of the initial list", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;

    // Wait until kube-rs has had to watch again after a stream ended.
    let watches = |c: &TestCluster| {
        c.requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count()
    };
    let deadline = tokio::time::Instant::now() + EVENT;
    while watches(&cluster) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kube-rs did not watch again: {:?}",
            cluster.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rewatch = cluster
        .requests()
        .into_iter()
        .filter(|r| r.contains("watch=true"))
        .nth(1)
        .expect("second watch");
    assert!(rewatch.contains("resourceVersion="), "{rewatch}");
    assert!(rewatch.contains("allowWatchBookmarks=true"), "{rewatch}");
    cluster.scale("default", "web", 2).await.expect("scale");
    let second = cluster
        .wait_for_pods("default", "app=web", 2, START)
        .await
        .expect("pods");
    let second = second
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .find(|n| *n != first)
        .expect("the new pod")
        .to_string();
    next_matching(&mut events, "the new pod after re-watching", |e| {
        pod_named(e, &second)
    })
    .await;

    // 410: the history is gone; kube-rs is told so on its next watch, and lists again.
    cluster.cap_watch_timeout(None);
    cluster.expire_resource_versions();
    next_matching(&mut events, "a 410 Gone", |e| {
        matches!(e, Err(watcher::Error::WatchError(status)) if status.code == 410 && status.reason == "Expired")
    })
    .await;
    next_matching(&mut events, "a new list", |e| {
        matches!(e, Ok(watcher::Event::Init))
    })
    .await;
    next_matching(&mut events, "the new list's end", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    cluster
        .delete_pod("default", &second)
        .await
        .expect("delete");
    next_matching(&mut events, "the deletion", |e| {
        matches!(e, Ok(watcher::Event::Delete(p)) if p.metadata.name.as_deref() == Some(second.as_str()))
    })
    .await;
}

#[tokio::test]
async fn patch_apply_the_agent_manifests() {
    let cluster = TestCluster::start().await.expect("cluster");
    let client = client(&cluster).await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let apply = PatchParams::apply("ksync").force();
    let mut applied = Vec::new();
    for doc in agent_manifests().split("\n---\n") {
        let object: DynamicObject = serde_saphyr_from_str(doc);
        let gvk = kube::api::GroupVersionKind::try_from(object.types.as_ref().expect("types"))
            .expect("gvk");
        let (resource, caps) = discovery.resolve_gvk(&gvk).expect("served");
        let name = object.metadata.name.clone().expect("name");
        let api: Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), "ksync", &resource)
            }
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let result = api
            .patch(&name, &apply, &Patch::Apply(&object))
            .await
            .expect("applied");
        applied.push((gvk.kind.clone(), result.metadata.resource_version.clone()));
    }
    let kinds: Vec<&str> = applied.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "Role",
            "Secret",
            "DaemonSet"
        ]
    );

    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "ksync");
    let ds = daemonsets
        .get("ksync-agent")
        .await
        .expect("typed DaemonSet");
    let managed = ds.metadata.managed_fields.as_ref().expect("managed fields");
    assert_eq!(managed[0].manager.as_deref(), Some("ksync"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    assert_eq!(
        ds.status.as_ref().map(|s| s.desired_number_scheduled),
        Some(0)
    );

    // Another manager changing ksync's field: 409 unless forced.
    let change = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": "ksync-agent", "namespace": "ksync" },
        "spec": { "template": { "spec": { "terminationGracePeriodSeconds": 3 } } },
    });
    let err = daemonsets
        .patch(
            "ksync-agent",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&change),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("conflict with \"ksync\""),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    let forced = daemonsets
        .patch(
            "ksync-agent",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&change),
        )
        .await
        .expect("forced");
    let spec = forced.spec.template.spec.expect("pod spec");
    assert_eq!(spec.termination_grace_period_seconds, Some(3));
    assert_eq!(forced.metadata.generation, Some(2));

    // A merge patch, and delete.
    let patched = daemonsets
        .patch(
            "ksync-agent",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "metadata": { "labels": { "extra": "yes" } } })),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.metadata.labels.expect("labels")["extra"], "yes");
    let deleted = daemonsets
        .delete("ksync-agent", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        deleted.is_right(),
        "a deleted DaemonSet is reported by a Status"
    );
    assert!(
        daemonsets
            .get_opt("ksync-agent")
            .await
            .expect("get")
            .is_none()
    );
}

fn serde_saphyr_from_str(doc: &str) -> DynamicObject {
    let value: serde_json::Value = serde_saphyr::from_str(doc).expect("yaml");
    serde_json::from_value(value).expect("object")
}

#[tokio::test]
async fn portforward_carries_bytes_both_ways() {
    let (cluster, name) = cluster_with_echo_pod().await;
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);

    // Two ports in one session: the echo server and the web server in the pod.
    let mut forward = pods
        .portforward(&name, &[7000, 8080])
        .await
        .expect("portforward");
    let mut echo = forward.take_stream(7000).expect("7000");
    let mut web = forward.take_stream(8080).expect("8080");
    echo.write_all(b"ping from kube-rs\n").await.expect("write");
    let mut buf = vec![0u8; 18];
    echo.read_exact(&mut buf).await.expect("echoed");
    assert_eq!(buf, b"ping from kube-rs\n");
    web.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    // The web server closes its end after the response, but a session ends only when all of
    // its ports have (as with the kubelet): read up to the body.
    let response = read_until(&mut web, "hello from the pod\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    drop(echo);
    drop(web);
    forward.join().await.expect("the session ends cleanly");

    // A port nothing listens on: the error channel says why.
    let mut forward = pods.portforward(&name, &[9]).await.expect("portforward");
    let error = forward.take_error(9).expect("error channel").await;
    let error = error.expect("an error message");
    assert!(error.contains("error forwarding port 9 to pod"), "{error}");
    assert!(error.contains("connection refused"), "{error}");

    // A pod that does not exist is a 404.
    let err = pods.portforward("nope", &[80]).await.err().expect("no pod");
    assert!(
        err.to_string().contains("404") || err.to_string().contains("not found"),
        "{err}"
    );
}

#[tokio::test]
async fn lists_in_pages() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("one", "a"))
        .await
        .expect("a");
    cluster
        .add_workload(Workload::new("two", "b").replicas(2))
        .await
        .expect("b");
    cluster.wait_for_pods("one", "", 1, START).await.expect("a");
    cluster.wait_for_pods("two", "", 2, START).await.expect("b");
    let pods: Api<Pod> = Api::all(client(&cluster).await);
    let first = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    let token = first.metadata.continue_.clone().expect("continue");
    let second = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items.len(), 1);
    assert!(second.metadata.continue_.is_none_or(|c| c.is_empty()));
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    let mut namespaces: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .filter_map(|p| p.metadata.namespace.clone())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["one", "two", "two"]);

    // The watcher's initial list, a page at a time.
    let listed: Vec<Pod> = watcher(pods.clone(), watcher::Config::default().page_size(1))
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_filter_map(|e| async move {
            Ok(match e {
                watcher::Event::InitApply(p) => Some(p),
                _ => None,
            })
        })
        .try_collect()
        .await
        .expect("initial list");
    assert_eq!(listed.len(), 3);
    let pages = cluster
        .requests()
        .iter()
        .filter(|r| r.contains("limit=1"))
        .count();
    assert_eq!(pages, 3, "{:?}", cluster.requests());

    // A continue token from before the history was forgotten is 410.
    cluster.expire_resource_versions();
    let err = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect_err("expired");
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 410),
        "expired continue"
    );
}

/// Reads from `stream` until what was read ends with `end`.
async fn read_until(stream: &mut (impl tokio::io::AsyncRead + Unpin), end: &str) -> String {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let done = tokio::time::timeout(EVENT, async {
        while !read.ends_with(end.as_bytes()) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "the stream ended after {:?}",
                String::from_utf8_lossy(&read)
            );
            read.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "no {end:?} after {:?}",
        String::from_utf8_lossy(&read)
    );
    String::from_utf8_lossy(&read).into_owned()
}
