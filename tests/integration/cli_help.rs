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
