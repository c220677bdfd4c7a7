//! The ksync agent as Kubernetes objects: the DaemonSet that runs radar and Syncthing on
//! every node, and its namespace, ServiceAccount, Secret and the RBAC ksync's users need.
//!
//! The sources are the minijinja templates in `templates/agent/`, embedded at compile time.
//! `ksync init` applies what [`render`] returns (server-side apply, field manager `ksync`).

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::names::check_dns1123_label;

/// The templates, in the order their objects are applied.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "namespace.yaml.j2",
        include_str!("../templates/agent/namespace.yaml.j2"),
    ),
    (
        "serviceaccount.yaml.j2",
        include_str!("../templates/agent/serviceaccount.yaml.j2"),
    ),
    (
        "rbac.yaml.j2",
        include_str!("../templates/agent/rbac.yaml.j2"),
    ),
    (
        "secret.yaml.j2",
        include_str!("../templates/agent/secret.yaml.j2"),
    ),
    (
        "daemonset.yaml.j2",
        include_str!("../templates/agent/daemonset.yaml.j2"),
    ),
];

/// Label every agent object carries; `ksync clean` finds them by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "ksync");
/// Label selecting the agent pods.
pub const COMPONENT: (&str, &str) = ("app.kubernetes.io/name", "ksync-agent");

/// How the agent is installed. [`AgentSettings::default`] is what `ksync init` uses when
/// nothing is configured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentSettings {
    /// Namespace of the agent (created if missing).
    pub namespace: String,
    /// Name of the DaemonSet, ServiceAccount and Secret.
    pub name: String,
    /// The agent image (`deploy/build-agent-image.sh` builds it).
    pub image: String,
    /// `IfNotPresent`, `Always` or `Never`.
    pub image_pull_policy: String,
    /// The API key of the agents' Syncthing.
    pub api_key: String,
    /// Tolerations of the agent pods (default: tolerate every taint, so an agent runs wherever
    /// workloads may run).
    pub tolerations: Vec<serde_json::Value>,
    /// Node selector of the agent pods.
    pub node_selector: BTreeMap<String, String>,
    /// Resources of the two containers.
    pub resources: AgentResources,
    /// Host path of the Docker socket to mount into radar, on Docker nodes.
    pub docker_socket: Option<String>,
    /// Host path of containerd's socket to mount into radar (for the runtime's version).
    pub containerd_socket: Option<String>,
    /// Host directory keeping each node's Syncthing identity and database across restarts.
    pub state_dir: String,
    /// radar's log level.
    pub log_level: String,
}

/// Resource requests and limits of the agent's containers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentResources {
    /// For radar.
    pub radar: serde_json::Value,
    /// For Syncthing.
    pub syncthing: serde_json::Value,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            namespace: "ksync".into(),
            name: "ksync-agent".into(),
            image: format!("ksync/agent:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".into(),
            api_key: String::new(),
            tolerations: vec![serde_json::json!({ "operator": "Exists" })],
            node_selector: [("kubernetes.io/os".to_string(), "linux".to_string())].into(),
            resources: AgentResources {
                radar: serde_json::json!({
                    "requests": { "cpu": "10m", "memory": "32Mi" },
                    "limits": { "memory": "128Mi" },
                }),
                syncthing: serde_json::json!({
                    "requests": { "cpu": "50m", "memory": "128Mi" },
                    "limits": { "memory": "1Gi" },
                }),
            },
            docker_socket: None,
            containerd_socket: None,
            state_dir: "/var/lib/ksync/syncthing".into(),
            log_level: "info".into(),
        }
    }
}

/// Agent settings from the configuration files' `[agent]` table (and `ksync init` flags);
/// what is unset keeps [`AgentSettings::default`].
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AgentConfig {
    /// `namespace`.
    pub namespace: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `image-pull-policy`.
    pub image_pull_policy: Option<String>,
    /// `docker-socket`.
    pub docker_socket: Option<String>,
    /// `containerd-socket`.
    pub containerd_socket: Option<String>,
    /// `state-dir`.
    pub state_dir: Option<String>,
    /// `log-level`.
    pub log_level: Option<String>,
    /// `node-selector`.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// `tolerations`.
    pub tolerations: Option<Vec<serde_json::Value>>,
    /// `resources`: `{ radar = {…}, syncthing = {…} }`.
    pub resources: Option<serde_json::Value>,
}

