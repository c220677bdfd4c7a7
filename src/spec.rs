//! Specs: which local folder goes to which path of which containers, and how.
//!
//! A [`Spec`] is fully validated: its name is a DNS-1123 label, it targets exactly one pod
//! name or one label selector, its local path is absolute, and its remote path is absolute and
//! normalised (or a template that is rendered and validated per matched container, see
//! [`RemotePath`]). The [`SpecList`] is what the rest of ksync works from; it is built by
//! [`crate::config::load`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::names;
use crate::selector::LabelSelector;
use crate::template::{ContainerContext, Renderer, TemplateError};

/// All specs of the merged configuration, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct SpecList {
    specs: Vec<Spec>,
}

impl SpecList {
    /// A list of already validated specs.
    pub fn new(specs: Vec<Spec>) -> Self {
        SpecList { specs }
    }

    /// The specs, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Spec> {
        self.specs.iter()
    }

    /// The spec with this name.
    pub fn get(&self, name: &str) -> Option<&Spec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Number of specs.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True when there is no spec.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// One sync: a local folder and a path in every container the target matches.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// Unique name (DNS-1123 label).
    pub name: String,
    /// Which pods.
    pub target: Target,
    /// Container name; `None` means the pod's first container.
    pub container: Option<String>,
    /// Namespace; `None` means the kube context's namespace.
    pub namespace: Option<String>,
    /// Absolute local folder.
    pub local_path: PathBuf,
    /// Path inside the container.
    pub remote_path: RemotePath,
    /// Reload the container when a local change has landed.
    pub reload: bool,
    /// Which side may change which.
    pub direction: Direction,
    /// Ignore patterns (gitignore-like), relative to the local folder.
    pub ignore: Vec<String>,
    /// Where the spec and each of its values came from.
    pub origin: Origin,
}

/// How a spec picks pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly the pod with this name.
    Pod(String),
    /// Every pod matching the selector.
    Selector(LabelSelector),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod(name) => write!(f, "pod {name}"),
            Target::Selector(s) => write!(f, "pods matching {s}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Target::Pod(name) => map.serialize_entry("pod", name)?,
            Target::Selector(sel) => map.serialize_entry("selector", &sel.to_string())?,
        }
        map.end()
    }
}

/// Which way changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Changes flow both ways.
    TwoWay,
    /// The local folder is never written: local changes go to the container only
    /// (`localreadonly`).
    LocalReadOnly,
    /// The container path is never written: container changes come to the local folder only
    /// (`remotereadonly`).
    RemoteReadOnly,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::TwoWay => "two-way",
            Direction::LocalReadOnly => "local → container (local read-only)",
            Direction::RemoteReadOnly => "container → local (remote read-only)",
        })
    }
}

/// The path inside the container.
#[derive(Debug, Clone)]
pub enum RemotePath {
    /// Known at load.
    Fixed(ContainerPath),
    /// Uses `pod`, `node` or `container`: rendered per matched container.
    PerContainer {
        /// The template.
        template: String,
        /// Renders it.
        renderer: Renderer,
    },
}

impl RemotePath {
    /// The path for one matched container; rendered results are validated like literal ones,
    /// so they can never escape with `..`.
    pub fn for_container(
        &self,
        container: &ContainerContext,
    ) -> Result<ContainerPath, RemotePathError> {
        match self {
            RemotePath::Fixed(path) => Ok(path.clone()),
            RemotePath::PerContainer { template, renderer } => {
                let rendered = renderer
                    .render_for_container("remotepath", template, container)
                    .map_err(RemotePathError::Template)?;
                ContainerPath::parse(&rendered)
                    .map_err(|reason| RemotePathError::Invalid { rendered, reason })
            }
        }
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemotePath::Fixed(p) => write!(f, "{p}"),
            RemotePath::PerContainer { template, .. } => f.write_str(template),
        }
    }
}

impl Serialize for RemotePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A per-container remote path could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemotePathError {
    /// The template failed.
    #[error(transparent)]
    Template(TemplateError),
    /// The rendered path is not a usable container path.
    #[error("remotepath rendered to `{rendered}`, which {reason}")]
    Invalid {
        /// What the template produced.
        rendered: String,
        /// Why it is refused.
        reason: String,
    },
}

/// An absolute, normalised path inside a container: starts with `/`, has no `.`, `..` or empty
/// segments, no trailing `/`, and is not `/` itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ContainerPath(String);

