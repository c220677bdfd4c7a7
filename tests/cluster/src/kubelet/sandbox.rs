//! What a pod's spec means to the runtimes: Docker containers' names, labels, commands,
//! environment and mounts, and the agent's API key from its Secret.

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;

use super::status::Slot;
use crate::discovery::core;
use crate::docker::{self, RunSpec};
use crate::state::State;

/// dockershim's labels of a pod container.
pub(super) fn pod_labels(
    ns: &str,
    pod: &str,
    uid: &str,
    container: &str,
) -> HashMap<String, String> {
    HashMap::from([
        (docker::POD_NAMESPACE_LABEL.to_string(), ns.to_string()),
        (docker::POD_NAME_LABEL.to_string(), pod.to_string()),
        (docker::POD_UID_LABEL.to_string(), uid.to_string()),
        (
            docker::CONTAINER_NAME_LABEL.to_string(),
            container.to_string(),
        ),
    ])
}

/// How a pod container runs in Docker.
pub(super) fn docker_spec(
    slot: &Slot,
    ns: &str,
    pod: &str,
    uid: &str,
    node: &str,
    infra: &Option<String>,
    binds: &HashMap<String, String>,
) -> RunSpec {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut command = strings(&slot.spec["command"]);
    command.extend(strings(&slot.spec["args"]));
    if command.is_empty() {
        command = docker::IDLE.iter().map(|s| s.to_string()).collect();
    }
    let env = slot.spec["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(format!(
                "{}={}",
                e["name"].as_str()?,
                e["value"].as_str().unwrap_or_default()
            ))
        })
        .collect();
    let mounts = slot.spec["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let source = binds.get(m["name"].as_str()?)?;
            let target = m["mountPath"].as_str()?;
            let ro = if m["readOnly"] == true { ":ro" } else { "" };
            Some(format!("{source}:{target}{ro}"))
        })
        .collect();
    let uid8 = &uid[..uid.len().min(8)];
    RunSpec {
        name: format!("k8s_{}_{pod}_{ns}_{uid8}_{}", slot.name, slot.attempt),
        node: node.to_string(),
        labels: pod_labels(ns, pod, uid, &slot.name),
        command,
        env,
        binds: mounts,
        network_of: infra.as_ref().map(|id| format!("container:{id}")),
        working_dir: slot.spec["workingDir"].as_str().map(str::to_string),
    }
}

/// The Syncthing API key the agent DaemonSet hands its containers (from its Secret).
pub(super) fn agent_api_key(state: &State, pod: &Value) -> Result<String, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let reference = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find_map(|e| {
            let r = &e["valueFrom"]["secretKeyRef"];
            Some((
                r["name"].as_str()?.to_string(),
                r["key"].as_str()?.to_string(),
            ))
        })
        .ok_or("the agent pod takes no Syncthing API key from a Secret")?;
    let (secret, key) = reference;
    let object = state
        .store
        .get(core("secrets"), ns, &secret)
        .ok_or_else(|| format!("secret \"{secret}\" not found"))?;
    let encoded = object["data"][&key]
        .as_str()
        .ok_or_else(|| format!("couldn't find key {key} in Secret {ns}/{secret}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("Secret {ns}/{secret} key {key} is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("Secret {ns}/{secret} key {key} is not text"))
}
