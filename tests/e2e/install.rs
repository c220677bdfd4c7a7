//! `ksync init` from nothing, again (no change), with a changed setting (outdated until
//! `--upgrade`), `--dry-run`, and `ksync clean` leaving nothing behind.

use std::time::Duration;

use ksync_test_cluster::{Container, Workload};

use crate::support::{cluster, ksync};

const KINDS: &[(&str, &str, &str)] = &[
    ("namespaces", "", "ksync"),
    ("serviceaccounts", "ksync", "ksync-agent"),
    ("clusterroles", "", "ksync-agent-user-ksync"),
    ("roles", "ksync", "ksync-agent-user"),
    ("secrets", "ksync", "ksync-agent"),
    ("daemonsets", "ksync", "ksync-agent"),
];

fn agent_pods(cluster: &ksync_test_cluster::TestCluster) -> Vec<String> {
    let mut uids: Vec<String> = cluster
        .pods("ksync", "app.kubernetes.io/name=ksync-agent")
        .expect("pods")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    uids.sort();
    uids
}

#[tokio::test(flavor = "multi_thread")]
async fn init_again_upgrade_dry_run_and_clean() {
    let cluster = cluster(&["node-a", "node-b"]).await;
    cluster
        .add_workload(
            Workload::new("dev", "web")
                .label("app", "web")
                .container(Container::new("app")),
        )
        .await
        .expect("workload");
    let home = tempfile::tempdir().expect("tempdir");

    // --dry-run prints the manifests and changes nothing.
    let writes = || {
        cluster
            .requests()
            .iter()
            .filter(|r| r.starts_with("PATCH") || r.starts_with("POST") || r.starts_with("DELETE"))
            .count()
    };
    let before = writes();
    let dry = ksync(&cluster, home.path(), &["init", "--dry-run"]);
    assert!(dry.ok().contains("kind: DaemonSet"));
    assert_eq!(writes(), before, "a dry run writes nothing");
    assert!(cluster.get("namespaces", "", "ksync").is_none());

    // From nothing.
    let first = ksync(&cluster, home.path(), &["init"]);
    let out = first.ok();
    assert_eq!(out.matches("   created  ").count(), KINDS.len(), "{out}");
    assert!(out.contains("ready on 2 of 2 nodes"), "{out}");
    for (plural, ns, name) in KINDS {
        let object = cluster
            .get(plural, ns, name)
            .unwrap_or_else(|| panic!("{plural} {name} exists"));
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "ksync"
        );
    }
    assert_eq!(
        cluster.get("namespaces", "", "ksync").expect("ns")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let generation = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("ds")["metadata"]["generation"]
        .clone();
    let key = cluster
        .get("secrets", "ksync", "ksync-agent")
        .expect("secret")["data"]["apikey"]
        .clone();
    let pods = agent_pods(&cluster);
    assert_eq!(pods.len(), 2);

    // Again: nothing changes, nothing rolls, the API key is kept.
    let again = ksync(&cluster, home.path(), &["init"]);
    let out = again.ok();
    assert_eq!(out.matches("unchanged").count(), KINDS.len(), "{out}");
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("ds");
    assert_eq!(ds["metadata"]["generation"], generation);
    assert_eq!(
        cluster
            .get("secrets", "ksync", "ksync-agent")
            .expect("secret")["data"]["apikey"],
        key
    );
    assert_eq!(agent_pods(&cluster), pods, "the agent pods did not roll");

    // A changed setting without --upgrade: reported, not applied.
    let outdated = ksync(
        &cluster,
        home.path(),
        &["init", "--image", "ksync/agent:next"],
    );
    let out = outdated.ok();
    assert!(
        out.contains("outdated  DaemonSet/ksync-agent") && out.contains("--upgrade"),
        "{out}"
    );
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("ds");
    assert_eq!(
        ds["metadata"]["generation"], generation,
        "nothing applied without --upgrade"
    );

    // --upgrade applies it and the agent rolls.
    let upgraded = ksync(
        &cluster,
        home.path(),
        &["init", "--upgrade", "--image", "ksync/agent:next"],
    );
    let out = upgraded.ok();
    assert!(out.contains("updated  DaemonSet/ksync-agent"), "{out}");
    assert!(out.contains("unchanged  Secret/ksync-agent"), "{out}");
    let ds = cluster
        .get("daemonsets", "ksync", "ksync-agent")
        .expect("ds");
    assert_ne!(ds["metadata"]["generation"], generation);
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "ksync/agent:next"
    );
    cluster
        .wait_for_agents("ksync", "ksync-agent", Duration::from_secs(120))
        .await
        .expect("rolled");
    let rolled = agent_pods(&cluster);
    assert!(
        rolled.iter().all(|uid| !pods.contains(uid)),
        "every agent pod was replaced"
    );

    // clean: every object init made is gone, nothing else.
    let cleaned = ksync(&cluster, home.path(), &["clean"]);
    let out = cleaned.ok();
    assert!(
        out.contains("deleted  Namespace/ksync")
            && out.contains("deleted  ClusterRole/ksync-agent-user-ksync"),
        "{out}"
    );
    cluster
        .wait_for(
            "every object of the agent to be gone",
            Duration::from_secs(60),
            |c| {
                KINDS
                    .iter()
                    .all(|(plural, ns, name)| c.get(plural, ns, name).is_none())
                    .then_some(())
            },
        )
        .await
        .expect("gone");
    let leftovers = cluster
        .kubectl()
        .args([
            "get",
            "all",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=ksync",
            "-o",
            "name",
        ])
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&leftovers.stdout).trim(),
        "",
        "{}",
        String::from_utf8_lossy(&leftovers.stderr)
    );
    assert!(
        cluster.get("namespaces", "", "dev").is_some(),
        "clean touches only ksync's objects"
    );
    assert_eq!(cluster.pods("dev", "app=web").expect("pods").len(), 1);
}
