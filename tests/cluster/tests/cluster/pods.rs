//! Pods are real Docker containers: their status follows the containers (crashes, restarts,
//! exits), and deleting, rescheduling or relabelling them shows in watches as on a real
//! cluster.

use std::process::Command;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use ksync_test_cluster::{Container, RestartPolicy, TestCluster, Volume, Workload};
use kube::Api;
use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::Value;

use crate::conformance::kube_rs::client;
use crate::support::{EVENT, START};

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn status_of<'a>(pod: &'a Value, container: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == container))
        .unwrap_or(&Value::Null)
}

fn name(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().expect("name").to_string()
}

/// Watches pods of `default` from now, collecting events until `done` says so.
async fn watch_until(
    pods: &Api<Pod>,
    params: WatchParams,
    from: &str,
    mut done: impl FnMut(&[WatchEvent<Pod>]) -> bool,
) -> Vec<WatchEvent<Pod>> {
    let mut stream = pods.watch(&params, from).await.expect("watch").boxed();
    let mut seen = Vec::new();
    let finished = tokio::time::timeout(EVENT, async {
        while let Some(event) = stream.try_next().await.expect("event") {
            seen.push(event);
            if done(&seen) {
                return;
            }
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the watch did not see what was expected: {seen:#?}"
    );
    seen
}

fn container_state(event: &WatchEvent<Pod>) -> Option<(&'static str, i32)> {
    let WatchEvent::Modified(pod) = event else {
        return None;
    };
    let status = &pod.status.as_ref()?.container_statuses.as_ref()?[0];
    let state = status.state.as_ref()?;
    let kind = if state.running.is_some() {
        "running"
    } else if state.terminated.is_some() {
        "terminated"
    } else {
        "waiting"
    };
    Some((kind, status.restart_count))
}

#[tokio::test]
async fn status_follows_the_container_through_a_crash() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    let pod = cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pod")
        .remove(0);
    let pod_name = name(&pod);
    let id = cluster
        .container_id("default", &pod_name, "app")
        .expect("container");
    assert_eq!(
        status_of(&pod, "app")["containerID"],
        format!("docker://{id}")
    );
    assert!(
        status_of(&pod, "app")["imageID"]
            .as_str()
            .expect("image id")
            .starts_with("docker://sha256:")
    );

    // Labelled for radar (node) and for cleanup, named as dockershim named them.
    let (_, labels) = docker(&["inspect", "-f", "{{json .Config.Labels}}", &id]);
    let labels: Value = serde_json::from_str(&labels).expect("labels");
    assert_eq!(labels["io.ksync.node"], "node-a");
    assert_eq!(labels["io.ksync.test"], "cluster");
    assert_eq!(labels["io.kubernetes.pod.name"], pod_name.as_str());
    assert_eq!(labels["io.kubernetes.container.name"], "app");
    let (_, container_name) = docker(&["inspect", "-f", "{{.Name}}", &id]);
    assert!(
        container_name.starts_with(&format!("/k8s_app_{pod_name}_default_")),
        "{container_name}"
    );

    // The container's process dies: the watch shows it terminated, then restarted.
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);
    let rv = pods
        .get(&pod_name)
        .await
        .expect("pod")
        .metadata
        .resource_version
        .expect("rv");
    let (killed, _) = docker(&["kill", &id]);
    assert!(killed);
    let events = watch_until(
        &pods,
        WatchParams::default().fields(&format!("metadata.name={pod_name}")),
        &rv,
        |seen| {
            seen.iter()
                .any(|e| container_state(e) == Some(("running", 1)))
        },
    )
    .await;
    let states: Vec<_> = events.iter().filter_map(container_state).collect();
    let terminated = states
        .iter()
        .position(|s| *s == ("terminated", 0))
        .expect("terminated seen");
    let running = states
        .iter()
        .position(|s| *s == ("running", 1))
        .expect("running again");
    assert!(terminated < running, "{states:?}");

    let pod = cluster.get("pods", "default", &pod_name).expect("pod");
    let status = status_of(&pod, "app");
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    let new_id = cluster
        .container_id("default", &pod_name, "app")
        .expect("container");
    assert_ne!(new_id, id, "a restarted container is a new container");
    assert!(!docker(&["inspect", &id]).0, "the old container is removed");
    assert_eq!(pod["status"]["phase"], "Running");
}

#[tokio::test]
async fn exits_follow_the_restart_policy() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    let once = |name: &str, code: u8| {
        Workload::new("default", name)
            .restart_policy(RestartPolicy::Never)
            .container(Container::new("app").shell(&format!("exit {code}")))
    };
    cluster.add_workload(once("fails", 3)).await.expect("fails");
    cluster
        .add_workload(once("succeeds", 0))
        .await
        .expect("succeeds");
    cluster
        .add_workload(
            Workload::new("default", "crashes").container(Container::new("app").shell("exit 1")),
        )
        .await
        .expect("crashes");

    let phase = |app: &'static str, phase: &'static str| {
        move |c: &TestCluster| {
            let pods = c.pods("default", &format!("app={app}")).ok()?;
            pods.into_iter().find(|p| p["status"]["phase"] == phase)
        }
    };
    let failed = cluster
        .wait_for("a Failed pod", START, phase("fails", "Failed"))
        .await
        .expect("failed");
    let terminated = &status_of(&failed, "app")["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(status_of(&failed, "app")["restartCount"], 0);
    let succeeded = cluster
        .wait_for("a Succeeded pod", START, phase("succeeds", "Succeeded"))
        .await
        .expect("succeeded");
    assert_eq!(
        status_of(&succeeded, "app")["state"]["terminated"]["reason"],
        "Completed"
    );

    // Always: restarted, with back-off once it keeps failing.
    let crashing = cluster
        .wait_for("a crash loop", START, |c| {
            let pods = c.pods("default", "app=crashes").ok()?;
            pods.into_iter().find(|p| {
                let s = status_of(p, "app");
                s["restartCount"].as_u64() >= Some(2)
                    && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            })
        })
        .await
        .expect("crash loop");
    assert_eq!(
        status_of(&crashing, "app")["lastState"]["terminated"]["exitCode"],
        1
    );
    assert_eq!(crashing["status"]["phase"], "Running");
    assert_eq!(status_of(&crashing, "app")["ready"], false);
}

#[tokio::test]
async fn volumes_are_shared_and_outlive_container_restarts() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    let host = cluster.dir().join("host-data");
    std::fs::create_dir(&host).expect("dir");
    std::fs::write(host.join("from-host"), "host file\n").expect("write");
    cluster
        .add_workload(
            Workload::new("default", "app")
                .volume(Volume::empty_dir("shared"))
                .volume(Volume::host_path("host", host.to_str().expect("utf-8")))
                .container(
                    Container::new("writer")
                        .mount("shared", "/shared")
                        .mount_read_only("host", "/host"),
                )
                .container(Container::new("reader").mount("shared", "/data")),
        )
        .await
        .expect("workload");
    let pod = name(
        &cluster
            .wait_for_pods("default", "app=app", 1, START)
            .await
            .expect("pod")[0],
    );
    let writer = cluster
        .container_id("default", &pod, "writer")
        .expect("writer");
    let reader = cluster
        .container_id("default", &pod, "reader")
        .expect("reader");
    assert!(
        docker(&[
            "exec",
            &writer,
            "sh",
            "-c",
            "echo kept > /shared/file && echo lost > /tmp/file"
        ])
        .0
    );
    assert_eq!(docker(&["exec", &reader, "cat", "/data/file"]).1, "kept");
    assert_eq!(
        docker(&["exec", &writer, "cat", "/host/from-host"]).1,
        "host file"
    );
    assert!(
        !docker(&["exec", &writer, "touch", "/host/x"]).0,
        "read-only mount"
    );
    // The two containers share the pod's network.
    let (_, ip_writer) = docker(&["exec", &writer, "hostname", "-i"]);
    let (_, ip_reader) = docker(&["exec", &reader, "hostname", "-i"]);
    assert_eq!(ip_writer, ip_reader);
    let pod_ip = cluster.get("pods", "default", &pod).expect("pod")["status"]["podIP"].clone();
    assert_eq!(pod_ip, ip_writer.as_str());

    cluster
        .restart_container("default", &pod, "writer")
        .await
        .expect("restart");
    let restarted = cluster
        .wait_for("the writer restarted", START, |c| {
            let id = c.container_id("default", &pod, "writer")?;
            let p = c.get("pods", "default", &pod)?;
            (id != writer && status_of(&p, "writer")["ready"] == true).then_some(id)
        })
        .await
        .expect("restarted");
    assert_eq!(
        docker(&["exec", &restarted, "cat", "/shared/file"]).1,
        "kept"
    );
    assert!(
        !docker(&["exec", &restarted, "test", "-e", "/tmp/file"]).0,
        "a new container has a new root filesystem"
    );
}

