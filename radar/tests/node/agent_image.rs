//! The agent image as the DaemonSet runs it: radar and Syncthing in their own containers,
//! in the host PID namespace, with only the capabilities the manifests grant. Radar resolves a
//! sibling container's path and the image's Syncthing writes there.

use std::path::Path;
use std::time::Duration;

use radar_proto::v1::radar_client::RadarClient;
use radar_proto::v1::{GetVersionRequest, ResolvePathRequest};

use crate::support::{Container, free_port, random_hex, run, try_run, wait_for};

/// The capabilities the agent's containers get (templates/agent/daemonset.yaml.j2).
const CAPS: &[&str] = &[
    "--cap-drop=ALL",
    "--cap-add=SYS_PTRACE",
    "--cap-add=DAC_OVERRIDE",
    "--cap-add=DAC_READ_SEARCH",
    "--cap-add=CHOWN",
    "--cap-add=FOWNER",
    "--cap-add=FSETID",
    "--cap-add=KILL",
];

/// The agent image, built from this workspace's radar binary.
struct AgentImage {
    tag: String,
}

impl AgentImage {
    fn build() -> AgentImage {
        let tag = format!("ksync-test/agent:{}", random_hex(12));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/build-agent-image.sh");
        run(
            "bash",
            &[
                script.to_str().expect("utf-8"),
                "--radar",
                env!("CARGO_BIN_EXE_radar"),
                "--tag",
                &tag,
            ],
        );
        AgentImage { tag }
    }
}

impl Drop for AgentImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// A detached agent container, removed when dropped.
struct Agent(String);

impl Agent {
    fn run(image: &str, flags: &[&str], command: &[&str]) -> Agent {
        let mut args = vec![
            "run",
            "-d",
            "--label",
            crate::support::TEST_LABEL,
            "--pid=host",
            "--network=host",
        ];
        args.extend_from_slice(CAPS);
        args.extend_from_slice(flags);
        args.push(image);
        args.extend_from_slice(command);
        Agent(run("docker", &args))
    }

    fn logs(&self) -> String {
        let (_, out, err) = try_run("docker", &["logs", &self.0]);
        format!("{out}\n{err}")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn radar_and_syncthing_in_the_agent_image() {
    let image = AgentImage::build();
    let target = Container::start(&[], "mkdir -p /app && echo ready && exec sleep 3600");

    let secrets = tempfile::tempdir().expect("tempdir");
    let key = random_hex(32);
    std::fs::write(secrets.path().join("apikey"), &key).expect("key");
    let home = tempfile::tempdir().expect("tempdir");
    let (gui, listen, radar_port) = (free_port(), free_port(), free_port());
    let home_mount = format!("{}:/var/syncthing", home.path().display());
    let secret_mount = format!("{}:/etc/ksync:ro", secrets.path().display());
    let gui_address = format!("127.0.0.1:{gui}");

    // The init container: keys, config and safe options before Syncthing's first start.
    let mut init = vec!["run", "--rm", "-v", &home_mount, &image.tag];
    let listen_url = format!("tcp://127.0.0.1:{listen}");
    init.extend_from_slice(&[
        "radar",
        "syncthing-init",
        "--home",
        "/var/syncthing",
        "--listen",
        &listen_url,
        "--gui-address",
        &gui_address,
    ]);
    run("docker", &init);

    let syncthing = Agent::run(
        &image.tag,
        &["-v", &home_mount, "-v", &secret_mount],
        &[
            "syncthing",
            "serve",
            "--home=/var/syncthing",
            "--no-browser",
            "--no-upgrade",
            &format!("--gui-apikey={key}"),
        ],
    );
    let radar_port_text = radar_port.to_string();
    let radar = Agent::run(
        &image.tag,
        &[
            "-v",
            &secret_mount,
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-e",
            "NODE_NAME=node-a",
        ],
        &[
            "radar",
            "serve",
            "--port",
            &radar_port_text,
            "--syncthing-url",
            &format!("http://{gui_address}"),
            "--syncthing-api-key-file",
            "/etc/ksync/apikey",
        ],
    );

    // Readiness, as the manifests' probes check it.
    wait_for("radar's readiness probe", Duration::from_secs(30), || {
        try_run(
            "docker",
            &[
                "exec",
                &radar.0,
                "radar",
                "probe",
                "radar",
                "--addr",
                &format!("127.0.0.1:{radar_port}"),
            ],
        )
        .0
        .then_some(())
    });
    wait_for(
        "Syncthing's readiness probe",
        Duration::from_secs(30),
        || {
            try_run(
                "docker",
                &[
                    "exec",
                    &syncthing.0,
                    "radar",
                    "probe",
                    "syncthing",
                    "--syncthing-url",
                    &format!("http://{gui_address}"),
                    "--syncthing-api-key-file",
                    "/etc/ksync/apikey",
                ],
            )
            .0
            .then_some(())
        },
    );

    let mut client = RadarClient::connect(format!("http://127.0.0.1:{radar_port}"))
        .await
        .expect("connect");
    let version = client
        .get_version(GetVersionRequest {})
        .await
        .expect("version")
        .into_inner();
    assert_eq!(version.node_name, "node-a");
    assert_eq!(version.runtime_name, "docker");
    assert_eq!(version.protocol_version, radar_proto::PROTOCOL_VERSION);

    let resolved = client
        .resolve_path(ResolvePathRequest {
            container_id: target.pod_status_id(),
            path: "/app/site".into(),
            create: true,
        })
        .await
        .unwrap_or_else(|e| panic!("resolve failed: {e:?}\nradar logs:\n{}", radar.logs()))
        .into_inner();
    assert!(resolved.created);
    assert!(
        resolved
            .host_path
            .starts_with(&format!("/proc/{}/root/", target.pid()))
    );

    // The image's Syncthing writes into the container: adding a folder makes it create its
    // `.stfolder` marker at the path radar gave.
    let http = reqwest::Client::new();
    let folder = serde_json::json!({
        "id": "probe",
        "label": "probe",
        "path": resolved.host_path,
        "type": "sendreceive",
    });
    let response = http
        .post(format!("http://{gui_address}/rest/config/folders"))
        .header("X-API-Key", &key)
        .json(&folder)
        .send()
        .await
        .expect("Syncthing answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    wait_for(
        "Syncthing's folder marker in the container",
        Duration::from_secs(30),
        || {
            target
                .exec_ok(&["test", "-d", "/app/site/.stfolder"])
                .then_some(())
        },
    );
    let errors = http
        .get(format!("http://{gui_address}/rest/db/status?folder=probe"))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("status")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_ne!(errors["state"], "error", "{errors}\n{}", syncthing.logs());
}
