//! `labelSelector` and `fieldSelector` of list and watch requests.
//!
//! Label selectors use ksync's own parser ([`ksync::selector`], the full grammar). Field
//! selectors support what the API server supports for the kinds served here:
//! `metadata.name` and `metadata.namespace` everywhere, plus `spec.nodeName` and
//! `status.phase` on pods, with `=`, `==` and `!=`.

use std::collections::BTreeMap;

use ksync::selector::LabelSelector;
use serde_json::Value;

use crate::discovery::ResourceType;
use crate::status::ApiError;

/// Which objects a list or watch returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    labels: LabelSelector,
    fields: Vec<FieldRequirement>,
}

#[derive(Debug, Clone)]
struct FieldRequirement {
    path: &'static str,
    value: String,
    equal: bool,
}

const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];
const POD_FIELDS: &[&str] = &["spec.nodeName", "status.phase"];

impl Filter {
    /// Parses both selectors of a request; `400` when one is malformed or names a field the
    /// kind does not support.
    pub(crate) fn parse(
        resource: &ResourceType,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(labels.unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let mut out = Vec::new();
        for term in fields
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            let supported = COMMON_FIELDS
                .iter()
                .chain(if resource.kind == "Pod" {
                    POD_FIELDS
                } else {
                    &[]
                })
                .find(|f| **f == field)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("field label not supported: {field}"))
                })?;
            out.push(FieldRequirement {
                path: supported,
                value: value.trim().to_string(),
                equal,
            });
        }
        Ok(Filter {
            labels,
            fields: out,
        })
    }

    /// True when the object passes both selectors.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels: BTreeMap<String, String> = object["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.labels.matches(&labels)
            && self.fields.iter().all(|r| {
                let actual = r
                    .path
                    .split('.')
                    .fold(object, |v, part| &v[part])
                    .as_str()
                    .unwrap_or_default();
                (actual == r.value) == r.equal
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::discovery::core;

    fn pod(name: &str, node: &str, phase: &str, app: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app, "tier": "web"}},
            "spec": {"nodeName": node},
            "status": {"phase": phase},
        })
    }

    #[test]
    fn label_and_field_selectors() {
        let pods = core("pods");
        let a = pod("a", "node-1", "Running", "shop");
        let b = pod("b", "node-2", "Pending", "blog");
        let filter = |l: &str, f: &str| Filter::parse(pods, Some(l), Some(f)).expect("parses");

        assert!(filter("", "").matches(&a));
        assert!(filter("app in (shop, blog),tier", "").matches(&b));
        assert!(!filter("app notin (blog)", "").matches(&b));
        assert!(filter("!missing,app!=blog", "").matches(&a));
        assert!(filter("", "spec.nodeName=node-1").matches(&a));
        assert!(!filter("", "spec.nodeName=node-1").matches(&b));
        assert!(filter("", "status.phase!=Running,metadata.name==b").matches(&b));
        assert!(filter("", "metadata.namespace=default").matches(&b));
    }

    #[test]
    fn bad_selectors_are_400() {
        let err = Filter::parse(core("pods"), Some("app in (a"), None).expect_err("bad");
        assert_eq!(err.code, 400);
        let err = Filter::parse(core("pods"), None, Some("spec.hostname=x")).expect_err("field");
        assert_eq!(err.message, "field label not supported: spec.hostname");
        let err = Filter::parse(core("secrets"), None, Some("spec.nodeName=x")).expect_err("field");
        assert_eq!(err.code, 400);
    }
}
