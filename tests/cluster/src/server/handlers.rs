//! Request handling: discovery, then the verbs on objects (get, list, watch, create, update,
//! patch and apply, delete) and port-forwarding, each checked against the access rules.
//!
//! Deleting a pod or a namespace only marks it (`deletionTimestamp`), as on a real cluster;
//! the simulated kubelet and the namespace controller finish the job.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use super::request::{self, ObjectRequest, Query, Target};
use super::table::Format;
use super::watch::{self, WatchRequest};
use super::{Body, Conn, error, json};
use crate::access::Attributes;
use crate::admission;
use crate::apply;
use crate::discovery::{self, ResourceType};
use crate::filter::Filter;
use crate::portforward;
use crate::state::State;
use crate::status::{self, ApiError};
use crate::store::now;

/// Largest request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Namespaces that cannot be deleted.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Answers one request.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    conn: Conn,
) -> Response<Body> {
    let query = Query::parse(req.uri().query());
    let path = req.uri().path().to_string();
    state.log_request(format!("{} {}", req.method(), req.uri()));
    let target = match request::parse(req.method(), &path, &query) {
        Ok(target) => target,
        Err(err) => return error(&err),
    };
    let found = |doc: Option<Value>| match doc {
        Some(doc) => json(200, &doc),
        None => error(&ApiError::no_route(&path)),
    };
    match target {
        Target::Version => json(200, &discovery::version()),
        Target::Health => {
            let mut response = Response::new(http_body_util::Full::new(Bytes::from("ok")).boxed());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            response
        }
        Target::CoreVersions => json(200, &discovery::core_versions(&conn.addr.to_string())),
        Target::Groups => json(200, &discovery::group_list()),
        Target::Group(group) => found(discovery::group(&group)),
        Target::Resources { group, version } => found(discovery::resource_list(&group, &version)),
        Target::Objects(request) => objects(state, req, request, query, conn)
            .await
            .unwrap_or_else(|e| error(&e)),
    }
}

async fn objects(
    state: Arc<State>,
    req: Request<Incoming>,
    o: ObjectRequest,
    query: Query,
    conn: Conn,
) -> Result<Response<Body>, ApiError> {
    let r = o.resource;
    let sub = o.subresource.as_deref().unwrap_or_default();
    let attributes = |verb| Attributes {
        verb,
        group: r.group,
        resource: r.plural,
        subresource: sub,
        namespace: o.namespace.as_deref(),
        name: o.name.as_deref(),
    };
    if sub == "portforward" {
        // WebSocket upgrades are GETs; clusters now also require `create` for them.
        state.access.check(&attributes("get"))?;
        state.access.check(&attributes("create"))?;
        return port_forward(&state, req, &o, &query, &conn);
    }
    state.access.check(&attributes(o.verb))?;
    let allowed = if sub.is_empty() {
        r.verbs.contains(&o.verb) || (o.verb == "watch" && r.verbs.contains(&"list"))
    } else {
        r.subresources
            .iter()
            .any(|(s, verbs)| *s == sub && verbs.contains(&o.verb))
    };
    if !allowed {
        return Err(ApiError::method_not_supported(format!(
            "{} {} is not supported by the ksync test cluster",
            o.verb,
            if sub.is_empty() {
                r.qualified()
            } else {
                format!("{}/{sub}", r.plural)
            }
        )));
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let format = Format::negotiate(accept, query.get("includeObject"));
    let ns = o.namespace.clone().unwrap_or_default();
    let name = o.name.clone().unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|d| !d.is_empty());
    let is_apply = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/apply-patch+yaml"));
    if dry_run && !(o.verb == "patch" && is_apply) {
        return Err(ApiError::bad_request(
            "the ksync test cluster supports dryRun only for server-side apply",
        ));
    }
    match o.verb {
        "get" => {
            let object = state
                .store
                .get(r, &ns, &name)
                .ok_or_else(|| ApiError::not_found(&r.qualified(), &name))?;
            Ok(json(200, &format.object(&object)))
        }
        "list" => {
            let filter = Filter::parse(r, query.get("labelSelector"), query.get("fieldSelector"))?;
            list(&state, r, o.namespace.as_deref(), &filter, &query, format)
        }
        "watch" => {
            let request = WatchRequest {
                resource: r,
                namespace: o.namespace.clone(),
                filter: Filter::parse(r, query.get("labelSelector"), query.get("fieldSelector"))?,
                resource_version: query.get("resourceVersion").map(str::to_string),
                bookmarks: query.flag("allowWatchBookmarks"),
                initial_events: query.flag("sendInitialEvents"),
                timeout: query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(std::time::Duration::from_secs),
                format,
            };
            let frames = watch::start(state, request, conn.stop.clone())?;
            let mut response = Response::new(StreamBody::new(ReceiverStream::new(frames)).boxed());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        "create" => {
            let manager = manager(&query, req.headers());
            let body = read_body(req).await?;
            create(&state, r, o.namespace.as_deref(), body, &manager)
        }
        "update" => {
            let manager = manager(&query, req.headers());
            let body = read_body(req).await?;
            update(&state, r, &ns, &name, body, &manager)
        }
        "patch" => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let field_manager = query.get("fieldManager").map(str::to_string);
            let manager = manager(&query, req.headers());
            let body = read_body(req).await?;
            match content_type.as_str() {
                "application/apply-patch+yaml" => {
                    let field_manager = field_manager.ok_or_else(|| {
                        ApiError::bad_request(
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        )
                    })?;
                    server_side_apply(
                        &state,
                        r,
                        &ns,
                        &name,
                        body,
                        ApplyOptions {
                            manager: &field_manager,
                            force: query.flag("force"),
                            dry_run,
                        },
                    )
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    merge_patch(&state, r, &ns, &name, &body, &manager)
                }
                other => Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ))),
            }
        }
        "delete" => {
            let body = read_body(req).await.unwrap_or(Value::Null);
            delete(&state, r, &ns, &name, &query, &body)
        }
        _ => Err(ApiError::method_not_supported(format!(
            "{} is not supported",
            o.verb
        ))),
    }
}

