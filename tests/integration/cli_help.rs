//! The help texts users read, snapshotted so changes are reviewed.

use crate::helpers::Sandbox;

#[test]
fn help_texts() {
    let sandbox = Sandbox::new();
    for args in [
        &["--help"][..],
        &["create", "--help"],
        &["delete", "--help"],
        &["config", "--help"],
        &["init", "--help"],
        &["clean", "--help"],
        &["doctor", "--help"],
        &["version", "--help"],
    ] {
        let out = sandbox.ksync(args);
        let name = format!("help_{}", args[..args.len() - 1].join("_"));
        insta::assert_snapshot!(name, out.ok());
    }
}

#[test]
fn usage_errors_exit_2() {
    let sandbox = Sandbox::new();
    let err = sandbox.ksync(&["create", "./src"]).fails(2).to_string();
    assert!(err.contains("REMOTE"), "{err}");
    sandbox
        .ksync(&["create", "--pod", "a", "-l", "app=b", "./s", "/app"])
        .fails(2);
    sandbox
        .ksync(&[
            "create",
            "-l",
            "app=b",
            "--local-read-only",
            "--remote-read-only",
            "./s",
            "/app",
        ])
        .fails(2);
    sandbox.ksync(&["frobnicate"]).fails(2);
}

#[test]
fn version_reports_build_and_protocol() {
    let sandbox = Sandbox::new();
    let v = sandbox.ksync(&["version", "-o", "json"]).json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["radar_protocol"], 1);
    let pretty = sandbox.ksync(&["version"]);
    assert!(
        pretty
            .ok()
            .starts_with(&format!("ksync {}\n", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn init_dry_run_prints_the_agent_manifests_from_config_and_flags() {
    let s = Sandbox::new();
    s.write(
        "project/ksync.toml",
        "[agent]\nimage = \"registry.local/ksync/agent:dev\"\nnode-selector = { pool = \"dev\" }\nresources = { syncthing = { limits = { memory = \"2Gi\" } } }\n",
    );
    let out = s.ksync(&[
        "init",
        "--dry-run",
        "--namespace",
        "dev-tools",
        "--toleration",
        "gpu=true:NoSchedule",
        "--docker-socket",
        "/var/run/docker.sock",
    ]);
    let yaml = out.ok();
    let docs: Vec<&str> = yaml.split("---\n").collect();
    assert_eq!(docs.len(), 6, "{yaml}");
    for (doc, kind) in docs.iter().zip([
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "Secret",
        "DaemonSet",
    ]) {
        assert!(doc.contains(&format!("kind: {kind}\n")), "{doc}");
    }
    let ds = docs[5];
    assert!(ds.contains("namespace: dev-tools"));
    assert!(ds.contains("image: \"registry.local/ksync/agent:dev\""));
    assert!(ds.contains(r#"nodeSelector: {"pool": "dev"}"#), "{ds}");
    assert!(ds.contains(r#"tolerations: [{"effect": "NoSchedule", "key": "gpu", "operator": "Equal", "value": "true"}]"#), "{ds}");
    assert!(ds.contains(r#"{"limits": {"memory": "2Gi"}}"#), "{ds}");
    assert!(ds.contains("path: \"/var/run/docker.sock\""));
    let bad = s.ksync(&["init", "--dry-run", "--image-pull-policy", "Sometimes"]);
    assert!(bad.fails(3).contains("image-pull-policy"), "{}", bad.stderr);
}