impl AgentConfig {
    /// `base` with every setting this config sets.
    pub fn apply(&self, mut base: AgentSettings) -> AgentSettings {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        if let Some(v) = text(&self.namespace) {
            base.namespace = v;
        }
        if let Some(v) = text(&self.name) {
            base.name = v;
        }
        if let Some(v) = text(&self.image) {
            base.image = v;
        }
        if let Some(v) = text(&self.image_pull_policy) {
            base.image_pull_policy = v;
        }
        if let Some(v) = text(&self.docker_socket) {
            base.docker_socket = Some(v);
        }
        if let Some(v) = text(&self.containerd_socket) {
            base.containerd_socket = Some(v);
        }
        if let Some(v) = text(&self.state_dir) {
            base.state_dir = v;
        }
        if let Some(v) = text(&self.log_level) {
            base.log_level = v;
        }
        if let Some(v) = &self.node_selector {
            base.node_selector = v.clone();
        }
        if let Some(v) = &self.tolerations {
            base.tolerations = v.clone();
        }
        if let Some(resources) = &self.resources {
            if let Some(radar) = resources.get("radar") {
                base.resources.radar = radar.clone();
            }
            if let Some(syncthing) = resources.get("syncthing") {
                base.resources.syncthing = syncthing.clone();
            }
        }
        base
    }
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its `kind`.
    pub kind: String,
    /// Its `metadata.name`.
    pub name: String,
    /// The YAML document.
    pub yaml: String,
}

/// The settings cannot make valid manifests.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AgentError {
    /// A setting is invalid.
    #[error("agent setting `{setting}` is invalid: {reason}")]
    #[diagnostic(code(ksync::agent::invalid), help("{help}"))]
    Invalid {
        /// Which setting.
        setting: &'static str,
        /// Why.
        reason: String,
        /// How to fix it.
        help: String,
    },
    /// A template failed to render (a bug in ksync's templates).
    #[error("the agent template {template} failed to render: {source}")]
    #[diagnostic(code(ksync::agent::template))]
    Template {
        /// Which template.
        template: &'static str,
        /// minijinja's error.
        #[source]
        source: minijinja::Error,
    },
}

impl AgentSettings {
    fn check(&self) -> Result<(), AgentError> {
        let invalid = |setting, reason: String, help: &str| AgentError::Invalid {
            setting,
            reason,
            help: help.to_string(),
        };
        check_dns1123_label(&self.namespace)
            .map_err(|r| invalid("namespace", r, "use a DNS-1123 label such as `ksync`"))?;
        check_dns1123_label(&self.name)
            .map_err(|r| invalid("name", r, "use a DNS-1123 label such as `ksync-agent`"))?;
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return Err(invalid(
                "image",
                format!("`{}` is not an image reference", self.image),
                "build one with deploy/build-agent-image.sh and give its tag",
            ));
        }
        if !["IfNotPresent", "Always", "Never"].contains(&self.image_pull_policy.as_str()) {
            return Err(invalid(
                "image-pull-policy",
                format!("`{}` is not a pull policy", self.image_pull_policy),
                "use IfNotPresent, Always or Never",
            ));
        }
        if self.api_key.len() < 16 || !self.api_key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "api-key",
                "it must be at least 16 letters and digits".into(),
                "let ksync init generate it",
            ));
        }
        if let Some(bad) = self.tolerations.iter().find(|t| !t.is_object()) {
            return Err(invalid(
                "tolerations",
                format!("`{bad}` is not a toleration object"),
                "give tolerations as objects, e.g. {\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}",
            ));
        }
        for (setting, path) in [
            ("state-dir", Some(&self.state_dir)),
            ("docker-socket", self.docker_socket.as_ref()),
            ("containerd-socket", self.containerd_socket.as_ref()),
        ] {
            if let Some(path) = path
                && !path.starts_with('/')
            {
                return Err(invalid(
                    setting,
                    format!("`{path}` is not an absolute host path"),
                    "give an absolute path on the nodes",
                ));
            }
        }
        Ok(())
    }

    /// The ClusterRole for ksync's users. Cluster-wide names must not collide between
    /// installs in different namespaces, so it carries the namespace.
    pub fn cluster_role_name(&self) -> String {
        format!("{}-user-{}", self.name, self.namespace)
    }

    /// Labels of every object.
    fn labels(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (MANAGED_BY.0, MANAGED_BY.1.to_string()),
            ("app.kubernetes.io/part-of", "ksync".to_string()),
            (COMPONENT.0, COMPONENT.1.to_string()),
            ("app.kubernetes.io/instance", self.name.clone()),
            (
                "app.kubernetes.io/version",
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ])
    }
}

