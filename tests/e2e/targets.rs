//! A spec's targets as a stream: correct across create, restart, delete, reschedule and
//! scale, for selector and pod-name specs, and after an API server restart and a 410.

use std::time::Duration;

use ksync::cluster::pods::{ContainerEvent, watch_targets};
use ksync::selector::LabelSelector;
use ksync::spec::Target;
use ksync_test_cluster::{Container, Workload};

use crate::support::{Targets, client, cluster, running};

fn web(replicas: usize) -> Workload {
    Workload::new("dev", "web")
        .label("app", "web")
        .replicas(replicas)
        .container(Container::new("app"))
        .container(Container::new("sidecar"))
}

/// The targets match what runs: same pods, nodes and container IDs of the first container.
fn matches(
    targets: &std::collections::BTreeMap<String, ksync::cluster::pods::TargetContainer>,
    running: &std::collections::BTreeMap<String, (String, String)>,
) -> bool {
    targets.len() == running.len()
        && targets.iter().all(|(key, t)| {
            running
                .get(key)
                .is_some_and(|(node, id)| *node == t.node && t.container_id.ends_with(id.as_str()))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_targets_follow_the_cluster() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    cluster.add_workload(web(2)).await.expect("workload");
    cluster
        .wait_for_pods("dev", "app=web", 2, Duration::from_secs(60))
        .await
        .expect("pods");
    let kube = client(&cluster).await;
    let selector = Target::Selector(LabelSelector::parse("app=web").expect("selector"));
    let mut targets = Targets::new(Box::pin(watch_targets(
        kube.client.clone(),
        "dev",
        &selector,
        None,
    )));
    let now = || running(&cluster, "dev", "app=web", "app");
    targets.until("both pods", |t| t.len() == 2).await;
    assert!(matches(&targets.current, &now()));
    assert!(
        targets.current.values().all(|t| t.container == "app"),
        "the first container in spec order"
    );

    // A container restart: same pod, new container ID.
    let first = targets.current.values().next().expect("a target").clone();
    cluster
        .restart_container("dev", &first.pod, "app")
        .await
        .expect("restart");
    targets
        .until("the restarted container", |t| {
            t.get(&first.key())
                .is_some_and(|c| c.container_id != first.container_id)
        })
        .await;
    // Reported as changed, or as gone (while the kubelet restarts it) and back.
    assert!(
        matches!(
            targets.seen.last(),
            Some(ContainerEvent::Changed { .. } | ContainerEvent::Appeared(_))
        ),
        "{:?}",
        targets.seen.last()
    );
    assert_eq!(
        targets.current[&first.key()].restart_count,
        first.restart_count + 1
    );

    // Deleting a pod: it is gone, its replacement appears.
    cluster.delete_pod("dev", &first.pod).await.expect("delete");
    targets
        .until("the replacement pod", |t| {
            t.len() == 2 && !t.contains_key(&first.key())
        })
        .await;
    assert!(matches(&targets.current, &now()));

    // Rescheduling: the pod ends up on the other node.
    let moving = targets
        .current
        .values()
        .find(|t| t.node == "node-a")
        .or_else(|| targets.current.values().next())
        .expect("a pod")
        .clone();
    let other = if moving.node == "node-a" {
        "node-b"
    } else {
        "node-a"
    };
    cluster
        .reschedule_pod("dev", &moving.pod, other)
        .await
        .expect("reschedule");
    targets
        .until("a pod on the other node", |t| {
            t.len() == 2
                && !t.contains_key(&moving.key())
                && t.values().filter(|c| c.node == other).count() >= 1
        })
        .await;
    cluster
        .wait_for_pods("dev", "app=web", 2, Duration::from_secs(60))
        .await
        .expect("pods");
    assert!(matches(&targets.current, &now()));

    // Scaling up and down.
    cluster.scale("dev", "web", 3).await.expect("scale");
    targets.until("three pods", |t| t.len() == 3).await;
    cluster.scale("dev", "web", 1).await.expect("scale");
    targets.until("one pod", |t| t.len() == 1).await;
    cluster
        .wait_for_pods("dev", "app=web", 1, Duration::from_secs(60))
        .await
        .expect("pods");
    assert!(matches(&targets.current, &now()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_name_spec_targets_exactly_that_pod() {
    let cluster = cluster(&["node-a"]).await;
    cluster.add_workload(web(2)).await.expect("workload");
    let pods = cluster
        .wait_for_pods("dev", "app=web", 2, Duration::from_secs(60))
        .await
        .expect("pods");
    let name = pods[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let kube = client(&cluster).await;
    let target = Target::Pod(name.clone());
    let mut targets = Targets::new(Box::pin(watch_targets(
        kube.client.clone(),
        "dev",
        &target,
        Some("sidecar"),
    )));
    targets.until("the named pod", |t| t.len() == 1).await;
    let only = targets.current.values().next().expect("target").clone();
    assert_eq!(
        (only.pod.as_str(), only.container.as_str()),
        (name.as_str(), "sidecar")
    );

    cluster.delete_pod("dev", &name).await.expect("delete");
    targets
        .until("the named pod to be gone", |t| t.is_empty())
        .await;
    // Its replacement has another name: it is not this spec's.
    cluster
        .wait_for_pods("dev", "app=web", 2, Duration::from_secs(60))
        .await
        .expect("pods");
    assert!(targets.current.is_empty());

    // A container name the pod does not have is reported, with the names it has.
    let mut missing = Box::pin(watch_targets(
        kube.client.clone(),
        "dev",
        &Target::Selector(LabelSelector::parse("app=web").expect("selector")),
        Some("nginx"),
    ));
    let event = tokio::time::timeout(
        Duration::from_secs(60),
        futures::StreamExt::next(&mut missing),
    )
    .await
    .expect("in time")
    .expect("an event");
    assert!(
        matches!(&event, ContainerEvent::NoSuchContainer { wanted, available, .. } if wanted == "nginx" && available == &["app", "sidecar"]),
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_an_api_server_restart_and_expired_resource_versions() {
    let cluster = cluster(&["node-a"]).await;
    cluster.add_workload(web(1)).await.expect("workload");
    cluster
        .wait_for_pods("dev", "app=web", 1, Duration::from_secs(60))
        .await
        .expect("pods");
    let kube = client(&cluster).await;
    let selector = Target::Selector(LabelSelector::parse("app=web").expect("selector"));
    let mut targets = Targets::new(Box::pin(watch_targets(
        kube.client.clone(),
        "dev",
        &selector,
        None,
    )));
    targets.until("the pod", |t| t.len() == 1).await;

    // The API server goes away; the cluster changes meanwhile; it comes back.
    cluster.stop_api_server().await.expect("stop");
    cluster.scale("dev", "web", 2).await.expect("scale");
    cluster.start_api_server().await.expect("start");
    targets
        .until("the pod added while the API was down", |t| t.len() == 2)
        .await;

    // Every resourceVersion expires (410): the watcher lists again, and a pod deleted in
    // between is reported gone exactly once.
    let victim = targets.current.values().next().expect("a pod").clone();
    cluster.expire_resource_versions();
    cluster
        .delete_pod("dev", &victim.pod)
        .await
        .expect("delete");
    targets
        .until("the deleted pod gone and its replacement", |t| {
            t.len() == 2 && !t.contains_key(&victim.key())
        })
        .await;
    cluster
        .wait_for_pods("dev", "app=web", 2, Duration::from_secs(60))
        .await
        .expect("pods");
    assert!(matches(
        &targets.current,
        &running(&cluster, "dev", "app=web", "app")
    ));
}