/// Where a paged list continues: the list's resourceVersion and the last object sent.
#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    namespace: String,
    name: String,
}

/// A list, in pages of `limit` objects when asked (`continue` fetches the next page).
fn list(
    state: &State,
    r: &'static ResourceType,
    ns: Option<&str>,
    filter: &Filter,
    query: &Query,
    format: Format,
) -> Result<Response<Body>, ApiError> {
    let token = query.get("continue").filter(|c| !c.is_empty());
    let after = token
        .map(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Continue>(&bytes).ok())
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))
        })
        .transpose()?;
    let (objects, current) = state.store.list(r, ns);
    let rv = match &after {
        Some(after) => {
            state.store.check_version(after.rv).map_err(|_| {
                ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                )
            })?;
            after.rv
        }
        None => current,
    };
    let mut items: Vec<_> = objects
        .into_iter()
        .filter(|o| filter.matches(o))
        .filter(|o| {
            after.as_ref().is_none_or(|a| {
                let (o_ns, o_name) = crate::store::name_of(o);
                (o_ns, o_name) > (a.namespace.as_str(), a.name.as_str())
            })
        })
        .collect();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut next = None;
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let (last_ns, last_name) = crate::store::name_of(&items[limit - 1]);
        let token = Continue {
            rv,
            namespace: last_ns.to_string(),
            name: last_name.to_string(),
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&token).unwrap_or_default());
        next = Some((token, remaining));
    }
    let mut body = format.list(r, &items, rv);
    if let Some((token, remaining)) = next {
        body["metadata"]["continue"] = json!(token);
        body["metadata"]["remainingItemCount"] = json!(remaining);
    }
    Ok(json(200, &body))
}

/// The field manager of an update: `fieldManager`, else the user agent's product name.
fn manager(query: &Query, headers: &HeaderMap) -> String {
    query
        .get("fieldManager")
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .and_then(|ua| ua.split('/').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The request body as JSON (YAML accepted, as apply sends YAML when it likes).
async fn read_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/vnd.kubernetes.protobuf")
        || content_type.starts_with("application/cbor")
    {
        return Err(ApiError::unsupported_media_type(format!(
            "the ksync test cluster reads JSON and YAML bodies only, not {content_type}"
        )));
    }
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(value) = serde_json::from_slice(&bytes) {
        return Ok(value);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the request body is neither JSON nor YAML"))?;
    serde_saphyr::from_str(text).map_err(|e| {
        ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
    })
}

/// Checks `apiVersion`, `kind`, name and namespace of a body against the request.
fn check_body(
    r: &ResourceType,
    body: &Value,
    ns: Option<&str>,
    name: Option<&str>,
    required: bool,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    let expected = r.api_version();
    match body["apiVersion"].as_str() {
        Some(v) if v != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        None if required => return Err(ApiError::bad_request("apiVersion must be set")),
        _ => {}
    }
    match body["kind"].as_str() {
        Some(k) if k != r.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )));
        }
        None if required => return Err(ApiError::bad_request("kind must be set")),
        _ => {}
    }
    if let (Some(ns), Some(body_ns)) = (ns, body["metadata"]["namespace"].as_str())
        && ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let (Some(name), Some(body_name)) = (name, body["metadata"]["name"].as_str())
        && name != body_name
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    Ok(())
}

