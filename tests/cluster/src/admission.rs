//! Admission: what the API server does to every write of a kind before storing it
//! (defaults, `stringData`, validation, and what may not change).

use base64::Engine;
use serde_json::{Value, json};

use crate::discovery::ResourceType;
use crate::status::ApiError;

/// Pods come from workloads and DaemonSets only.
pub(crate) fn pods_are_not_created() -> ApiError {
    ApiError::method_not_supported(
        "the ksync test cluster creates pods only for declared workloads and DaemonSets",
    )
}

/// Kind-specific rules applied to every write (what admission and defaulting do).
pub(crate) fn admit(
    r: &ResourceType,
    object: &mut Value,
    live: Option<&Value>,
) -> Result<(), ApiError> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match r.kind {
        "Secret" => {
            if let Some(string_data) = object
                .as_object_mut()
                .and_then(|o| o.remove("stringData"))
                .and_then(|v| v.as_object().cloned())
            {
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    object["data"][k] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if object["type"].is_null() {
                object["type"] = json!("Opaque");
            }
        }
        "Namespace" => {
            if object["status"]["phase"].is_null() {
                object["status"] = json!({ "phase": "Active" });
            }
            if object["spec"]["finalizers"].is_null() {
                object["spec"]["finalizers"] = json!(["kubernetes"]);
            }
        }
        "DaemonSet" => {
            if let Some(live) = live {
                object["status"] = live["status"].clone();
            } else {
                object["status"] = json!({
                    "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                    "numberMisscheduled": 0, "numberReady": 0,
                });
            }
            let selector = &object["spec"]["selector"]["matchLabels"];
            let labels = &object["spec"]["template"]["metadata"]["labels"];
            let selected = selector
                .as_object()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v));
            if !selected {
                return Err(ApiError::invalid(
                    &r.qualified(),
                    &name,
                    "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
                ));
            }
        }
        "Pod" => {
            let live = live.ok_or_else(pods_are_not_created)?;
            if object["spec"] != live["spec"] {
                return Err(ApiError::invalid(
                    "pods",
                    &name,
                    "spec: Forbidden: pod updates may not change fields other than metadata in the ksync test cluster",
                ));
            }
            object["status"] = live["status"].clone();
        }
        _ => {}
    }
    Ok(())
}