#[tokio::test]
async fn deleted_and_rescheduled_pods_are_replaced() {
    let cluster = TestCluster::with_nodes(&["node-a", "node-b"])
        .await
        .expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web").on_node("node-a"))
        .await
        .expect("web");
    let first = cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("pod")
        .remove(0);
    let first_name = name(&first);
    let first_container = cluster
        .container_id("default", &first_name, "app")
        .expect("container");

    cluster
        .reschedule_pod("default", &first_name, "node-b")
        .await
        .expect("reschedule");
    let moved = cluster
        .wait_for("the pod on node-b", START, |c| {
            let pods = c.pods("default", "app=web").ok()?;
            let gone = c.get("pods", "default", &first_name).is_none();
            let ready: Vec<Value> = pods
                .into_iter()
                .filter(ksync_test_cluster::pod_ready)
                .collect();
            (gone && ready.len() == 1 && ready[0]["spec"]["nodeName"] == "node-b")
                .then(|| ready[0].clone())
        })
        .await
        .expect("moved");
    let moved_name = name(&moved);
    assert_ne!(moved_name, first_name);
    assert!(
        !docker(&["inspect", &first_container]).0,
        "the old pod's container is removed"
    );
    let moved_container = cluster
        .container_id("default", &moved_name, "app")
        .expect("container");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"io.ksync.node\"}}",
            &moved_container
        ])
        .1,
        "node-b"
    );

    // Deleted: replaced by a pod with a new name.
    cluster
        .delete_pod("default", &moved_name)
        .await
        .expect("delete");
    let replaced = cluster
        .wait_for("a replacement", START, |c| {
            let pods = c.pods("default", "app=web").ok()?;
            (pods.len() == 1
                && name(&pods[0]) != moved_name
                && ksync_test_cluster::pod_ready(&pods[0]))
            .then(|| pods[0].clone())
        })
        .await
        .expect("replaced");
    assert_eq!(
        replaced["spec"]["nodeName"], "node-a",
        "the workload's own placement again"
    );

    // Scaled to nothing: no pods, no containers.
    cluster.scale("default", "web", 0).await.expect("scale");
    cluster
        .wait_for("no pods", START, |c| {
            c.pods("default", "app=web").ok()?.is_empty().then_some(())
        })
        .await
        .expect("none");
    let (_, left) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.kubernetes.pod.name={}", name(&replaced)),
    ]);
    assert_eq!(left, "");
}

