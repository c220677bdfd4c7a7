//! Authorization: everything is allowed unless a test denies it. A denied permission is
//! refused on real requests (`403 Forbidden`, worded as the API server words it) and reported
//! as not allowed by `SelfSubjectAccessReview`, so `ksync doctor` sees the same answer either
//! way.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::status::ApiError;

/// The user every request is made as.
pub const USER: &str = "ksync-test";

/// A permission, as RBAC rules name them: a verb on a resource (optionally a subresource) of
/// an API group, in one namespace or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    namespace: Option<String>,
}

impl Permission {
    /// `verb` on `resource`, written as kubectl writes it: `pods`, `pods/portforward`,
    /// `daemonsets.apps`, `roles.rbac.authorization.k8s.io`. `*` matches anything.
    pub fn new(verb: &str, resource: &str) -> Permission {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
        Permission {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: None,
        }
    }

    /// Only in `namespace` (default: in every namespace and at the cluster scope).
    pub fn in_namespace(mut self, namespace: &str) -> Permission {
        self.namespace = Some(namespace.to_string());
        self
    }

    fn covers(&self, request: &Attributes<'_>) -> bool {
        let field = |rule: &str, value: &str| rule == "*" || rule == value;
        field(&self.verb, request.verb)
            && field(&self.group, request.group)
            && field(&self.resource, request.resource)
            && field(&self.subresource, request.subresource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| request.namespace == Some(ns))
    }
}

/// What a request does, as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attributes<'a> {
    pub(crate) verb: &'a str,
    pub(crate) group: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
}

/// The permissions tests have denied.
#[derive(Debug, Default)]
pub(crate) struct Access {
    denied: Mutex<Vec<Permission>>,
}

impl Access {
    /// Refuses `permission` from now on.
    pub(crate) fn deny(&self, permission: Permission) {
        self.lock().push(permission);
    }

    /// Allows everything again.
    pub(crate) fn allow_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Permission>> {
        self.denied.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn denied(&self, request: &Attributes<'_>) -> bool {
        self.lock().iter().any(|p| p.covers(request))
    }

    /// `403` when the request is denied.
    pub(crate) fn check(&self, request: &Attributes<'_>) -> Result<(), ApiError> {
        if !self.denied(request) {
            return Ok(());
        }
        let resource = if request.group.is_empty() {
            request.resource.to_string()
        } else {
            format!("{}.{}", request.resource, request.group)
        };
        let subject = match request.name {
            Some(name) => format!("{resource} \"{name}\""),
            None => resource,
        };
        let full = if request.subresource.is_empty() {
            request.resource.to_string()
        } else {
            format!("{}/{}", request.resource, request.subresource)
        };
        let scope = match request.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Err(ApiError::forbidden(format!(
            "{subject} is forbidden: User \"{USER}\" cannot {} resource \"{full}\" in API group \"{}\" {scope}",
            request.verb, request.group
        )))
    }

    /// Answers a `SelfSubjectAccessReview`: the review with its `status` filled in.
    pub(crate) fn review(&self, review: &Value) -> Result<Value, ApiError> {
        let spec = &review["spec"];
        let mut out = review.clone();
        let allowed = if let Some(attrs) = spec["resourceAttributes"].as_object() {
            let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default();
            let namespace = Some(text("namespace")).filter(|ns| !ns.is_empty());
            let name = Some(text("name")).filter(|n| !n.is_empty());
            !self.denied(&Attributes {
                verb: text("verb"),
                group: text("group"),
                resource: text("resource"),
                subresource: text("subresource"),
                namespace,
                name,
            })
        } else if spec["nonResourceAttributes"].is_object() {
            true
        } else {
            return Err(ApiError::invalid(
                "selfsubjectaccessreviews.authorization.k8s.io",
                "",
                "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        };
        out["status"] = if allowed {
            json!({ "allowed": true, "reason": "the ksync test cluster allows everything not denied by the test" })
        } else {
            json!({ "allowed": false, "reason": "denied by the test" })
        };
        if out["metadata"].is_null() {
            out["metadata"] = json!({});
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            subresource: sub,
            namespace: ns,
            name: None,
        }
    }

    #[test]
    fn denials_are_403_worded_like_the_api_server() {
        let access = Access::default();
        assert!(
            access
                .check(&attrs("list", "pods", "", Some("default")))
                .is_ok()
        );
        access.deny(Permission::new("list", "pods").in_namespace("default"));
        let err = access
            .check(&attrs("list", "pods", "", Some("default")))
            .expect_err("denied");
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "pods is forbidden: User \"ksync-test\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert!(
            access
                .check(&attrs("list", "pods", "", Some("other")))
                .is_ok()
        );
        assert!(access.check(&attrs("list", "pods", "", None)).is_ok());

        access.deny(Permission::new("create", "pods/portforward"));
        assert!(
            access
                .check(&attrs("create", "pods", "portforward", Some("x")))
                .is_err()
        );
        assert!(access.check(&attrs("get", "pods", "", Some("x"))).is_ok());
        access.allow_all();
        assert!(
            access
                .check(&attrs("list", "pods", "", Some("default")))
                .is_ok()
        );
    }

    #[test]
    fn reviews_answer_with_the_same_rules() {
        let access = Access::default();
        access.deny(Permission::new("*", "daemonsets.apps"));
        let review = |verb: &str, group: &str, resource: &str| {
            access
                .review(&json!({
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": "ksync"}},
                }))
                .expect("review")["status"]["allowed"]
                .clone()
        };
        assert_eq!(review("create", "apps", "daemonsets"), json!(false));
        assert_eq!(review("create", "", "pods"), json!(true));
        assert!(access.review(&json!({"spec": {}})).is_err());
    }
}