fn create(
    state: &State,
    r: &'static ResourceType,
    ns: Option<&str>,
    mut body: Value,
    manager: &str,
) -> Result<Response<Body>, ApiError> {
    check_body(r, &body, ns, None, false)?;
    if r.kind == "SelfSubjectAccessReview" {
        return Ok(json(201, &state.access.review(&body)?));
    }
    if r.kind == "Pod" {
        return Err(admission::pods_are_not_created());
    }
    if body["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        let prefix = body["metadata"]["generateName"].as_str().ok_or_else(|| {
            ApiError::invalid(
                &r.qualified(),
                "",
                "metadata.name: Required value: name or generateName is required",
            )
        })?;
        body["metadata"]["name"] = json!(format!("{prefix}{}", crate::random::suffix(5)));
    }
    if let Some(ns) = ns {
        body["metadata"]["namespace"] = json!(ns);
    }
    for field in [
        "resourceVersion",
        "uid",
        "managedFields",
        "deletionTimestamp",
    ] {
        if let Some(meta) = body["metadata"].as_object_mut() {
            meta.remove(field);
        }
    }
    admission::admit(r, &mut body, None)?;
    apply::record_update(None, &mut body, manager);
    let created = state.store.create(r, body)?;
    Ok(json(201, &created))
}

fn update(
    state: &State,
    r: &'static ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    manager: &str,
) -> Result<Response<Body>, ApiError> {
    check_body(
        r,
        &body,
        Some(ns).filter(|_| r.namespaced),
        Some(name),
        false,
    )?;
    let updated = state.store.update(r, ns, name, |live| {
        let wanted = body["metadata"]["resourceVersion"].as_str();
        if wanted.is_some_and(|w| Some(w) != live["metadata"]["resourceVersion"].as_str()) {
            return Err(ApiError::conflict(
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    r.qualified()
                ),
                None,
            ));
        }
        let mut next = body.clone();
        next["status"] = live["status"].clone();
        if next["status"].is_null()
            && let Some(o) = next.as_object_mut()
        {
            o.remove("status");
        }
        next["metadata"]["managedFields"] = live["metadata"]["managedFields"].clone();
        admission::admit(r, &mut next, Some(live))?;
        apply::record_update(Some(live), &mut next, manager);
        *live = next;
        Ok(())
    })?;
    Ok(json(200, &updated))
}

/// How a server-side apply was asked for.
struct ApplyOptions<'a> {
    /// `fieldManager`.
    manager: &'a str,
    /// `force`: take fields other managers own.
    force: bool,
    /// `dryRun`: answer with the result without storing it.
    dry_run: bool,
}

fn server_side_apply(
    state: &State,
    r: &'static ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    options: ApplyOptions<'_>,
) -> Result<Response<Body>, ApiError> {
    let ApplyOptions {
        manager,
        force,
        dry_run,
    } = options;
    check_body(
        r,
        &body,
        Some(ns).filter(|_| r.namespaced),
        Some(name),
        true,
    )?;
    let (object, created) = state.store.write_or_preview(r, ns, name, dry_run, |live| {
        if r.kind == "Pod" && live.is_none() {
            return Err(admission::pods_are_not_created());
        }
        let mut object = apply::apply(live, &body, manager, force)?;
        admission::admit(r, &mut object, live)?;
        // What admission rewrites (a Secret's stringData becomes data) can make a no-op
        // apply look like a change until now: compare again, times of managed fields aside.
        if let Some(live) = live
            && without_times(live) == without_times(&object)
        {
            return Ok(live.clone());
        }
        Ok(object)
    })?;
    Ok(json(if created { 201 } else { 200 }, &object))
}

/// `object` with the times of its managed fields blanked.
fn without_times(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object["metadata"]["managedFields"].as_array_mut() {
        for entry in fields {
            entry["time"] = Value::Null;
        }
    }
    object
}

