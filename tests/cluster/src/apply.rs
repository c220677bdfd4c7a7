//! Server-side apply and field ownership (`metadata.managedFields`), and JSON merge patches.
//!
//! Fields are tracked as the API server tracks them, in `FieldsV1` form, with one
//! simplification: every list is *atomic* (owned as a whole by whoever set it last), where
//! the real server merges some lists by key (containers by name, for example). Maps merge
//! field by field. That is enough for what ksync relies on: re-applying is idempotent, a
//! field another manager set to a different value is a `409 Conflict` unless the apply is
//! forced, a forced apply takes the field over, and fields a manager stops applying are
//! removed unless another manager still owns them.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::status::ApiError;
use crate::store::now;

/// A field: the keys from the object's root.
type Path = Vec<String>;

/// Metadata fields the server owns; nobody manages them.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
struct Manager {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    fields: BTreeSet<Path>,
}

/// Every managed field of `object`: the paths of its leaves (scalars, lists and empty maps).
fn fields(object: &Value) -> BTreeSet<Path> {
    fn walk(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    path.push(k.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    let Some(root) = object.as_object() else {
        return out;
    };
    for (k, v) in root {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SERVER_METADATA.contains(&mk.as_str()) {
                        walk(mv, &mut vec![k.clone(), mk.clone()], &mut out);
                    }
                }
            }
            _ => walk(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

/// `FieldsV1` JSON of a set of paths.
fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// Paths of a `FieldsV1` JSON (its leaves; `.` entries are ignored).
fn from_fields_v1(value: &Value) -> BTreeSet<Path> {
    fn walk(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = value
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != ".")
            .collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, v) in children {
            path.push(k.strip_prefix("f:").unwrap_or(k).to_string());
            walk(v, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn managers_of(object: Option<&Value>) -> Vec<Manager> {
    object
        .and_then(|o| o["metadata"]["managedFields"].as_array())
        .into_iter()
        .flatten()
        .map(|entry| Manager {
            manager: entry["manager"].as_str().unwrap_or_default().to_string(),
            operation: entry["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: entry["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: entry["time"].as_str().unwrap_or_default().to_string(),
            fields: from_fields_v1(&entry["fieldsV1"]),
        })
        .collect()
}

fn set_managers(object: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.fields),
            })
        })
        .collect();
    object["metadata"]["managedFields"] = Value::Array(entries);
}

fn at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, k| v.as_object()?.get(k))
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for key in parents {
        match node.get_mut(key) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

/// Copies `from` into `into`: maps field by field, everything else replaced.
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) if !from.is_empty() => {
            for (k, v) in from {
                match into.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// Server-side apply of `applied` by `manager` onto `live` (none: the object is created).
/// Returns the object to store; the store fills in the metadata it owns.
pub(crate) fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let (Some(live), Some(wanted)) = (live, applied["metadata"]["resourceVersion"].as_str())
        && live["metadata"]["resourceVersion"].as_str() != Some(wanted)
    {
        return Err(ApiError::conflict(
            "the object has been modified; please apply your changes to the latest version and try again",
            None,
        ));
    }
    let applied_fields = fields(applied);
    let mut managers = managers_of(live);
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);

    // Fields another manager owns with a different value than this apply sets.
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    for other in managers
        .iter()
        .filter(|m| !(m.manager == manager && m.operation == "Apply"))
    {
        for path in &applied_fields {
            let contested = other.fields.iter().any(|owned| overlaps(owned, path));
            if contested && at(live_value, path) != at(applied, path) {
                conflicts.push((
                    other.manager.clone(),
                    other.api_version.clone(),
                    path.clone(),
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflict_error(&conflicts));
        }
        for other in managers
            .iter_mut()
            .filter(|m| !(m.manager == manager && m.operation == "Apply"))
        {
            other
                .fields
                .retain(|owned| !conflicts.iter().any(|(_, _, path)| overlaps(owned, path)));
        }
    }

    let mut object = live.cloned().unwrap_or_else(|| json!({ "metadata": {} }));
    // Fields this manager applied before and no longer does go, unless someone else owns them.
    let previous = managers
        .iter()
        .find(|m| m.manager == manager && m.operation == "Apply")
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    for path in previous.difference(&applied_fields) {
        let kept = managers
            .iter()
            .filter(|m| !(m.manager == manager && m.operation == "Apply"))
            .any(|m| m.fields.iter().any(|owned| overlaps(owned, path)));
        let reapplied = applied_fields.iter().any(|p| overlaps(p, path));
        if !kept && !reapplied {
            remove_at(&mut object, path);
        }
    }
    let mut body = applied.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = body["metadata"].as_object_mut() {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
    }
    merge(&mut object, &body);

    // An apply that changes nothing leaves the object as it was, time stamps included.
    let unchanged = live.is_some_and(|live| {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(meta) = v["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
            v
        };
        strip(live) == strip(&object) && previous == applied_fields
    });
    let time = managers
        .iter()
        .find(|m| m.manager == manager && m.operation == "Apply")
        .filter(|_| unchanged)
        .map_or_else(now, |m| m.time.clone());
    managers.retain(|m| !(m.manager == manager && m.operation == "Apply"));
    managers.push(Manager {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version,
        time,
        fields: applied_fields,
    });
    set_managers(&mut object, &managers);
    Ok(object)
}

fn conflict_error(conflicts: &[(String, String, Path)]) -> ApiError {
    let count = conflicts.len();
    let mut message = format!(
        "Apply failed with {count} conflict{}: ",
        if count == 1 { "" } else { "s" }
    );
    let lines: Vec<String> = conflicts
        .iter()
        .map(|(manager, api_version, path)| {
            format!(
                "conflict with \"{manager}\" using {api_version}: {}",
                dotted(path)
            )
        })
        .collect();
    message.push_str(&lines.join("\n"));
    let causes: Vec<Value> = conflicts
        .iter()
        .zip(&lines)
        .map(|((_, _, path), line)| {
            json!({ "type": "FieldManagerConflict", "message": line, "field": dotted(path) })
        })
        .collect();
    ApiError::conflict(message, Some(json!({ "causes": causes })))
}

/// Records an update (create, replace or patch) by `manager`: it owns every field it changed,
/// and nobody else does any more. Updates never conflict.
pub(crate) fn record_update(old: Option<&Value>, new: &mut Value, manager: &str) {
    let api_version = new["apiVersion"].as_str().unwrap_or_default().to_string();
    let empty = json!({});
    let before = old.unwrap_or(&empty);
    let changed: BTreeSet<Path> = fields(new)
        .into_iter()
        .filter(|p| at(before, p) != at(new, p))
        .collect();
    let mut managers = managers_of(old);
    if changed.is_empty() {
        set_managers(new, &managers);
        return;
    }
    for m in managers.iter_mut() {
        m.fields
            .retain(|owned| !changed.iter().any(|p| overlaps(owned, p)));
    }
    match managers
        .iter_mut()
        .find(|m| m.manager == manager && m.operation == "Update")
    {
        Some(m) => {
            m.fields.extend(changed);
            m.time = now();
        }
        None => managers.push(Manager {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: now(),
            fields: changed,
        }),
    }
    set_managers(new, &managers);
}

/// A JSON merge patch (RFC 7386): `null` removes, maps merge, everything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("made an object above");
            for (k, v) in patch {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(replicas: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ksync", "labels": {"app": "agent"}},
            "spec": {"minReadySeconds": replicas, "template": {"spec": {"containers": [{"name": "radar", "image": image}]}}},
        })
    }

    #[test]
    fn apply_creates_and_reapplying_is_idempotent() {
        let first = apply(None, &ds(1, "a"), "ksync", false).expect("create");
        assert_eq!(first["spec"]["minReadySeconds"], 1);
        let managed = &first["metadata"]["managedFields"][0];
        assert_eq!(managed["manager"], "ksync");
        assert_eq!(managed["operation"], "Apply");
        assert_eq!(managed["fieldsType"], "FieldsV1");
        assert_eq!(
            managed["fieldsV1"]["f:metadata"]["f:labels"]["f:app"],
            json!({})
        );
        assert_eq!(
            managed["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({})
        );
        let mut stamped = first.clone();
        stamped["metadata"]["managedFields"][0]["time"] = json!("2000-01-01T00:00:00Z");
        let again = apply(Some(&stamped), &ds(1, "a"), "ksync", false).expect("re-apply");
        assert_eq!(
            again, stamped,
            "a no-op apply changes nothing, not even times"
        );
    }

    #[test]
    fn other_managers_conflict_unless_forced() {
        let live = apply(None, &ds(1, "a"), "ksync", false).expect("create");
        // Same values: shared ownership, no conflict.
        let shared = apply(Some(&live), &ds(1, "a"), "kubectl", false).expect("same values");
        let err = apply(Some(&shared), &ds(2, "b"), "kubectl", false).expect_err("conflict");
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "Conflict");
        assert!(
            err.message.starts_with("Apply failed with 2 conflicts: conflict with \"ksync\" using apps/v1: .spec.minReadySeconds"),
            "{}",
            err.message
        );
        let causes = &err.details.as_ref().expect("details")["causes"];
        assert_eq!(causes[0]["type"], "FieldManagerConflict");

        let forced = apply(Some(&shared), &ds(2, "b"), "kubectl", true).expect("forced");
        assert_eq!(forced["spec"]["minReadySeconds"], 2);
        let ksync = forced["metadata"]["managedFields"]
            .as_array()
            .expect("managers")
            .iter()
            .find(|m| m["manager"] == "ksync")
            .expect("ksync keeps what it still owns");
        assert!(
            ksync["fieldsV1"]["f:spec"]
                .get("f:minReadySeconds")
                .is_none()
        );
        assert!(
            ksync["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:app")
                .is_some()
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed() {
        let live = apply(None, &ds(1, "a"), "ksync", false).expect("create");
        let mut smaller = ds(1, "a");
        smaller["metadata"]["labels"] = json!({});
        smaller["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("minReadySeconds");
        let after = apply(Some(&live), &smaller, "ksync", false).expect("apply");
        assert!(after["spec"].get("minReadySeconds").is_none(), "{after}");
        assert!(after["metadata"]["labels"].get("app").is_none(), "{after}");
    }

    #[test]
    fn updates_take_fields_without_conflict() {
        let live = apply(None, &ds(1, "a"), "ksync", false).expect("create");
        let mut patched = live.clone();
        merge_patch(
            &mut patched,
            &json!({"spec": {"minReadySeconds": 5}, "metadata": {"labels": {"app": null}}}),
        );
        assert!(patched["metadata"]["labels"].get("app").is_none());
        record_update(Some(&live), &mut patched, "kubectl-edit");
        let managers: Vec<&str> = patched["metadata"]["managedFields"]
            .as_array()
            .expect("managers")
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert_eq!(managers, ["ksync", "kubectl-edit"]);
        // ksync now conflicts on the field the update took.
        let err = apply(Some(&patched), &ds(1, "a"), "ksync", false).expect_err("conflict");
        assert!(err.message.contains("\"kubectl-edit\""), "{}", err.message);
    }

    #[test]
    fn resource_version_in_the_apply_is_a_precondition() {
        let mut live = apply(None, &ds(1, "a"), "ksync", false).expect("create");
        live["metadata"]["resourceVersion"] = json!("7");
        let mut stale = ds(1, "a");
        stale["metadata"]["resourceVersion"] = json!("6");
        assert_eq!(
            apply(Some(&live), &stale, "ksync", false)
                .expect_err("stale")
                .code,
            409
        );
    }
}
