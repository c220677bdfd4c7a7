//! The example projects are real: each one's ksync.toml loads without errors or warnings.

use crate::helpers::Sandbox;

#[test]
fn every_example_project_loads() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let dir = entry.expect("entry").path();
        if !dir.join("ksync.toml").is_file() {
            continue;
        }
        let run =
            Sandbox::new().ksync(&["-C", dir.to_str().expect("utf-8"), "config", "-o", "json"]);
        let config = run.json();
        assert!(
            !config["specs"].as_array().expect("specs").is_empty(),
            "{}: no specs",
            dir.display()
        );
        assert_eq!(
            config["warnings"],
            serde_json::json!([]),
            "{}",
            dir.display()
        );
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the example projects under {}",
        examples.display()
    );
}

#[test]
fn the_readme_project_file_loads() {
    let readme = include_str!("../../README.md");
    let toml = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a ```toml block");
    let s = Sandbox::new();
    s.mkdir("project/services/api");
    s.write("project/ksync.toml", toml);
    let config = s.ksync(&["config", "-o", "json"]).json();
    let api = crate::helpers::spec(&config, "api");
    assert_eq!(api["namespace"], "dev");
    assert_eq!(api["remote_path"], "/srv/{{ pod.labels.tier }}");
    assert_eq!(api["target"]["selector"], "app=shop,tier in (api,worker)");
}
