//! The real `kubectl` (1.32) against the test cluster: selectors, watching, server-side
//! apply of ksync's agent manifests, deletion, and the errors it prints.

use ksync_test_cluster::{Node, TestCluster, Workload};

use crate::support::{EVENT, Lines, START, agent_manifests, kubectl, kubectl_fails, words};

fn names(out: &str) -> Vec<String> {
    let mut names: Vec<String> = out
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    names.sort();
    names
}

fn pod_names(pods: &[serde_json::Value]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .map(|p| format!("pod/{}", p["metadata"]["name"].as_str().expect("name")))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn get_pods_by_label_and_field_selectors() {
    let cluster = TestCluster::with_nodes(&["node-a", "node-b"])
        .await
        .expect("cluster");
    cluster
        .add_workload(
            Workload::new("default", "web")
                .label("tier", "front")
                .replicas(2),
        )
        .await
        .expect("web");
    cluster
        .add_workload(Workload::new("default", "db").on_node("node-b"))
        .await
        .expect("db");
    cluster
        .add_workload(Workload::new("shop", "web"))
        .await
        .expect("web in shop");
    let web = cluster
        .wait_for_pods("default", "app=web", 2, START)
        .await
        .expect("web");
    let db = cluster
        .wait_for_pods("default", "app=db", 1, START)
        .await
        .expect("db");
    cluster
        .wait_for_pods("shop", "", 1, START)
        .await
        .expect("shop");

    let out = kubectl(&cluster, &["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(names(&out), pod_names(&web));
    let out = kubectl(
        &cluster,
        &[
            "get",
            "pods",
            "-l",
            "app in (web, db),tier!=front",
            "-o",
            "name",
        ],
    );
    assert_eq!(names(&out), pod_names(&db));
    let out = kubectl(&cluster, &["get", "pods", "-l", "!tier,app", "-o", "name"]);
    assert_eq!(names(&out), pod_names(&db));
    let out = kubectl(
        &cluster,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=node-b,status.phase=Running",
            "-o",
            "name",
        ],
    );
    let on_b: Vec<serde_json::Value> = web
        .iter()
        .chain(&db)
        .filter(|p| p["spec"]["nodeName"] == "node-b")
        .cloned()
        .collect();
    assert_eq!(names(&out), pod_names(&on_b));
    // Spread: one web pod per node.
    assert_eq!(
        web.iter()
            .filter(|p| p["spec"]["nodeName"] == "node-a")
            .count(),
        1
    );

    // All namespaces, in the table kubectl prints from the server's Table.
    let out = kubectl(&cluster, &["get", "pods", "-A", "-l", "app=web"]);
    let rows: Vec<Vec<&str>> = out.lines().map(words).collect();
    assert_eq!(
        rows[0],
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows[1..].iter().all(|r| r[2] == "1/1" && r[3] == "Running"),
        "{out}"
    );
    assert!(rows[1..].iter().any(|r| r[0] == "shop"), "{out}");

    // jsonpath over the objects: statuses carry Docker ids of the real containers.
    let out = kubectl(
        &cluster,
        &[
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[0].status.containerStatuses[0].containerID}",
        ],
    );
    let id = out.strip_prefix("docker://").expect("a docker:// id");
    let db_name = db[0]["metadata"]["name"].as_str().expect("name");
    assert_eq!(
        cluster.container_id("default", db_name, "app").as_deref(),
        Some(id)
    );

    // A malformed selector is the server's 400, as kubectl prints it.
    let err = kubectl_fails(&cluster, &["get", "pods", "-l", "app in (web"]);
    assert!(err.starts_with("Error from server (BadRequest)"), "{err}");
    let err = kubectl_fails(
        &cluster,
        &["get", "pods", "--field-selector", "spec.host=x"],
    );
    assert!(
        err.contains("field label not supported: spec.host"),
        "{err}"
    );
}

#[tokio::test]
async fn get_pods_watch_sees_adds_updates_and_deletes() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    let first = cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("web");
    let first = first[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();

    let mut watch = {
        let mut command = cluster.kubectl();
        command.args([
            "get",
            "pods",
            "-l",
            "app=web",
            "--watch",
            "--output-watch-events",
        ]);
        Lines::spawn(command)
    };
    watch.expect("the existing pod", EVENT, |l| {
        words(l).starts_with(&["ADDED", first.as_str(), "1/1", "Running", "0"])
    });

    // Add: a second replica appears and starts.
    cluster.scale("default", "web", 2).await.expect("scale");
    let added = watch.expect("a new pod", EVENT, |l| words(l).first() == Some(&"ADDED"));
    let second = words(&added)[1].to_string();
    assert_ne!(second, first);
    watch.expect("the new pod running", EVENT, |l| {
        words(l).starts_with(&["MODIFIED", second.as_str(), "1/1", "Running"])
    });

    // Update: its container restarts.
    cluster
        .restart_container("default", &first, "app")
        .await
        .expect("restart");
    watch.expect("the restart counted", EVENT, |l| {
        words(l).starts_with(&["MODIFIED", first.as_str(), "1/1", "Running", "1"])
    });

    // Delete: kubectl waits until it is gone; the watch sees it go.
    let out = kubectl(&cluster, &["delete", "pod", &second]);
    assert_eq!(out.trim(), format!("pod \"{second}\" deleted"));
    watch.expect("the pod terminating", EVENT, |l| {
        words(l).starts_with(&["MODIFIED", second.as_str()]) && l.contains("Terminating")
    });
    watch.expect("the pod deleted", EVENT, |l| {
        words(l).starts_with(&["DELETED", second.as_str()])
    });
    // The workload replaced it as soon as it began terminating.
    watch.expect_seen("its replacement", EVENT, |l| {
        let w = words(l);
        w.first() == Some(&"ADDED") && w[1] != second && w[1] != first
    });
}

#[tokio::test]
async fn apply_server_side_the_agent_manifests() {
    let cluster = TestCluster::start().await.expect("cluster");
    let file = cluster.dir().join("agent.yaml");
    std::fs::write(&file, agent_manifests()).expect("write");
    let file = file.to_str().expect("utf-8");
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=ksync",
        "--validate=false",
        "-f",
        file,
    ];

    let out = kubectl(&cluster, &apply);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/ksync serverside-applied",
            "serviceaccount/ksync-agent serverside-applied",
            "clusterrole.rbac.authorization.k8s.io/ksync-agent-user-ksync serverside-applied",
            "role.rbac.authorization.k8s.io/ksync-agent-user serverside-applied",
            "secret/ksync-agent serverside-applied",
            "daemonset.apps/ksync-agent serverside-applied",
        ]
    );
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("daemonset");
    assert_eq!(ds["metadata"]["managedFields"][0]["manager"], "ksync");
    assert_eq!(ds["metadata"]["managedFields"][0]["operation"], "Apply");
    let secret = cluster
        .get("secrets", "ksync", "ksync-agent")
        .expect("secret");
    assert!(secret.get("stringData").is_none());
    assert_eq!(secret["data"]["apikey"], "azV1MUtqWEhiVW40bVRSdzljVloyZVFw");

    // Applying the same again changes nothing.
    let before = kubectl(
        &cluster,
        &[
            "get",
            "-f",
            file,
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ],
    );
    kubectl(&cluster, &apply);
    let after = kubectl(
        &cluster,
        &[
            "get",
            "-f",
            file,
            "-o",
            "jsonpath={.items[*].metadata.resourceVersion}",
        ],
    );
    assert_eq!(before, after);

    // Another manager changing ksync's field conflicts, unless it forces.
    let edited = std::fs::read_to_string(file)
        .expect("read")
        .replace("maxUnavailable: 1", "maxUnavailable: 2");
    let edited_file = cluster.dir().join("edited.yaml");
    std::fs::write(&edited_file, edited).expect("write");
    let edited_file = edited_file.to_str().expect("utf-8");
    let other = [
        "apply",
        "--server-side",
        "--field-manager=someone-else",
        "--validate=false",
        "-f",
        edited_file,
    ];
    let err = kubectl_fails(&cluster, &other);
    assert!(err.contains("conflict with \"ksync\""), "{err}");
    assert!(
        err.contains(".spec.updateStrategy.rollingUpdate.maxUnavailable"),
        "{err}"
    );
    let mut forced = other.to_vec();
    forced.push("--force-conflicts");
    kubectl(&cluster, &forced);
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("daemonset");
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        2
    );
    let generation = ds["metadata"]["generation"].as_u64().expect("generation");
    assert_eq!(generation, 2);

    // kubectl get reads the DaemonSet's columns from the server's Table.
    let out = kubectl(&cluster, &["get", "daemonsets", "-n", "ksync"]);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("NODE SELECTOR"), "{out}");
    assert!(out.contains("kubernetes.io/os=linux"), "{out}");
}

