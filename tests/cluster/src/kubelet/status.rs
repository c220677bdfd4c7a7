//! A pod's `status` from its containers: their states, restart counts and readiness, the
//! phase and conditions that follow from them, and the back-off between restarts.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest wait before restarting a container that keeps exiting.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// One container of the pod.
pub(super) struct Slot {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) spec: Value,
    /// Runtime id of the current run (Docker id, or `process://<pid>`).
    pub(super) id: Option<String>,
    pub(super) pid: Option<u32>,
    pub(super) image_id: String,
    pub(super) restart_count: u64,
    pub(super) attempt: u64,
    pub(super) state: Value,
    pub(super) last_state: Value,
    pub(super) ready: bool,
    /// A restart is due at this time.
    pub(super) restart_at: Option<Instant>,
    /// Cancelled when the current run ends (stops its readiness probe).
    pub(super) alive: Option<CancellationToken>,
}

/// A `waiting` container state.
pub(super) fn waiting(reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({ "reason": reason });
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({ "waiting": w })
}

/// The pod `status` for its containers' slots.
pub(super) fn pod_status(
    slots: &[Slot],
    prepared: bool,
    pod_ip: Option<IpAddr>,
    start_time: &str,
) -> Value {
    let all_ready = !slots.is_empty() && slots.iter().all(|s| s.ready);
    // Every container has run (or tried to) at least once.
    let all_started = slots.iter().all(|s| s.id.is_some() || s.restart_count > 0);
    let finished = slots
        .iter()
        .all(|s| s.state["terminated"].is_object() && s.restart_at.is_none());
    let phase = if !prepared || !all_started {
        "Pending"
    } else if finished {
        if slots.iter().all(|s| s.state["terminated"]["exitCode"] == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else {
        "Running"
    };
    let condition = |kind: &str, ok: bool| json!({ "type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": start_time });
    let statuses: Vec<Value> = slots
        .iter()
        .map(|s| {
            let mut status = json!({
                "name": s.name,
                "state": s.state,
                "lastState": s.last_state,
                "ready": s.ready,
                "restartCount": s.restart_count,
                "image": s.image,
                "imageID": if s.image_id.is_empty() { String::new() } else { format!("docker://{}", s.image_id) },
                "started": s.state["running"].is_object(),
            });
            if let Some(id) = &s.id {
                status["containerID"] = json!(if id.contains("://") { id.clone() } else { format!("docker://{id}") });
            }
            status
        })
        .collect();
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodScheduled", true),
            condition("Initialized", prepared),
            condition("ContainersReady", all_ready),
            condition("Ready", all_ready),
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{ "ip": "127.0.0.1" }],
        "startTime": start_time,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    });
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{ "ip": ip.to_string() }]);
    }
    status
}

/// How long to wait before the `n`th restart: none for the first, then doubling.
pub(super) fn backoff(restarts: u64) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << restarts.min(5);
    (Duration::from_millis(250) * factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert!(backoff(1) < backoff(2));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