fn merge_patch(
    state: &State,
    r: &'static ResourceType,
    ns: &str,
    name: &str,
    patch: &Value,
    manager: &str,
) -> Result<Response<Body>, ApiError> {
    let patched = state.store.update(r, ns, name, |live| {
        let before = live.clone();
        apply::merge_patch(live, patch);
        live["metadata"]["managedFields"] = before["metadata"]["managedFields"].clone();
        admission::admit(r, live, Some(&before))?;
        apply::record_update(Some(&before), live, manager);
        Ok(())
    })?;
    Ok(json(200, &patched))
}

fn delete(
    state: &State,
    r: &'static ResourceType,
    ns: &str,
    name: &str,
    query: &Query,
    body: &Value,
) -> Result<Response<Body>, ApiError> {
    let live = state
        .store
        .get(r, ns, name)
        .ok_or_else(|| ApiError::not_found(&r.qualified(), name))?;
    let preconditions = &body["preconditions"];
    for (field, actual) in [
        ("uid", &live["metadata"]["uid"]),
        ("resourceVersion", &live["metadata"]["resourceVersion"]),
    ] {
        if let Some(wanted) = preconditions[field].as_str()
            && Some(wanted) != actual.as_str()
        {
            return Err(ApiError::conflict(
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {field}: {wanted}, ObjectMeta.{field}: {}",
                    r.qualified(),
                    actual.as_str().unwrap_or_default()
                ),
                None,
            ));
        }
    }
    let grace = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    match r.kind {
        "Pod" => {
            let grace = grace
                .or_else(|| live["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30)
                .max(0);
            let marked = state.store.update(r, ns, name, |pod| {
                if pod["metadata"]["deletionTimestamp"].is_null() {
                    pod["metadata"]["deletionTimestamp"] = json!(now());
                    pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                }
                Ok(())
            })?;
            Ok(json(200, &marked))
        }
        "Namespace" => {
            if SYSTEM_NAMESPACES.contains(&name) {
                return Err(ApiError::forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            let marked = state.store.update(r, ns, name, |namespace| {
                if namespace["metadata"]["deletionTimestamp"].is_null() {
                    namespace["metadata"]["deletionTimestamp"] = json!(now());
                    namespace["status"]["phase"] = json!("Terminating");
                }
                Ok(())
            })?;
            Ok(json(200, &marked))
        }
        _ => {
            let policy = body["propagationPolicy"]
                .as_str()
                .or_else(|| query.get("propagationPolicy"))
                .or_else(|| (body["orphanDependents"] == true).then_some("Orphan"));
            if policy == Some("Orphan") {
                orphan_dependents(state, live["metadata"]["uid"].as_str().unwrap_or_default());
            }
            let gone = state.store.delete(r, ns, name)?;
            let uid = gone["metadata"]["uid"].as_str().unwrap_or_default();
            Ok(json(200, &status::success(r.plural, name, uid)))
        }
    }
}

/// Removes the owner reference to `uid` from every pod, so the garbage collector leaves them.
fn orphan_dependents(state: &State, uid: &str) {
    let pods = discovery::core("pods");
    let (all, _) = state.store.list(pods, None);
    for pod in all {
        let owned = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
        if owned {
            let (ns, name) = crate::store::name_of(&pod);
            let _ = state.store.update(pods, ns, name, |p| {
                if let Some(refs) = p["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                Ok(())
            });
        }
    }
}

fn port_forward(
    state: &State,
    req: Request<Incoming>,
    o: &ObjectRequest,
    query: &Query,
    conn: &Conn,
) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::bad_request(
            "unable to upgrade connection: the ksync test cluster serves port-forward over WebSocket (GET) only",
        ));
    }
    let ns = o.namespace.as_deref().unwrap_or_default();
    let name = o.name.as_deref().unwrap_or_default();
    let ports = query.ports()?;
    let pod = state
        .store
        .get(o.resource, ns, name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: pod {name} is not running (phase {phase})"
        )));
    }
    let network = state.ports.get(ns, name).unwrap_or_default();
    let upgrade = portforward::negotiate(req.headers())?;
    let response = upgrade.response();
    let targets = ports.into_iter().map(|p| (p, network.address(p))).collect();
    let on_upgrade = hyper::upgrade::on(req);
    let cancel = [conn.stop.clone(), state.faults.port_forwards.token()];
    conn.tracker.spawn(portforward::serve(
        on_upgrade,
        upgrade,
        name.to_string(),
        targets,
        cancel,
    ));
    Ok(response)
}
