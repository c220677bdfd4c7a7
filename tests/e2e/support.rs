//! The cluster, ksync's client for it, and running the `ksync` binary against it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::{Stream, StreamExt};
use ksync::cluster::pods::{ContainerEvent, TargetContainer};
use ksync::cluster::{Cluster, ClusterOptions};
use ksync_test_cluster::TestCluster;

/// A test cluster with these nodes.
pub(crate) async fn cluster(nodes: &[&str]) -> TestCluster {
    TestCluster::with_nodes(nodes)
        .await
        .expect("the test cluster starts")
}

/// ksync's client for it.
pub(crate) async fn client(cluster: &TestCluster) -> Cluster {
    Cluster::connect(&ClusterOptions {
        kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
        context: None,
    })
    .await
    .expect("ksync connects")
}

/// What the `ksync` binary printed and returned.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `ksync ARGS` against the cluster, in an empty project with a private home.
pub(crate) fn ksync(cluster: &TestCluster, home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ksync"))
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("KSYNC_HOME")
        .env_remove("KUBECONFIG")
        .output()
        .expect("ksync runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "ksync failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

/// The current targets, kept from a stream of container events.
pub(crate) struct Targets<S> {
    stream: S,
    pub(crate) current: BTreeMap<String, TargetContainer>,
    pub(crate) seen: Vec<ContainerEvent>,
}

impl<S: Stream<Item = ContainerEvent> + Unpin> Targets<S> {
    pub(crate) fn new(stream: S) -> Self {
        Targets {
            stream,
            current: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    /// Applies events until `done` holds of the current targets.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        done: impl Fn(&BTreeMap<String, TargetContainer>) -> bool,
    ) {
        let wait = async {
            while !done(&self.current) {
                let event = self.stream.next().await.expect("the stream never ends");
                match &event {
                    ContainerEvent::Appeared(c) => {
                        assert!(
                            self.current.insert(c.key(), c.clone()).is_none(),
                            "{} appeared twice without being gone: {:?}",
                            c.key(),
                            self.seen
                        );
                    }
                    ContainerEvent::Changed { old, new } => {
                        assert_eq!(
                            self.current.remove(&old.key()).as_ref(),
                            Some(old),
                            "changed from what was reported"
                        );
                        self.current.insert(new.key(), new.clone());
                    }
                    ContainerEvent::Gone { last, .. } => {
                        assert!(
                            self.current.remove(&last.key()).is_some(),
                            "{} gone but never appeared",
                            last.key()
                        );
                    }
                    ContainerEvent::NoSuchContainer { .. } => {}
                }
                self.seen.push(event);
            }
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for {what}; targets now {:?}",
                    self.current.keys()
                )
            });
    }
}

/// The pods (name → node, container id of `container`) the cluster runs for a selector.
pub(crate) fn running(
    cluster: &TestCluster,
    ns: &str,
    selector: &str,
    container: &str,
) -> BTreeMap<String, (String, String)> {
    cluster
        .pods(ns, selector)
        .expect("pods")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| {
            let name = p["metadata"]["name"].as_str()?.to_string();
            let node = p["spec"]["nodeName"].as_str()?.to_string();
            let id = cluster.container_id(ns, &name, container)?;
            Some((format!("{ns}/{name}"), (node, id)))
        })
        .collect()
}
