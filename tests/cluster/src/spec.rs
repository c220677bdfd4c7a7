//! What a test declares: nodes, and workloads (labelled pods with containers, volumes and a
//! replica count) that the test cluster runs as real Docker containers.

use std::collections::BTreeMap;

use ksync::names::{check_dns1123_label, check_label_key, check_label_value};
use serde_json::{Value, json};

use crate::docker::IDLE;
use crate::error::Error;

/// A node. Nodes are logical: their pods' containers all run in the local Docker Engine,
/// labelled with the node's name, and each node gets its own radar and Syncthing once the
/// agent DaemonSet is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
}

impl Node {
    /// A node named `name`, with the labels every Linux node has.
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_string(),
            labels: BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), name.to_string()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
                ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ]),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Node {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        check_dns1123_label(&self.name).map_err(|e| Error::Invalid(format!("node name: {e}")))?;
        check_labels(&self.labels)
    }

    /// The Node object.
    pub(crate) fn object(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": self.name, "labels": self.labels },
            "spec": {},
            "status": {
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "the ksync test cluster's node is ready" }],
                "addresses": [
                    { "type": "InternalIP", "address": "127.0.0.1" },
                    { "type": "Hostname", "address": self.name },
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "containerRuntimeVersion": "docker://20.10",
                    "kubeletVersion": "v1.32.0-ksync-test",
                    "osImage": "ksync test cluster",
                },
            },
        })
    }
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), Error> {
    for (k, v) in labels {
        check_label_key(k).map_err(|e| Error::Invalid(format!("label key {k:?}: {e}")))?;
        check_label_value(v).map_err(|e| Error::Invalid(format!("label value {v:?}: {e}")))?;
    }
    Ok(())
}

/// When a pod's containers are restarted after they exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Always (the default, as for Deployments).
    Always,
    /// Only after a non-zero exit.
    OnFailure,
    /// Never: the pod ends `Succeeded` or `Failed`.
    Never,
}

/// A set of identical pods (like a ReplicaSet): `replicas` pods labelled `labels`, spread
/// over the nodes (or all on one), replaced when deleted.
#[derive(Debug, Clone)]
pub struct Workload {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) replicas: usize,
    pub(crate) containers: Vec<Container>,
    pub(crate) volumes: Vec<Volume>,
    pub(crate) node: Option<String>,
    pub(crate) restart_policy: RestartPolicy,
    pub(crate) grace_seconds: i64,
}

impl Workload {
    /// One pod named after `name` in `namespace`, labelled `app=<name>`, with one idle
    /// container `app` until containers are added.
    pub fn new(namespace: &str, name: &str) -> Workload {
        Workload {
            namespace: namespace.to_string(),
            name: name.to_string(),
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            replicas: 1,
            containers: Vec::new(),
            volumes: Vec::new(),
            node: None,
            restart_policy: RestartPolicy::Always,
            grace_seconds: 2,
        }
    }

    /// Adds a pod label.
    pub fn label(mut self, key: &str, value: &str) -> Workload {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// How many pods.
    pub fn replicas(mut self, replicas: usize) -> Workload {
        self.replicas = replicas;
        self
    }

    /// Adds a container.
    pub fn container(mut self, container: Container) -> Workload {
        self.containers.push(container);
        self
    }

    /// Adds a volume.
    pub fn volume(mut self, volume: Volume) -> Workload {
        self.volumes.push(volume);
        self
    }

    /// Puts every pod on `node` (default: spread over all nodes).
    pub fn on_node(mut self, node: &str) -> Workload {
        self.node = Some(node.to_string());
        self
    }

    /// The pods' restart policy.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Workload {
        self.restart_policy = policy;
        self
    }

    /// `terminationGracePeriodSeconds` (default 2, to keep tests quick).
    pub fn termination_grace(mut self, seconds: i64) -> Workload {
        self.grace_seconds = seconds;
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        check_dns1123_label(&self.namespace)
            .map_err(|e| Error::Invalid(format!("namespace: {e}")))?;
        // Pod names add a 6-character suffix.
        check_dns1123_label(&format!("{}-xxxxx", self.name))
            .map_err(|e| Error::Invalid(format!("workload name: {e}")))?;
        check_labels(&self.labels)?;
        let mut names: Vec<&str> = self.containers.iter().map(|c| c.name.as_str()).collect();
        for c in &self.containers {
            check_dns1123_label(&c.name)
                .map_err(|e| Error::Invalid(format!("container name: {e}")))?;
            for (volume, _, _) in &c.mounts {
                if !self.volumes.iter().any(|v| &v.name == volume) {
                    return Err(Error::Invalid(format!(
                        "container {} mounts volume {volume}, which the workload does not declare",
                        c.name
                    )));
                }
            }
        }
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Invalid("two containers share a name".into()));
        }
        Ok(())
    }

    fn containers(&self) -> Vec<Container> {
        if self.containers.is_empty() {
            vec![Container::new("app")]
        } else {
            self.containers.clone()
        }
    }

    /// The object of one of its pods, bound to `node`.
    pub(crate) fn pod(&self, name: &str, node: &str) -> Value {
        let containers: Vec<Value> = self.containers().iter().map(Container::object).collect();
        let volumes: Vec<Value> = self.volumes.iter().map(Volume::object).collect();
        let policy = match self.restart_policy {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        };
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": self.labels,
            },
            "spec": {
                "nodeName": node,
                "restartPolicy": policy,
                "terminationGracePeriodSeconds": self.grace_seconds,
                "containers": containers,
                "volumes": volumes,
            },
            "status": { "phase": "Pending" },
        })
    }
}

