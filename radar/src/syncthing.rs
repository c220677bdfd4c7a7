//! The Syncthing that runs beside radar in the same agent pod, restarted through its REST
//! API (`POST /rest/system/restart`). Both containers share the pod's network, so the API is
//! on 127.0.0.1; the API key comes from the same Secret Syncthing reads.

use std::time::Duration;

use crate::error::RadarError;

/// Where the pod's Syncthing listens, and its API key.
#[derive(Debug, Clone)]
pub struct SyncthingApi {
    /// e.g. `http://127.0.0.1:8384`.
    pub url: String,
    /// The API key (`X-API-Key`); `None` when radar was not given one.
    pub api_key: Option<String>,
}

impl SyncthingApi {
    /// Asks Syncthing to restart itself.
    pub async fn restart(&self) -> Result<(), RadarError> {
        let key = self.api_key.as_deref().ok_or_else(|| {
            RadarError::FailedPrecondition(
                "radar has no Syncthing API key; start it with --syncthing-api-key-file".into(),
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| RadarError::Internal(format!("cannot build an HTTP client: {e}")))?;
        let url = format!("{}/rest/system/restart", self.url.trim_end_matches('/'));
        let response = client
            .post(&url)
            .header("X-API-Key", key)
            .send()
            .await
            .map_err(|e| {
                RadarError::FailedPrecondition(format!(
                    "Syncthing at {} does not answer ({e}); is the agent pod's syncthing container running?",
                    self.url
                ))
            })?;
        match response.status() {
            s if s.is_success() => Ok(()),
            reqwest::StatusCode::FORBIDDEN | reqwest::StatusCode::UNAUTHORIZED => {
                Err(RadarError::FailedPrecondition(
                    "Syncthing refused radar's API key; radar and Syncthing must read the same Secret".into(),
                ))
            }
            s => Err(RadarError::Internal(format!(
                "Syncthing answered {s} to a restart request"
            ))),
        }
    }
}

pub use syncthing_home::{SAFE_OPTIONS, init_home, option, set_gui_address, set_options};
