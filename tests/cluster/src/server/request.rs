//! What a request asks for: the API server's "request info" (verb, resource, namespace,
//! name, subresource) read from the method, path and query.

use std::collections::HashMap;

use http::Method;

use crate::discovery::{self, ResourceType};
use crate::status::ApiError;

/// A request for discovery or for objects.
#[derive(Debug)]
pub(crate) enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`.
    Resources {
        /// The group (`""` for the core group).
        group: String,
        /// The version.
        version: String,
    },
    /// Objects of one kind.
    Objects(ObjectRequest),
}

/// A request about objects of one kind.
#[derive(Debug)]
pub(crate) struct ObjectRequest {
    /// The kind.
    pub(crate) resource: &'static ResourceType,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`).
    pub(crate) verb: &'static str,
    /// The namespace in the path (none: cluster-scoped, or all namespaces).
    pub(crate) namespace: Option<String>,
    /// The object's name.
    pub(crate) name: Option<String>,
    /// The subresource (`portforward`, `status`).
    pub(crate) subresource: Option<String>,
}

/// The query parameters (the last value wins; `ports` keeps every value).
#[derive(Debug, Default)]
pub(crate) struct Query {
    values: HashMap<String, String>,
    ports: Vec<String>,
}

impl Query {
    /// Parses a query string.
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let mut out = Query::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if k == "ports" {
                out.ports.push(v.to_string());
            }
            out.values.insert(k.into_owned(), v.into_owned());
        }
        out
    }

    /// One parameter.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true` or `1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// Every port of a port-forward (`ports=a,b` or `ports=a&ports=b`).
    pub(crate) fn ports(&self) -> Result<Vec<u16>, ApiError> {
        let mut out = Vec::new();
        for p in self.ports.iter().flat_map(|v| v.split(',')) {
            let port: u16 = p
                .trim()
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid port \"{p}\"")))?;
            out.push(port);
        }
        if out.is_empty() {
            return Err(ApiError::bad_request("at least one port must be specified"));
        }
        Ok(out)
    }
}

/// Reads the target of a request.
pub(crate) fn parse(method: &Method, path: &str, query: &Query) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["healthz" | "livez" | "readyz"] => return Ok(Target::Health),
        ["api"] => return Ok(Target::CoreVersions),
        ["apis"] => return Ok(Target::Groups),
        ["apis", group] => return Ok(Target::Group(group.to_string())),
        ["api", version] => {
            return Ok(Target::Resources {
                group: String::new(),
                version: version.to_string(),
            });
        }
        ["apis", group, version] => {
            return Ok(Target::Resources {
                group: group.to_string(),
                version: version.to_string(),
            });
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route(path)),
    };
    // `namespaces/<ns>/<resource>/...` is a namespaced request, except the namespace's own
    // subresources.
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, ..] if !matches!(*resource, "status" | "finalize") => {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::no_route(path)),
    };
    let resource =
        discovery::find(group, version, plural).ok_or_else(|| ApiError::no_route(path))?;
    let all_namespaces = resource.namespaced && namespace.is_none();
    if (!resource.namespaced && namespace.is_some())
        || (all_namespaces && (name.is_some() || method != Method::GET))
    {
        return Err(ApiError::no_route(path));
    }
    if let Some(sub) = &subresource
        && !resource.subresources.iter().any(|(s, _)| s == sub)
    {
        return Err(ApiError::no_route(path));
    }
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if query.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_supported(format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            )));
        }
    };
    Ok(Target::Objects(ObjectRequest {
        resource,
        verb,
        namespace,
        name,
        subresource,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(method: Method, path: &str, query: &str) -> ObjectRequest {
        match parse(&method, path, &Query::parse(Some(query))).expect("parses") {
            Target::Objects(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn object_paths() {
        let r = objects(Method::GET, "/api/v1/namespaces/default/pods", "watch=true");
        assert_eq!(
            (r.resource.plural, r.verb, r.namespace.as_deref()),
            ("pods", "watch", Some("default"))
        );
        let r = objects(Method::GET, "/api/v1/pods", "");
        assert_eq!((r.verb, r.namespace), ("list", None));
        let r = objects(Method::GET, "/api/v1/namespaces/ksync", "");
        assert_eq!(
            (r.resource.plural, r.name.as_deref()),
            ("namespaces", Some("ksync"))
        );
        let r = objects(
            Method::GET,
            "/api/v1/namespaces/ksync/pods/a/portforward",
            "ports=1",
        );
        assert_eq!(r.subresource.as_deref(), Some("portforward"));
        let r = objects(
            Method::PATCH,
            "/apis/apps/v1/namespaces/ksync/daemonsets/agent",
            "",
        );
        assert_eq!((r.resource.kind, r.verb), ("DaemonSet", "patch"));
        let r = objects(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "",
        );
        assert_eq!(r.verb, "create");
        let r = objects(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
            "",
        );
        assert_eq!((r.resource.kind, r.namespace), ("ClusterRole", None));
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/api/v1/widgets",
            "/apis/apps/v1/daemonsets/x",
            "/api/v1/namespaces/a/pods/b/exec",
            "/api/v1/namespaces/a/pods/b/c/d",
            "/nothing",
        ] {
            let err = parse(&Method::GET, path, &Query::default()).expect_err(path);
            assert_eq!(err.code, 404, "{path}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(
            Query::parse(Some("ports=80,8080&ports=9"))
                .ports()
                .expect("ports"),
            [80, 8080, 9]
        );
        assert!(Query::parse(Some("ports=x")).ports().is_err());
        assert!(Query::parse(None).ports().is_err());
    }
}
