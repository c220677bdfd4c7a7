//! The Syncthing REST client: exactly the endpoints ksync needs, with per-object config
//! endpoints (devices and folders are added, changed and removed one by one; ksync never
//! posts a whole configuration back).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SyncthingError;
use super::model::{
    Completion, DeviceConfig, Event, FileInfo, FolderConfig, FolderErrors, FolderStatus, Ignores,
    SystemStatus, SystemVersion,
};

/// A Syncthing's REST API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
    /// A client without a request timeout, for long polls (they carry their own).
    poll: reqwest::Client,
}

/// How long a plain request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8384`) with API key `key`.
    pub fn new(base: &str, key: &str) -> Self {
        let build = |timeout: Option<Duration>| {
            let builder = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(30));
            let builder = match timeout {
                Some(t) => builder.timeout(t),
                None => builder,
            };
            builder.build().unwrap_or_default()
        };
        Client {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http: build(Some(REQUEST_TIMEOUT)),
            poll: build(None),
        }
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        long_poll: Option<Duration>,
    ) -> Result<reqwest::Response, SyncthingError> {
        let url = format!("{}{path}", self.base);
        let client = if long_poll.is_some() {
            &self.poll
        } else {
            &self.http
        };
        let mut request = client
            .request(method.clone(), &url)
            .header("X-API-Key", &self.key)
            .query(query);
        if let Some(t) = long_poll {
            request = request.timeout(t);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SyncthingError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                SyncthingError::Unauthorized { url }
            }
            _ => SyncthingError::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                body: body.trim().to_string(),
            },
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, SyncthingError> {
        let response = self
            .call::<()>(Method::GET, path, query, None, None)
            .await?;
        decode(path, response).await
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<(), SyncthingError> {
        self.call(method, path, query, body, None).await.map(|_| ())
    }

    /// `GET /rest/system/ping`: true when it answers.
    pub async fn ping(&self) -> Result<(), SyncthingError> {
        self.call::<()>(Method::GET, "/rest/system/ping", &[], None, None)
            .await
            .map(|_| ())
    }

    /// `GET /rest/system/status`.
    pub async fn status(&self) -> Result<SystemStatus, SyncthingError> {
        self.get("/rest/system/status", &[]).await
    }

    /// `GET /rest/system/version`.
    pub async fn version(&self) -> Result<SystemVersion, SyncthingError> {
        self.get("/rest/system/version", &[]).await
    }

    /// `POST /rest/system/shutdown`.
    pub async fn shutdown(&self) -> Result<(), SyncthingError> {
        self.send::<()>(Method::POST, "/rest/system/shutdown", &[], None)
            .await
    }

    /// `GET /rest/config/devices/{id}`, `None` when the device is not configured.
    pub async fn device(&self, id: &str) -> Result<Option<DeviceConfig>, SyncthingError> {
        not_found_is_none(self.get(&format!("/rest/config/devices/{id}"), &[]).await)
    }

    /// `PUT /rest/config/devices/{id}`: adds or replaces one device.
    pub async fn put_device(&self, device: &DeviceConfig) -> Result<(), SyncthingError> {
        let path = format!("/rest/config/devices/{}", device.device_id);
        self.send(Method::PUT, &path, &[], Some(device)).await
    }

    /// `DELETE /rest/config/devices/{id}`.
    pub async fn delete_device(&self, id: &str) -> Result<(), SyncthingError> {
        let path = format!("/rest/config/devices/{id}");
        self.send::<()>(Method::DELETE, &path, &[], None).await
    }

    /// `GET /rest/config/folders/{id}`, `None` when the folder is not configured.
    pub async fn folder(&self, id: &str) -> Result<Option<FolderConfig>, SyncthingError> {
        not_found_is_none(self.get(&format!("/rest/config/folders/{id}"), &[]).await)
    }

    /// `GET /rest/config/folders`.
    pub async fn folders(&self) -> Result<Vec<FolderConfig>, SyncthingError> {
        self.get("/rest/config/folders", &[]).await
    }

    /// `PUT /rest/config/folders/{id}`: adds or replaces one folder.
    pub async fn put_folder(&self, folder: &FolderConfig) -> Result<(), SyncthingError> {
        let path = format!("/rest/config/folders/{}", folder.id);
        self.send(Method::PUT, &path, &[], Some(folder)).await
    }

    /// `DELETE /rest/config/folders/{id}`.
    pub async fn delete_folder(&self, id: &str) -> Result<(), SyncthingError> {
        let path = format!("/rest/config/folders/{id}");
        self.send::<()>(Method::DELETE, &path, &[], None).await
    }

    /// `PATCH /rest/config/options` with the given fields only.
    pub async fn patch_options(&self, options: &serde_json::Value) -> Result<(), SyncthingError> {
        self.send(Method::PATCH, "/rest/config/options", &[], Some(options))
            .await
    }

    /// `GET /rest/events` long poll: events after `since` (never replaying older ones),
    /// waiting at most `wait` for the first.
    pub async fn events(&self, since: u64, wait: Duration) -> Result<Vec<Event>, SyncthingError> {
        self.poll_events("/rest/events", since, wait).await
    }

    /// `GET /rest/events/disk` long poll: `LocalChangeDetected` and `RemoteChangeDetected`.
    pub async fn disk_events(
        &self,
        since: u64,
        wait: Duration,
    ) -> Result<Vec<Event>, SyncthingError> {
        self.poll_events("/rest/events/disk", since, wait).await
    }

    /// The ID of the newest event of a subscription (0 when there is none), so a consumer
    /// starts after it instead of replaying history.
    pub async fn last_event_id(&self, disk: bool) -> Result<u64, SyncthingError> {
        let path = if disk {
            "/rest/events/disk"
        } else {
            "/rest/events"
        };
        let events: Vec<Event> = self.get(path, &[("limit", "1"), ("timeout", "0")]).await?;
        Ok(events.last().map_or(0, |e| e.id))
    }

    async fn poll_events(
        &self,
        path: &str,
        since: u64,
        wait: Duration,
    ) -> Result<Vec<Event>, SyncthingError> {
        let since = since.to_string();
        let seconds = wait.as_secs().max(1).to_string();
        let response = self
            .call::<()>(
                Method::GET,
                path,
                &[("since", &since), ("timeout", &seconds)],
                None,
                Some(wait + Duration::from_secs(10)),
            )
            .await?;
        decode(path, response).await
    }

    /// `GET /rest/db/completion?folder=&device=`.
    pub async fn completion(
        &self,
        folder: &str,
        device: &str,
    ) -> Result<Completion, SyncthingError> {
        self.get(
            "/rest/db/completion",
            &[("folder", folder), ("device", device)],
        )
        .await
    }

    /// `GET /rest/db/status?folder=`.
    pub async fn folder_status(&self, folder: &str) -> Result<FolderStatus, SyncthingError> {
        self.get("/rest/db/status", &[("folder", folder)]).await
    }

    /// `GET /rest/db/file?folder=&file=`, `None` when the cluster does not know the file.
    pub async fn file(&self, folder: &str, file: &str) -> Result<Option<FileInfo>, SyncthingError> {
        not_found_is_none(
            self.get("/rest/db/file", &[("folder", folder), ("file", file)])
                .await,
        )
    }

    /// Names of the files `device` still needs in `folder` (`GET /rest/db/remoteneed`, all
    /// pages).
    pub async fn remote_need(
        &self,
        folder: &str,
        device: &str,
    ) -> Result<Vec<String>, SyncthingError> {
        const PER_PAGE: usize = 1000;
        let mut names = Vec::new();
        for page in 1.. {
            let page_text = page.to_string();
            let per_page = PER_PAGE.to_string();
            let answer: serde_json::Value = self
                .get(
                    "/rest/db/remoteneed",
                    &[
                        ("folder", folder),
                        ("device", device),
                        ("page", &page_text),
                        ("perpage", &per_page),
                    ],
                )
                .await?;
            let files = answer["files"].as_array().cloned().unwrap_or_default();
            names.extend(
                files
                    .iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_string)),
            );
            if files.len() < PER_PAGE {
                break;
            }
        }
        Ok(names)
    }

    /// `GET /rest/folder/errors?folder=`.
    pub async fn folder_errors(&self, folder: &str) -> Result<FolderErrors, SyncthingError> {
        self.get("/rest/folder/errors", &[("folder", folder)]).await
    }

    /// `POST /rest/db/scan?folder=&sub=…`: scans exactly these sub-paths (the whole folder
    /// when `subs` is empty). Returns once they are scanned and in the local index.
    pub async fn scan(&self, folder: &str, subs: &[String]) -> Result<(), SyncthingError> {
        let mut query: Vec<(&str, &str)> = vec![("folder", folder)];
        query.extend(subs.iter().map(|s| ("sub", s.as_str())));
        self.send::<()>(Method::POST, "/rest/db/scan", &query, None)
            .await
    }

    /// `GET /rest/db/ignores?folder=`.
    pub async fn ignores(&self, folder: &str) -> Result<Vec<String>, SyncthingError> {
        let ignores: Ignores = self.get("/rest/db/ignores", &[("folder", folder)]).await?;
        Ok(ignores.ignore.unwrap_or_default())
    }

    /// `POST /rest/db/ignores?folder=`: replaces the folder's ignore patterns.
    pub async fn set_ignores(
        &self,
        folder: &str,
        patterns: &[String],
    ) -> Result<(), SyncthingError> {
        let body = Ignores {
            ignore: Some(patterns.to_vec()),
        };
        self.send(
            Method::POST,
            "/rest/db/ignores",
            &[("folder", folder)],
            Some(&body),
        )
        .await
    }

    /// `POST /rest/db/revert?folder=`: a receive-only folder drops its local changes.
    pub async fn revert(&self, folder: &str) -> Result<(), SyncthingError> {
        self.send::<()>(Method::POST, "/rest/db/revert", &[("folder", folder)], None)
            .await
    }

    /// `POST /rest/db/override?folder=`: a send-only folder makes its version global.
    pub async fn override_changes(&self, folder: &str) -> Result<(), SyncthingError> {
        self.send::<()>(
            Method::POST,
            "/rest/db/override",
            &[("folder", folder)],
            None,
        )
        .await
    }

    /// `GET /rest/system/connections`: whether `device` is connected.
    pub async fn connected(&self, device: &str) -> Result<bool, SyncthingError> {
        let connections: serde_json::Value = self.get("/rest/system/connections", &[]).await?;
        Ok(connections["connections"][device]["connected"].as_bool() == Some(true))
    }
}

async fn decode<T: DeserializeOwned>(
    path: &str,
    response: reqwest::Response,
) -> Result<T, SyncthingError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| SyncthingError::Unreachable {
            url: path.to_string(),
            reason: e.to_string(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| SyncthingError::Api {
        method: "GET".into(),
        path: path.to_string(),
        status: 200,
        body: format!(
            "unexpected answer ({e}): {}",
            String::from_utf8_lossy(&bytes)
        ),
    })
}

fn not_found_is_none<T>(result: Result<T, SyncthingError>) -> Result<Option<T>, SyncthingError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(SyncthingError::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