#[tokio::test]
async fn delete_pods_and_everything_applied() {
    let cluster = TestCluster::with_nodes(&["node-a"]).await.expect("cluster");
    cluster
        .add_workload(Workload::new("default", "web"))
        .await
        .expect("web");
    let pods = cluster
        .wait_for_pods("default", "app=web", 1, START)
        .await
        .expect("web");
    let name = pods[0]["metadata"]["name"].as_str().expect("name");
    let container = cluster
        .container_id("default", name, "app")
        .expect("container");

    let out = kubectl(&cluster, &["delete", "pod", name]);
    assert_eq!(out.trim(), format!("pod \"{name}\" deleted"));
    // kubectl waited for the pod to go; so did its container.
    assert!(cluster.get("pods", "default", name).is_none());
    let inspect = std::process::Command::new("docker")
        .args(["inspect", &container])
        .output()
        .expect("docker");
    assert!(
        !inspect.status.success(),
        "the container of a deleted pod is removed"
    );

    let err = kubectl_fails(&cluster, &["delete", "pod", "nope"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );
    let err = kubectl_fails(&cluster, &["delete", "namespace", "default"]);
    assert!(err.contains("this namespace may not be deleted"), "{err}");

    // The agent: deleting its DaemonSet takes its pods (and their radar and Syncthing).
    cluster.add_node(Node::new("node-b")).await.expect("node");
    let file = cluster.dir().join("agent.yaml");
    std::fs::write(&file, agent_manifests()).expect("write");
    let file = file.to_str().expect("utf-8");
    kubectl(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--field-manager=ksync",
            "--validate=false",
            "-f",
            file,
        ],
    );
    let agents = cluster
        .wait_for("an agent pod on each node", START, |c| {
            let pods = c.pods("ksync", "app.kubernetes.io/name=ksync-agent").ok()?;
            (pods.len() == 2).then_some(pods)
        })
        .await
        .expect("agent pods");
    let out = kubectl(
        &cluster,
        &["delete", "daemonset", "ksync-agent", "-n", "ksync"],
    );
    assert_eq!(out.trim(), "daemonset.apps \"ksync-agent\" deleted");
    cluster
        .wait_for("the agent pods to go", START, |c| {
            agents
                .iter()
                .all(|p| {
                    c.get(
                        "pods",
                        "ksync",
                        p["metadata"]["name"].as_str().unwrap_or_default(),
                    )
                    .is_none()
                })
                .then_some(())
        })
        .await
        .expect("garbage collected");

    // The rest; the namespace goes first and takes its content with it, so what kubectl
    // deletes after it may be gone already.
    let out = kubectl(&cluster, &["delete", "--ignore-not-found", "-f", file]);
    assert!(out.contains("namespace \"ksync\" deleted"), "{out}");
    assert!(
        out.contains("clusterrole.rbac.authorization.k8s.io \"ksync-agent-user-ksync\" deleted"),
        "{out}"
    );
    assert!(cluster.get("namespaces", "", "ksync").is_none());
    assert!(cluster.get("secrets", "ksync", "ksync-agent").is_none());
    let err = kubectl_fails(&cluster, &["get", "namespace", "ksync"]);
    assert!(err.contains("NotFound"), "{err}");
}