/// A container of a workload. It runs the test cluster's busybox image.
#[derive(Debug, Clone)]
pub struct Container {
    pub(crate) name: String,
    command: Vec<String>,
    env: Vec<(String, String)>,
    pub(crate) mounts: Vec<(String, String, bool)>,
    working_dir: Option<String>,
    ports: Vec<u16>,
    ready_on: Option<u16>,
}

impl Container {
    /// A container that idles (and stops promptly on SIGTERM) until given a command.
    pub fn new(name: &str) -> Container {
        Container {
            name: name.to_string(),
            command: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            working_dir: None,
            ports: Vec::new(),
            ready_on: None,
        }
    }

    /// The command and its arguments (busybox applets: `sh`, `nc`, `httpd`, ...).
    pub fn command<S: AsRef<str>>(mut self, command: impl IntoIterator<Item = S>) -> Container {
        self.command = command
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        self
    }

    /// `sh -c <script>`.
    pub fn shell(self, script: &str) -> Container {
        self.command(["sh", "-c", script])
    }

    /// An environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Container {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Mounts the workload's volume `volume` at `path`.
    pub fn mount(mut self, volume: &str, path: &str) -> Container {
        self.mounts
            .push((volume.to_string(), path.to_string(), false));
        self
    }

    /// Mounts the workload's volume `volume` at `path`, read-only.
    pub fn mount_read_only(mut self, volume: &str, path: &str) -> Container {
        self.mounts
            .push((volume.to_string(), path.to_string(), true));
        self
    }

    /// The working directory.
    pub fn working_dir(mut self, dir: &str) -> Container {
        self.working_dir = Some(dir.to_string());
        self
    }

    /// Declares a container port (informational, as in Kubernetes: every port of the pod
    /// can be forwarded).
    pub fn port(mut self, port: u16) -> Container {
        self.ports.push(port);
        self
    }

    /// A TCP readiness probe: the container is ready once `port` of the pod accepts
    /// connections (default: ready as soon as it runs).
    pub fn ready_on_port(mut self, port: u16) -> Container {
        self.ready_on = Some(port);
        self
    }

    fn object(&self) -> Value {
        let command = if self.command.is_empty() {
            IDLE.iter().map(|s| s.to_string()).collect()
        } else {
            self.command.clone()
        };
        let mut c = json!({
            "name": self.name,
            "image": crate::docker::IMAGE,
            "imagePullPolicy": "Never",
            "command": command,
        });
        if !self.env.is_empty() {
            c["env"] = json!(
                self.env
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect::<Vec<_>>()
            );
        }
        if !self.mounts.is_empty() {
            c["volumeMounts"] = json!(
                self.mounts
                    .iter()
                    .map(|(v, p, ro)| json!({"name": v, "mountPath": p, "readOnly": ro}))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(dir) = &self.working_dir {
            c["workingDir"] = json!(dir);
        }
        if let Some(port) = self.ready_on {
            c["readinessProbe"] = json!({ "tcpSocket": { "port": port }, "periodSeconds": 1 });
        }
        if !self.ports.is_empty() {
            c["ports"] = json!(
                self.ports
                    .iter()
                    .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
                    .collect::<Vec<_>>()
            );
        }
        c
    }
}

/// A volume of a workload's pods.
#[derive(Debug, Clone)]
pub struct Volume {
    pub(crate) name: String,
    host_path: Option<String>,
}

impl Volume {
    /// An `emptyDir`: a Docker volume made for each pod and removed with it.
    pub fn empty_dir(name: &str) -> Volume {
        Volume {
            name: name.to_string(),
            host_path: None,
        }
    }

    /// A `hostPath`: a directory of this machine mounted into the containers.
    pub fn host_path(name: &str, path: &str) -> Volume {
        Volume {
            name: name.to_string(),
            host_path: Some(path.to_string()),
        }
    }

    fn object(&self) -> Value {
        match &self.host_path {
            Some(path) => {
                json!({ "name": self.name, "hostPath": { "path": path, "type": "Directory" } })
            }
            None => json!({ "name": self.name, "emptyDir": {} }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_of_a_workload() {
        let w = Workload::new("shop", "web")
            .label("tier", "front")
            .volume(Volume::empty_dir("data"))
            .container(
                Container::new("app")
                    .shell("echo hi")
                    .mount("data", "/data")
                    .env("A", "1"),
            );
        w.check().expect("valid");
        let pod = w.pod("web-abcde", "node-a");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(pod["metadata"]["labels"]["tier"], "front");
        assert_eq!(pod["spec"]["nodeName"], "node-a");
        assert_eq!(
            pod["spec"]["containers"][0]["command"],
            json!(["sh", "-c", "echo hi"])
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            "/data"
        );
        assert_eq!(pod["spec"]["volumes"][0]["emptyDir"], json!({}));
        let idle = Workload::new("shop", "db").pod("db-x", "n");
        assert_eq!(idle["spec"]["containers"][0]["name"], "app");
    }

    #[test]
    fn invalid_declarations() {
        assert!(Workload::new("Shop", "web").check().is_err());
        assert!(
            Workload::new("shop", "web")
                .label("bad key!", "x")
                .check()
                .is_err()
        );
        let unmounted =
            Workload::new("shop", "web").container(Container::new("a").mount("nope", "/x"));
        assert!(unmounted.check().is_err());
        let twice = Workload::new("shop", "web")
            .container(Container::new("a"))
            .container(Container::new("a"));
        assert!(twice.check().is_err());
        assert!(Node::new("Node_A").check().is_err());
        assert!(Node::new("node-a").label("pool", "dev").check().is_ok());
    }
}
