//! `ksync init` and `ksync clean`: the agent's objects applied with server-side apply (field
//! manager `ksync`), and removed again by their label.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rand::distr::{Alphanumeric, SampleString};

use super::{Cluster, ClusterError};
use crate::agent::{AgentSettings, MANAGED_BY, Manifest, render};

/// Field manager of everything ksync applies.
pub const FIELD_MANAGER: &str = "ksync";

/// What `init` did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Updated,
    /// It existed as wanted (applying changed nothing).
    Unchanged,
    /// It exists and differs, but `--upgrade` was not given.
    Outdated,
}

/// The result of `init`.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// Each object: `Kind/name` and what happened to it.
    pub objects: Vec<(String, Outcome)>,
    /// Agent pods ready, and desired (one per schedulable node).
    pub ready: (i32, i32),
}

/// Progress of `init`, for a display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// An object was applied.
    Applied(String, Outcome),
    /// The rollout: agents ready and updated so far, out of desired.
    Rollout {
        /// Ready and up to date.
        ready: i32,
        /// Wanted.
        desired: i32,
    },
}

fn resource(kind: &str) -> Option<(ApiResource, bool)> {
    Some(match kind {
        "Namespace" => (ApiResource::erase::<Namespace>(&()), false),
        "ServiceAccount" => (ApiResource::erase::<ServiceAccount>(&()), true),
        "ClusterRole" => (ApiResource::erase::<ClusterRole>(&()), false),
        "Role" => (ApiResource::erase::<Role>(&()), true),
        "Secret" => (ApiResource::erase::<Secret>(&()), true),
        "DaemonSet" => (ApiResource::erase::<DaemonSet>(&()), true),
        _ => return None,
    })
}

fn api_for(cluster: &Cluster, kind: &str, namespace: &str) -> Api<DynamicObject> {
    let (ar, namespaced) =
        resource(kind).unwrap_or_else(|| (ApiResource::erase::<Secret>(&()), true));
    if namespaced {
        Api::namespaced_with(cluster.client.clone(), namespace, &ar)
    } else {
        Api::all_with(cluster.client.clone(), &ar)
    }
}

/// The API key the installed agent uses, if it is installed.
async fn existing_api_key(
    cluster: &Cluster,
    settings: &AgentSettings,
) -> Result<Option<String>, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &settings.namespace);
    let secret = secrets.get_opt(&settings.name).await.map_err(|e| {
        cluster.api_error(
            format!("reading Secret {}/{}", settings.namespace, settings.name),
            e,
        )
    })?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get("apikey").cloned())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .filter(|k| !k.is_empty()))
}

