//! The kinds the test cluster serves, and the discovery documents (`/api`, `/apis`,
//! `/api/v1`, `/apis/<group>/<version>`) that tell clients about them.

use serde_json::{Value, json};

/// The Kubernetes version the server reports.
pub(crate) const SERVER_VERSION: (&str, &str) = ("1", "32");

/// One resource type: where it lives in the API and what may be done with it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ResourceType {
    /// API group (`""` for the core group).
    pub(crate) group: &'static str,
    /// API version.
    pub(crate) version: &'static str,
    /// Plural name in paths (`pods`).
    pub(crate) plural: &'static str,
    /// Singular name.
    pub(crate) singular: &'static str,
    /// `kind` of its objects.
    pub(crate) kind: &'static str,
    /// Objects live in a namespace.
    pub(crate) namespaced: bool,
    /// Verbs served on it.
    pub(crate) verbs: &'static [&'static str],
    /// `kubectl` short names.
    pub(crate) short_names: &'static [&'static str],
    /// Categories (`all`).
    pub(crate) categories: &'static [&'static str],
    /// Subresources served (`portforward`, `status`).
    pub(crate) subresources: &'static [(&'static str, &'static [&'static str])],
}

impl ResourceType {
    /// `apiVersion` of its objects.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, or `daemonsets.apps`: how error messages name the resource.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// True when objects of this kind have a `spec` whose changes bump `generation`.
    pub(crate) fn has_generation(&self) -> bool {
        matches!(self.kind, "DaemonSet" | "Pod")
    }
}

const ALL: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// Every resource type the server knows.
pub(crate) static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: ALL,
        short_names: &["ns"],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: &["get", "list", "watch"],
        short_names: &["no"],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: &["delete", "get", "list", "patch", "watch"],
        short_names: &["po"],
        categories: &["all"],
        subresources: &[("portforward", &["create", "get"]), ("status", &["get"])],
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        verbs: ALL,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        verbs: ALL,
        short_names: &["sa"],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        verbs: ALL,
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[("status", &["get"])],
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        verbs: ALL,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        verbs: ALL,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        verbs: ALL,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        verbs: ALL,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
];

/// The resource type `plural` of `group`/`version`.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource type of `kind` in `group`.
pub(crate) fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Shorthand for the resource types the cluster itself reads and writes.
pub(crate) fn core(plural: &str) -> &'static ResourceType {
    RESOURCES
        .iter()
        .find(|r| r.plural == plural)
        .unwrap_or_else(|| panic!("unknown resource {plural}"))
}

/// The API groups other than the core group, in discovery order.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `/version`.
pub(crate) fn version() -> Value {
    let (major, minor) = SERVER_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-ksync-test"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

/// `/apis`.
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
            json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/<group>`.
pub(crate) fn group(name: &str) -> Option<Value> {
    let (group, version) = groups().into_iter().find(|(g, _)| *g == name)?;
    let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    }))
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for (sub, verbs) in r.subresources {
            let kind = match *sub {
                "portforward" => "PodPortForwardOptions",
                _ => r.kind,
            };
            resources.push(json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_a_resource_list() {
        for (group, version) in groups() {
            let list = resource_list(group, version).expect("resources");
            assert_eq!(list["groupVersion"], format!("{group}/{version}"));
            assert!(
                group_list()["groups"]
                    .as_array()
                    .expect("groups")
                    .iter()
                    .any(|g| g["name"] == group)
            );
        }
        let core = resource_list("", "v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/portforward"), "{names:?}");
        assert!(resource_list("apps", "v2").is_none());
    }

    #[test]
    fn kinds_are_found_by_group() {
        assert_eq!(
            by_kind("apps", "DaemonSet").map(|r| r.plural),
            Some("daemonsets")
        );
        assert!(by_kind("", "DaemonSet").is_none());
        assert_eq!(core("pods").qualified(), "pods");
        assert_eq!(
            find("rbac.authorization.k8s.io", "v1", "roles").map(|r| r.qualified()),
            Some("roles.rbac.authorization.k8s.io".to_string())
        );
    }
}
