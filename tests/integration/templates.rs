//! Templates in spec fields, as users see them through `ksync config`.

use std::process::Command;

use crate::helpers::{Sandbox, spec};

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn ci_preview_names_from_the_git_branch() {
    let s = Sandbox::new();
    let project = s.project();
    git(&project, &["init", "-q", "-b", "feature/Login_Page"]);
    git(&project, &["commit", "-q", "--allow-empty", "-m", "first"]);
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        r#"namespace = "preview-{{ git.branch | slug }}"
[[spec]]
name = "web-{{ git.short_commit }}"
selector = "app=web,commit={{ git.short_commit }}"
localpath = "src"
remotepath = "/app"
"#,
    );
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(
        c["settings"]["namespace"]["value"],
        "preview-feature-login-page"
    );
    let specs = c["specs"].as_array().expect("specs");
    let name = specs[0]["name"].as_str().expect("name");
    assert!(name.starts_with("web-") && name.len() == 12, "{name}");
    assert_eq!(specs[0]["namespace"], "preview-feature-login-page");
    assert_eq!(
        specs[0]["target"]["selector"],
        format!("app=web,commit={}", &name[4..])
    );
}

#[test]
fn detached_head_takes_the_branch_from_ci_variables() {
    let mut s = Sandbox::new();
    let project = s.project();
    git(&project, &["init", "-q", "-b", "main"]);
    git(&project, &["commit", "-q", "--allow-empty", "-m", "first"]);
    git(&project, &["checkout", "-q", "--detach"]);
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "namespace = \"preview-{{ git.branch | slug }}\"\n",
    );
    let err = s.ksync(&["config"]);
    assert!(err.fails(3).contains("HEAD is detached"), "{}", err.stderr);
    s.env("GITHUB_HEAD_REF", "fix/Crash-42");
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["namespace"]["value"], "preview-fix-crash-42");
}

#[test]
fn env_vars_project_and_user() {
    let mut s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        r#"[vars]
app = "shop"
[[spec]]
name = "{{ vars.app }}-{{ user }}"
selector = "app={{ vars.app }}"
namespace = "{{ env.TEAM | default('platform') }}"
localpath = "src"
remotepath = "/srv/{{ project }}/{{ vars.app }}"
"#,
    );
    let c = s.ksync(&["config", "-o", "json"]).json();
    let web = spec(&c, "shop-dev");
    assert_eq!(web["namespace"], "platform");
    assert_eq!(web["remote_path"], "/srv/project/shop");

    s.env("TEAM", "payments");
    let c = s
        .ksync(&["--var", "app=cart", "config", "-o", "json"])
        .json();
    let web = spec(&c, "cart-dev");
    assert_eq!(web["namespace"], "payments");
    assert_eq!(web["target"]["selector"], "app=cart");
    assert_eq!(web["origin"]["fields"]["name"], serde_json::Value::Null);
}

#[test]
fn per_container_remotepath_is_kept_as_a_template() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        r#"[[spec]]
name = "web"
selector = "app=web"
localpath = "src"
remotepath = "/srv/{{ pod.labels.tier }}/{{ container }}"
"#,
    );
    let c = s.ksync(&["config", "-o", "json"]).json();
    let web = spec(&c, "web");
    assert_eq!(
        web["remote_path"],
        "/srv/{{ pod.labels.tier }}/{{ container }}"
    );
    assert_eq!(web["remote_path_per_container"], true);
    assert!(s.ksync(&["config"]).ok().contains("(per container)"));
}

#[test]
fn a_rendered_remotepath_cannot_escape() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app/{{ vars.sub }}\"\n",
    );
    let run = s.ksync(&["--var", "sub=../../etc", "config"]);
    insta::assert_snapshot!(s.redact(run.fails(3)));
}