/// A new random API key for the agents' Syncthing.
pub fn new_api_key() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// Installs the agent, or with `upgrade` brings it up to date; then waits up to `timeout`
/// for every agent pod to be ready. Applying again changes nothing (the API key of an
/// installed agent is kept), and the agent pods only roll when their template changed.
pub async fn init(
    cluster: &Cluster,
    mut settings: AgentSettings,
    upgrade: bool,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<InitReport, ClusterError> {
    settings.api_key = match existing_api_key(cluster, &settings).await? {
        Some(key) => key,
        None => new_api_key(),
    };
    let manifests = render(&settings)?;
    let mut objects = Vec::new();
    for manifest in &manifests {
        let outcome = apply(cluster, manifest, &settings.namespace, upgrade).await?;
        let label = format!("{}/{}", manifest.kind, manifest.name);
        progress(Progress::Applied(label.clone(), outcome));
        objects.push((label, outcome));
    }
    let ready = wait_rollout(cluster, &settings, timeout, progress).await?;
    Ok(InitReport { objects, ready })
}

/// Applies one manifest; without `upgrade`, an existing object is only checked (a dry-run
/// apply tells whether it differs).
async fn apply(
    cluster: &Cluster,
    manifest: &Manifest,
    namespace: &str,
    upgrade: bool,
) -> Result<Outcome, ClusterError> {
    let value: serde_json::Value = serde_saphyr::from_str(&manifest.yaml).map_err(|e| {
        cluster.api_error(
            format!("reading the rendered {} {}", manifest.kind, manifest.name),
            e,
        )
    })?;
    let object: DynamicObject = serde_json::from_value(value).map_err(|e| {
        cluster.api_error(
            format!("reading the rendered {} {}", manifest.kind, manifest.name),
            e,
        )
    })?;
    let api = api_for(cluster, &manifest.kind, namespace);
    let what = format!("applying {} {}", manifest.kind, manifest.name);
    let before = api
        .get_opt(&manifest.name)
        .await
        .map_err(|e| cluster.api_error(&what, e))?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if before.is_some() && !upgrade {
        params = params.dry_run();
    }
    let after = api
        .patch(&manifest.name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| cluster.api_error(&what, e))?;
    let Some(before) = before else {
        return Ok(Outcome::Created);
    };
    let changed = before.metadata.resource_version != after.metadata.resource_version
        || (params.dry_run && differs(&before, &after));
    tracing::debug!(
        kind = %manifest.kind,
        name = %manifest.name,
        upgrade,
        dry_run = params.dry_run,
        before = ?before.metadata.resource_version,
        after = ?after.metadata.resource_version,
        changed,
        "applied"
    );
    Ok(match (changed, upgrade) {
        (false, _) => Outcome::Unchanged,
        (true, true) => Outcome::Updated,
        (true, false) => Outcome::Outdated,
    })
}

/// True when a dry-run apply result differs from the stored object in anything but
/// server-managed metadata.
fn differs(before: &DynamicObject, after: &DynamicObject) -> bool {
    let strip = |o: &DynamicObject| {
        let mut v = serde_json::to_value(o).unwrap_or_default();
        if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            for key in [
                "managedFields",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "uid",
            ] {
                meta.remove(key);
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.remove("status");
        }
        v
    };
    strip(before) != strip(after)
}

/// Waits until the DaemonSet's pods are all up to date and ready.
async fn wait_rollout(
    cluster: &Cluster,
    settings: &AgentSettings,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(i32, i32), ClusterError> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), &settings.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", settings.name));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut last = (0, 0);
    let wait = async {
        while let Some(event) = events.next().await {
            let Ok(Event::Apply(ds) | Event::InitApply(ds)) = event else {
                continue;
            };
            let generation = ds.metadata.generation.unwrap_or(0);
            let Some(status) = ds.status else { continue };
            let desired = status.desired_number_scheduled;
            let ready = status
                .number_ready
                .min(status.updated_number_scheduled.unwrap_or(0));
            if (ready, desired) != last {
                last = (ready, desired);
                progress(Progress::Rollout { ready, desired });
            }
            if status.observed_generation.unwrap_or(0) >= generation
                && ready == desired
                && status.number_ready == desired
            {
                return Some((ready, desired));
            }
        }
        None
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Some(done)) => Ok(done),
        _ => Err(ClusterError::Timeout {
            what: format!("the agent pods to be ready ({} of {} are)", last.0, last.1),
            seconds: timeout.as_secs(),
            namespace: settings.namespace.clone(),
        }),
    }
}

/// Removes every object `init` created for the agent `settings` describes (found by its
/// `managed-by=ksync` label in the agent's namespace, and its user ClusterRole by name), and
/// nothing else. Returns `Kind/name` of what was deleted.
pub async fn clean(
    cluster: &Cluster,
    settings: &AgentSettings,
) -> Result<Vec<String>, ClusterError> {
    let namespace = settings.namespace.as_str();
    let selector = format!(
        "{}={},app.kubernetes.io/part-of=ksync",
        MANAGED_BY.0, MANAGED_BY.1
    );
    let mut deleted = Vec::new();
    for kind in [
        "DaemonSet",
        "Secret",
        "Role",
        "ServiceAccount",
        "ClusterRole",
        "Namespace",
    ] {
        let api = api_for(cluster, kind, namespace);
        let list = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list,
            // A namespace that is gone has nothing left to list.
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => {
                return Err(cluster.api_error(format!("listing {kind}s labelled {selector}"), e));
            }
        };
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let ours = match kind {
                "Namespace" => name == namespace,
                "ClusterRole" => name == settings.cluster_role_name(),
                _ => true,
            };
            if !ours {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(format!("{kind}/{name}")),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(cluster.api_error(format!("deleting {kind} {name}"), e)),
            }
        }
    }
    Ok(deleted)
}