impl ContainerPath {
    /// Validates `s`. The error is a sentence fragment ("is not absolute; …") that includes
    /// the fix when one is obvious.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains('\0') {
            return Err("contains a NUL character".into());
        }
        if !s.starts_with('/') {
            return Err(format!(
                "is not absolute; container paths start with `/`, e.g. `/{}`",
                s.trim_start_matches("./")
            ));
        }
        let trimmed = if s.len() > 1 {
            s.trim_end_matches('/')
        } else {
            s
        };
        if trimmed.is_empty() || trimmed == "/" {
            return Err(
                "is the container's root; sync into a folder such as `/app` instead".into(),
            );
        }
        let segments: Vec<&str> = trimmed[1..].split('/').collect();
        if segments
            .iter()
            .any(|seg| seg.is_empty() || *seg == "." || *seg == "..")
        {
            return Err(match normalise(&segments) {
                Some(clean) => format!("is not normalised; write `{clean}`"),
                None => "escapes the container's root with `..`".into(),
            });
        }
        Ok(ContainerPath(trimmed.to_string()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn normalise(segments: &[&str]) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in segments {
        match *seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(format!("/{}", out.join("/")))
}

impl fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value a spec rule refuses: what is wrong and how to fix it. The config files and
/// `ksync create` apply the same rules through the `check_*` functions below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Refusal {
    fn new(message: String, help: impl Into<String>) -> Self {
        Refusal {
            message,
            help: help.into(),
        }
    }
}

/// A spec name must be a DNS-1123 label.
pub fn check_name(name: &str) -> Result<(), Refusal> {
    names::check_dns1123_label(name).map_err(|reason| {
        let fix = crate::template::slug(name, names::DNS1123_LABEL_MAX);
        let example = if fix.is_empty() { "web".to_string() } else { fix };
        Refusal::new(
            format!("spec name `{name}` is not a DNS-1123 label: {reason}"),
            format!(
                "use lowercase letters, digits and '-', e.g. `{example}`; in templates, the `slug` filter makes any text fit"
            ),
        )
    })
}

/// A pod name must be a DNS-1123 subdomain.
pub fn check_pod(pod: &str) -> Result<(), Refusal> {
    names::check_dns1123_subdomain(pod).map_err(|reason| {
        Refusal::new(
            format!("pod name `{pod}` is not valid: {reason}"),
            "use the pod's name as `kubectl get pods` shows it",
        )
    })
}

/// A container name must be a DNS-1123 label.
pub fn check_container(container: &str) -> Result<(), Refusal> {
    names::check_dns1123_label(container).map_err(|reason| {
        Refusal::new(
            format!("container name `{container}` is not valid: {reason}"),
            "use a container name from the pod spec, or leave it out to use the pod's first container",
        )
    })
}

/// A namespace must be a DNS-1123 label.
pub fn check_namespace(namespace: &str) -> Result<(), Refusal> {
    names::check_dns1123_label(namespace).map_err(|reason| {
        Refusal::new(
            format!("namespace `{namespace}` is not valid: {reason}"),
            "namespaces are DNS-1123 labels such as `dev`",
        )
    })
}

/// A selector must follow the Kubernetes label selector grammar.
pub fn parse_selector(selector: &str) -> Result<LabelSelector, Refusal> {
    LabelSelector::parse(selector).map_err(|e| {
        Refusal::new(
            format!("selector `{selector}` is not a valid label selector: {e}"),
            "write requirements separated by commas: `app=web`, `tier!=db`, `env in (dev,qa)`, `env notin (prod)`, `canary`, `!canary`",
        )
    })
}

/// A remote path must be an absolute, normalised container path; `shown` is how the value
/// is named in the message (the template and what it rendered to, when they differ).
pub fn check_remote_path(path: &str, shown: &str) -> Result<ContainerPath, Refusal> {
    ContainerPath::parse(path).map_err(|reason| {
        Refusal::new(
            format!("remotepath {shown} {reason}"),
            "remotepath is an absolute, normalised path inside the container, such as `/app`",
        )
    })
}

/// Where a spec was declared and where each of its effective values came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Origin {
    /// The lowest-precedence file that declares the spec (where it "lives").
    pub declared_in: String,
    /// Every source that contributed a value, lowest precedence first.
    pub sources: Vec<String>,
    /// For each field that was set: the source of its effective value.
    pub fields: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(ContainerPath::parse("/app").expect("ok").as_str(), "/app");
        assert_eq!(
            ContainerPath::parse("/app/src/").expect("ok").as_str(),
            "/app/src"
        );
        let cases = [
            (
                "app",
                "is not absolute; container paths start with `/`, e.g. `/app`",
            ),
            (
                "/",
                "is the container's root; sync into a folder such as `/app` instead",
            ),
            ("/app/../etc", "is not normalised; write `/etc`"),
            ("/app//src", "is not normalised; write `/app/src`"),
            ("/app/./src", "is not normalised; write `/app/src`"),
            ("/../etc", "escapes the container's root with `..`"),
            ("/app/../..", "escapes the container's root with `..`"),
        ];
        for (input, message) in cases {
            assert_eq!(
                ContainerPath::parse(input).expect_err(input),
                message,
                "{input}"
            );
        }
    }

    #[test]
    fn per_container_paths_are_validated_after_rendering() {
        let renderer = crate::template::renderer_for(std::path::Path::new("/nonexistent/p"));
        let path = RemotePath::PerContainer {
            template: "/srv/{{ pod.annotations.dir }}".into(),
            renderer,
        };
        let mut ctx = ContainerContext::default();
        ctx.pod.annotations.insert("dir".into(), "web".into());
        assert_eq!(path.for_container(&ctx).expect("ok").as_str(), "/srv/web");
        ctx.pod.annotations.insert("dir".into(), "../../etc".into());
        let e = path.for_container(&ctx).expect_err("escapes");
        assert_eq!(
            e.to_string(),
            "remotepath rendered to `/srv/../../etc`, which escapes the container's root with `..`"
        );
    }
}
