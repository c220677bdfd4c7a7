//! Response formats clients negotiate with `Accept`: plain objects, `Table` (what `kubectl
//! get` prints, with the columns the real server gives pods, namespaces and DaemonSets) and
//! `PartialObjectMetadata`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::discovery::ResourceType;

/// How objects are rendered in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The objects themselves.
    Object,
    /// `meta.k8s.io/v1` `Table`, rows carrying what `includeObject` asks for.
    Table(Include),
    /// `meta.k8s.io/v1` `PartialObjectMetadata`.
    Metadata,
}

/// `includeObject` of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    /// No object in rows.
    None,
    /// `PartialObjectMetadata` in rows (the default).
    Metadata,
    /// The full object in rows.
    Object,
}

impl Format {
    /// The first format of `accept` the server offers (plain objects otherwise).
    pub(crate) fn negotiate(accept: &str, include_object: Option<&str>) -> Format {
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            let param = |k: &str| {
                params
                    .iter()
                    .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
            };
            let meta_v1 = param("g") == Some("meta.k8s.io") && param("v") == Some("v1");
            match param("as") {
                Some("Table") if meta_v1 => {
                    let include = match include_object {
                        Some("None") => Include::None,
                        Some("Object") => Include::Object,
                        _ => Include::Metadata,
                    };
                    return Format::Table(include);
                }
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") if meta_v1 => {
                    return Format::Metadata;
                }
                Some(_) => {}
                None => return Format::Object,
            }
        }
        Format::Object
    }

    /// One object (a get, or a watch event).
    pub(crate) fn object(&self, object: &Value) -> Value {
        match self {
            Format::Object => object.clone(),
            Format::Metadata => partial(object),
            Format::Table(include) => table(
                object["kind"].as_str().unwrap_or_default(),
                &[object],
                object["metadata"]["resourceVersion"].clone(),
                *include,
            ),
        }
    }

    /// A list.
    pub(crate) fn list(&self, resource: &ResourceType, items: &[Arc<Value>], rv: u64) -> Value {
        let rv = json!(rv.to_string());
        match self {
            Format::Object => json!({
                "kind": format!("{}List", resource.kind),
                "apiVersion": resource.api_version(),
                "metadata": { "resourceVersion": rv },
                "items": items.iter().map(|o| o.as_ref().clone()).collect::<Vec<_>>(),
            }),
            Format::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": { "resourceVersion": rv },
                "items": items.iter().map(|o| partial(o)).collect::<Vec<_>>(),
            }),
            Format::Table(include) => {
                let objects: Vec<&Value> = items.iter().map(|o| o.as_ref()).collect();
                table(resource.kind, &objects, rv, *include)
            }
        }
    }
}

fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

fn column(name: &str, kind: &str, format: &str, priority: u8) -> Value {
    json!({ "name": name, "type": kind, "format": format, "description": "", "priority": priority })
}

fn table(kind: &str, objects: &[&Value], rv: Value, include: Include) -> Value {
    let columns: Vec<Value> = match kind {
        "Pod" => vec![
            column("Name", "string", "name", 0),
            column("Ready", "string", "", 0),
            column("Status", "string", "", 0),
            column("Restarts", "string", "", 0),
            column("Age", "string", "", 0),
            column("IP", "string", "", 1),
            column("Node", "string", "", 1),
        ],
        "Namespace" => vec![
            column("Name", "string", "name", 0),
            column("Status", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        "DaemonSet" => vec![
            column("Name", "string", "name", 0),
            column("Desired", "integer", "", 0),
            column("Current", "integer", "", 0),
            column("Ready", "integer", "", 0),
            column("Up-to-date", "integer", "", 0),
            column("Available", "integer", "", 0),
            column("Node Selector", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        _ => vec![
            column("Name", "string", "name", 0),
            column("Age", "string", "", 0),
        ],
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({ "cells": cells(kind, object) });
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial(object),
                Include::Object => row["object"] = (*object).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": rv },
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn cells(kind: &str, object: &Value) -> Vec<Value> {
    let meta = &object["metadata"];
    let name = json!(meta["name"]);
    let age = json!(age(meta["creationTimestamp"].as_str()));
    match kind {
        "Pod" => {
            let statuses = object["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = object["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: u64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_u64())
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(object, &statuses)),
                json!(restarts.to_string()),
                age,
                json!(object["status"]["podIP"].as_str().unwrap_or("<none>")),
                json!(object["spec"]["nodeName"].as_str().unwrap_or("<none>")),
            ]
        }
        "Namespace" => vec![name, object["status"]["phase"].clone(), age],
        "DaemonSet" => {
            let status = &object["status"];
            let count = |k: &str| json!(status[k].as_u64().unwrap_or(0));
            let selector = object["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                count("desiredNumberScheduled"),
                count("currentNumberScheduled"),
                count("numberReady"),
                count("updatedNumberScheduled"),
                count("numberAvailable"),
                json!(selector),
                age,
            ]
        }
        _ => vec![name, age],
    }
}

/// The STATUS column of a pod, as kubectl shows it.
fn pod_status(pod: &Value, statuses: &[Value]) -> String {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return "Terminating".into();
    }
    for status in statuses {
        let state = &status["state"];
        if let Some(reason) = state["waiting"]["reason"].as_str() {
            return reason.into();
        }
        if let Some(reason) = state["terminated"]["reason"].as_str() {
            return reason.into();
        }
    }
    pod["status"]["phase"].as_str().unwrap_or("Unknown").into()
}

/// Age as the API server prints it (`45s`, `3m20s`, `2h5m`, `4d`).
fn age(created: Option<&str>) -> String {
    let Some(created) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now().as_second() - created.as_second();
    human(secs.max(0))
}

fn human(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        s if s < 120 => format!("{s}s"),
        _ if m < 10 && secs % 60 != 0 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ => format!("{d}d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    #[test]
    fn negotiation() {
        assert_eq!(
            Format::negotiate(KUBECTL, None),
            Format::Table(Include::Metadata)
        );
        assert_eq!(
            Format::negotiate(KUBECTL, Some("Object")),
            Format::Table(Include::Object)
        );
        assert_eq!(Format::negotiate("application/json", None), Format::Object);
        assert_eq!(
            Format::negotiate(
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json",
                None
            ),
            Format::Object
        );
        assert_eq!(
            Format::negotiate(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                None
            ),
            Format::Metadata
        );
        assert_eq!(Format::negotiate("", None), Format::Object);
    }

    #[test]
    fn pod_rows() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "web-1", "resourceVersion": "9", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "172.17.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
        });
        let t = Format::Table(Include::None).object(&pod);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["metadata"]["resourceVersion"], "9");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web-1");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3");
        assert_eq!(cells[6], "node-a");
        assert!(t["rows"][0].get("object").is_none());
    }

    #[test]
    fn ages() {
        assert_eq!(human(5), "5s");
        assert_eq!(human(200), "3m20s");
        assert_eq!(human(3600), "60m");
        assert_eq!(human(4 * 3600 + 60 * 5), "4h5m");
        assert_eq!(human(30 * 3600), "30h");
        assert_eq!(human(5 * 86_400), "5d");
    }
}
