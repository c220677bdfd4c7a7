//! The official Kubernetes Python client (`kubernetes` from PyPI) port-forwarding through the
//! test cluster: a second, independent implementation of the WebSocket channel protocol
//! (kube-rs being the first), over v5 as it negotiates and over v4.

use std::path::Path;
use std::process::Command;

use crate::support::cluster_with_echo_pod;

#[tokio::test]
async fn python_client_portforward_v4_and_v5() {
    let import = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .expect("python3 runs");
    assert!(
        import.status.success(),
        "this test needs the Python client: pip install kubernetes (tests/run installs it): {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let (cluster, pod) = cluster_with_echo_pod().await;

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/conformance/portforward.py");
    let out = tokio::task::spawn_blocking({
        let kubeconfig = cluster.kubeconfig_path().to_path_buf();
        let pod = pod.clone();
        move || {
            Command::new("python3")
                .arg(script)
                .arg(kubeconfig)
                .args(["default", &pod])
                .output()
                .expect("python3 runs")
        }
    })
    .await
    .expect("joined");
    assert!(
        out.status.success(),
        "portforward.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    assert_eq!(seen["protocol"], "v5.channel.k8s.io");
    assert_eq!(seen["echo"], true, "{seen}");
    assert!(seen["echo_error"].is_null(), "{seen}");
    assert_eq!(seen["v4_protocol"], "v4.channel.k8s.io");
    assert_eq!(seen["v4_echo"], true, "{seen}");
    let http = seen["http"].as_str().expect("http");
    assert!(http.starts_with("HTTP/1.1 200 OK"), "{http}");
    assert!(http.ends_with("hello from the pod\n"), "{http}");
    assert_eq!(seen["closed_port_data"], "");
    let error = seen["closed_port_error"]
        .as_str()
        .expect("an error message");
    assert!(
        error.starts_with(&format!("error forwarding port 9 to pod {pod}")),
        "{error}"
    );
    assert!(error.ends_with("connect: connection refused"), "{error}");

    // Every session was a WebSocket upgrade of a GET, as the client sends them.
    let sessions = cluster
        .requests()
        .iter()
        .filter(|r| r.contains("/portforward?"))
        .count();
    assert_eq!(sessions, 4);
}