/// Renders every agent object, in the order to apply them.
pub fn render(settings: &AgentSettings) -> Result<Vec<Manifest>, AgentError> {
    settings.check()?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Values are quoted explicitly (`| tojson`) where they are free text; names are checked
    // DNS-1123 labels.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let labels = settings.labels();
    let selector: BTreeMap<&str, String> = labels
        .iter()
        .filter(|(k, _)| [COMPONENT.0, "app.kubernetes.io/instance"].contains(*k))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let ctx = Value::from(minijinja::value::Serde(settings));
    let ctx = minijinja::context! {
        labels => labels,
        selector => selector,
        cluster_role => settings.cluster_role_name(),
        radar_port => radar_proto::DEFAULT_PORT,
        gui_port => 8384,
        sync_port => 22000,
        ..ctx
    };
    let mut out = Vec::new();
    for (name, source) in TEMPLATES {
        let rendered =
            env.render_named_str(name, source, &ctx)
                .map_err(|source| AgentError::Template {
                    template: name,
                    source,
                })?;
        for doc in rendered.split("\n---\n") {
            let yaml = format!("{}\n", doc.trim_matches('\n'));
            let kind = field(&yaml, "kind").unwrap_or_default();
            let name = field(&yaml, "  name").unwrap_or_default();
            out.push(Manifest { kind, name, yaml });
        }
    }
    Ok(out)
}

/// All manifests as one multi-document YAML stream (`ksync init --dry-run`).
pub fn to_yaml_stream(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| m.yaml.as_str())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The value of the first line `key: value` at exactly that indentation.
fn field(yaml: &str, key: &str) -> Option<String> {
    yaml.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings {
            api_key: "k5u1KjXHbUn4mTRw9cVZ2eQp".into(),
            ..AgentSettings::default()
        }
    }

    #[test]
    fn default_manifests() {
        let manifests = render(&settings()).expect("renders");
        let kinds: Vec<(&str, &str)> = manifests
            .iter()
            .map(|m| (m.kind.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Namespace", "ksync"),
                ("ServiceAccount", "ksync-agent"),
                ("ClusterRole", "ksync-agent-user-ksync"),
                ("Role", "ksync-agent-user"),
                ("Secret", "ksync-agent"),
                ("DaemonSet", "ksync-agent"),
            ]
        );
        insta::assert_snapshot!("agent_default", to_yaml_stream(&manifests));
    }

    #[test]
    fn configured_manifests() {
        let manifests = render(&AgentSettings {
            namespace: "dev-tools".into(),
            image: "registry.local/ksync/agent:0.1.0-rc1".into(),
            image_pull_policy: "Always".into(),
            tolerations: vec![
                serde_json::json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}),
            ],
            node_selector: [("pool".to_string(), "dev".to_string())].into(),
            resources: AgentResources {
                radar: serde_json::json!({"requests": {"cpu": "5m"}}),
                syncthing: serde_json::json!({"limits": {"memory": "2Gi"}}),
            },
            docker_socket: Some("/var/run/docker.sock".into()),
            containerd_socket: Some("/run/containerd/containerd.sock".into()),
            ..settings()
        })
        .expect("renders");
        let daemonset = manifests.last().expect("daemonset");
        insta::assert_snapshot!("agent_daemonset_configured", daemonset.yaml);
    }

    #[test]
    fn every_manifest_is_valid_yaml_with_kind_and_name() {
        for m in render(&settings()).expect("renders") {
            let doc: serde_json::Value = serde_saphyr::from_str(&m.yaml)
                .unwrap_or_else(|e| panic!("{} {} is not YAML: {e}\n{}", m.kind, m.name, m.yaml));
            assert_eq!(doc["kind"], m.kind.as_str());
            assert_eq!(doc["metadata"]["name"], m.name.as_str());
            assert_eq!(doc["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            AgentSettings {
                namespace: "Bad_NS".into(),
                ..settings()
            },
            AgentSettings {
                image: "".into(),
                ..settings()
            },
            AgentSettings {
                image_pull_policy: "Sometimes".into(),
                ..settings()
            },
            AgentSettings {
                api_key: "short".into(),
                ..settings()
            },
            AgentSettings {
                tolerations: vec![serde_json::json!("gpu")],
                ..settings()
            },
            AgentSettings {
                state_dir: "var/lib".into(),
                ..settings()
            },
        ] {
            assert!(
                matches!(render(&bad), Err(AgentError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
