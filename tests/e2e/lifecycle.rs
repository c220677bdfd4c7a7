//! The agent's life cycle on whatever cluster is at hand: the real one `KSYNC_E2E_KUBECONFIG`
//! names (with the agent image `KSYNC_E2E_AGENT_IMAGE`), else the test cluster. It uses its
//! own agent namespace, so it never touches an existing install.

use std::path::PathBuf;

use ksync::cluster::radar::Radar;
use ksync::cluster::tunnel::NodeTunnel;
use ksync::cluster::{Cluster, ClusterOptions, agents};

/// `ksync ARGS` against `kubeconfig`.
fn ksync(
    kubeconfig: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> crate::support::Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ksync"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("KSYNC_HOME")
        .output()
        .expect("ksync runs");
    crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn init_doctor_tunnel_clean_on_the_cluster_at_hand() {
    let (kubeconfig, image, _test_cluster): (
        PathBuf,
        String,
        Option<ksync_test_cluster::TestCluster>,
    ) = match ksync_test_cluster::real_cluster() {
        Some(real) => (real.kubeconfig.clone(), real.agent_image.clone(), None),
        None => {
            let cluster = crate::support::cluster(&["node-a", "node-b"]).await;
            (
                cluster.kubeconfig_path().to_path_buf(),
                "ksync/agent:e2e".into(),
                Some(cluster),
            )
        }
    };
    let home = tempfile::tempdir().expect("tempdir");
    let namespace = format!("ksync-e2e-{}", std::process::id());

    ksync(
        &kubeconfig,
        home.path(),
        &["init", "--namespace", &namespace, "--image", &image],
    )
    .ok();
    let doctor = ksync(
        &kubeconfig,
        home.path(),
        &["doctor", "--namespace", &namespace],
    );
    assert_eq!(doctor.code, 0, "{}\n{}", doctor.stdout, doctor.stderr);

    let kube = Cluster::connect(&ClusterOptions {
        kubeconfig: Some(kubeconfig.clone()),
        context: None,
    })
    .await
    .expect("connects");
    let pods = agents::list(&kube, &namespace).await.expect("agents");
    assert!(!pods.is_empty() && pods.iter().all(|p| p.ready), "{pods:?}");
    for pod in &pods {
        let tunnel = NodeTunnel::open(&kube, &namespace, &pod.node)
            .await
            .expect("tunnel");
        let radar = Radar::connect(tunnel.radar, &pod.node)
            .await
            .expect("radar");
        assert_eq!(radar.version.node_name, pod.node);
    }

    let clean = ksync(
        &kubeconfig,
        home.path(),
        &["clean", "--namespace", &namespace],
    );
    assert!(
        clean
            .ok()
            .contains(&format!("deleted  Namespace/{namespace}")),
        "{}",
        clean.stdout
    );
}