const CREATED: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: tools
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: agent
  namespace: tools
---
apiVersion: v1
kind: Secret
metadata:
  name: agent
  namespace: tools
stringData:
  apikey: s3cret
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: tools
rules:
  - apiGroups: [\"\"]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
  namespace: tools
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: agent, namespace: tools}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: watcher
rules: [{apiGroups: [\"\"], resources: [pods], verbs: [watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: watcher
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: watcher}
subjects: [{kind: User, name: someone}]
";

#[tokio::test]
async fn create_the_kinds_ksync_init_uses() {
    let cluster = TestCluster::start().await.expect("cluster");
    let file = cluster.dir().join("created.yaml");
    std::fs::write(&file, CREATED).expect("write");
    let file = file.to_str().expect("utf-8");
    let out = kubectl(&cluster, &["create", "--validate=false", "-f", file]);
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(
        out.contains("rolebinding.rbac.authorization.k8s.io/reader created"),
        "{out}"
    );

    let out = kubectl(
        &cluster,
        &[
            "get",
            "serviceaccounts,secrets,roles,rolebindings",
            "-n",
            "tools",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        names(&out),
        [
            "role.rbac.authorization.k8s.io/reader",
            "rolebinding.rbac.authorization.k8s.io/reader",
            "secret/agent",
            "serviceaccount/agent",
        ]
    );
    let secret = kubectl(
        &cluster,
        &[
            "get",
            "secret",
            "agent",
            "-n",
            "tools",
            "-o",
            "jsonpath={.data.apikey}",
        ],
    );
    assert_eq!(secret, "czNjcmV0");
    let binding = cluster
        .get("clusterrolebindings", "", "watcher")
        .expect("binding");
    assert_eq!(binding["subjects"][0]["name"], "someone");
    assert_eq!(
        binding["metadata"]["managedFields"][0]["operation"],
        "Update"
    );

    let err = kubectl_fails(&cluster, &["create", "--validate=false", "-f", file]);
    assert!(
        err.contains("Error from server (AlreadyExists): error when creating")
            && err.contains("namespaces \"tools\" already exists"),
        "{err}"
    );
    // kubectl's generators send protobuf, which the test cluster does not read; it says so.
    let err = kubectl_fails(&cluster, &["create", "namespace", "other"]);
    assert!(err.contains("UnsupportedMediaType"), "{err}");
}
