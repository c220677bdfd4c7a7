//! RestartSyncthing restarts a real Syncthing through its REST API.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use radar::syncthing::SyncthingApi;
use radar_proto::v1::RestartSyncthingRequest;

use crate::support::{RadarOptions, TestRadar, free_port, random_hex, wait_for_async};

/// A Syncthing (with its monitor process, which performs restarts), stopped by pid.
struct Syncthing {
    child: Child,
    _home: tempfile::TempDir,
    url: String,
    key: String,
}

impl Syncthing {
    fn start() -> Syncthing {
        let home = tempfile::tempdir().expect("tempdir");
        let gui = format!("127.0.0.1:{}", free_port());
        radar::syncthing::init_home(
            std::path::Path::new("syncthing"),
            home.path(),
            &format!("tcp://127.0.0.1:{}", free_port()),
            &gui,
        )
        .expect("init");
        let key = random_hex(32);
        let child = Command::new("syncthing")
            .arg("serve")
            .arg(format!("--home={}", home.path().display()))
            .args([
                "--no-browser",
                "--no-upgrade",
                &format!("--gui-apikey={key}"),
            ])
            .env("STNODEFAULTFOLDER", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("syncthing starts");
        Syncthing {
            child,
            _home: home,
            url: format!("http://{gui}"),
            key,
        }
    }

    /// `startTime` from /rest/system/status, once Syncthing answers.
    async fn start_time(&self) -> Option<String> {
        let status: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/rest/system/status", self.url))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .json()
            .await
            .ok()?;
        status["startTime"].as_str().map(str::to_string)
    }
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        // SIGTERM to the monitor stops it and its child.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_syncthing_through_its_api() {
    let syncthing = Syncthing::start();
    let first = wait_for_async("Syncthing to answer", Duration::from_secs(30), || {
        syncthing.start_time()
    })
    .await;

    let mut radar = TestRadar::start(RadarOptions {
        syncthing: SyncthingApi {
            url: syncthing.url.clone(),
            api_key: Some(syncthing.key.clone()),
        },
        ..RadarOptions::default()
    })
    .await;
    radar
        .client
        .restart_syncthing(RestartSyncthingRequest {})
        .await
        .expect("restart accepted");
    let second = wait_for_async(
        "Syncthing to come back with a new start time",
        Duration::from_secs(60),
        || async { syncthing.start_time().await.filter(|t| *t != first) },
    )
    .await;
    assert_ne!(first, second);

    // A wrong key is refused with a message that says why.
    let mut wrong = TestRadar::start(RadarOptions {
        syncthing: SyncthingApi {
            url: syncthing.url.clone(),
            api_key: Some("wrong".into()),
        },
        ..RadarOptions::default()
    })
    .await;
    let status = wrong
        .client
        .restart_syncthing(RestartSyncthingRequest {})
        .await
        .expect_err("wrong key");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("API key"), "{status:?}");
}