#[tokio::test]
async fn relabelled_pods_leave_and_join_selections() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    let pod = name(
        &cluster
            .wait_for_pods("default", "app=web", 1, START)
            .await
            .expect("pod")[0],
    );
    let pods: Api<Pod> = Api::default_namespaced(client(&cluster).await);
    let rv = pods
        .get(&pod)
        .await
        .expect("pod")
        .metadata
        .resource_version
        .expect("rv");

    let label = |value: &str| {
        Patch::Merge(serde_json::json!({ "metadata": { "labels": { "app": value } } }))
    };
    pods.patch(&pod, &PatchParams::default(), &label("other"))
        .await
        .expect("relabel");
    pods.patch(&pod, &PatchParams::default(), &label("web"))
        .await
        .expect("label back");
    let events = watch_until(
        &pods,
        WatchParams::default().labels("app=web"),
        &rv,
        |seen| seen.len() >= 2,
    )
    .await;
    assert!(
        matches!(&events[0], WatchEvent::Deleted(p) if p.metadata.name.as_deref() == Some(pod.as_str())),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], WatchEvent::Added(p) if p.metadata.labels.as_ref().is_some_and(|l| l["app"] == "web")),
        "{events:?}"
    );

    // The spec of a pod does not change.
    let err = pods
        .patch(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "nodeName": "node-b" } })),
        )
        .await
        .expect_err("immutable");
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 422),
        "spec changes are refused"
    );
}
