//! `ksync create` and `ksync delete` edit ~/.ksync/ksync.yaml and nothing else of it.

use crate::helpers::{Sandbox, spec};

/// A user file as the original tool left it, plus a user's comments.
const ORIGINAL: &str = "\
# written by ksync 0.4, then edited by hand
apikey: ksync
context: \"\"
log-level: debug
namespace: default
port: 40322
spec:
# the main app
- name: sunny-husky
  containername: \"\"
  pod: \"\"
  selector:
  - app=app
  namespace: default
  localpath: /tmp/ksync
  remotepath: /code
  reload: true
  localreadonly: false
  remotereadonly: false
syncthing-port: 8384 # keep
";

#[test]
fn create_then_delete_restores_the_file_byte_for_byte() {
    let s = Sandbox::new();
    s.write("home/.ksync/ksync.yaml", ORIGINAL);
    s.mkdir("project/web");
    let out = s.ksync(&[
        "--context",
        "ignored-ctx",
        "create",
        "--name",
        "web",
        "-l",
        "app=web",
        "-l",
        "tier in (a,b)",
        "-c",
        "nginx",
        "-n",
        "dev",
        "--reload",
        "web",
        "/usr/share/nginx/html",
    ]);
    assert_eq!(
        s.redact(out.ok()),
        "Added spec `web` in ~/.ksync/ksync.yaml: [SANDBOX]/project/web → pods matching app=web,tier in (a,b):/usr/share/nginx/html\n"
    );
    let after = s.read("home/.ksync/ksync.yaml");
    let expected = ORIGINAL.replace(
        "syncthing-port",
        &format!(
            "- name: web\n  containername: nginx\n  selector: \"app=web,tier in (a,b)\"\n  namespace: dev\n  localpath: {}\n  remotepath: /usr/share/nginx/html\n  reload: true\nsyncthing-port",
            s.project().join("web").display()
        ),
    );
    assert_eq!(after, expected);
    assert!(
        !after.contains("ignored-ctx"),
        "global flags are never written"
    );

    let c = s.ksync(&["config", "-o", "json"]).json();
    let web = spec(&c, "web");
    assert_eq!(web["target"]["selector"], "app=web,tier in (a,b)");
    assert_eq!(web["container"], "nginx");
    assert_eq!(web["reload"], true);

    let out = s.ksync(&["delete", "web"]);
    assert_eq!(out.ok(), "Deleted spec `web` from ~/.ksync/ksync.yaml\n");
    assert_eq!(s.read("home/.ksync/ksync.yaml"), ORIGINAL);
}

#[test]
fn create_makes_the_home_and_file_and_a_readable_name() {
    let s = Sandbox::new();
    s.mkdir("project/api");
    s.ksync(&["create", "-p", "api-0", "api", "/srv"]).ok();
    assert_eq!(
        s.read("home/.ksync/ksync.yaml"),
        format!(
            "spec:\n- name: api-api-0\n  pod: api-0\n  localpath: {}\n  remotepath: /srv\n  reload: false\n",
            s.project().join("api").display()
        )
    );
    s.ksync(&[
        "create",
        "-l",
        "app=api",
        "api",
        "/srv",
        "--local-read-only",
    ])
    .ok();
    s.ksync(&["create", "-l", "app=api", "api", "/other"]).ok();
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(spec(&c, "api")["direction"], "local-read-only");
    assert_eq!(spec(&c, "api-2")["remote_path"], "/other");
}

#[test]
fn create_refuses_duplicates_unless_forced() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.ksync(&["create", "--name", "web", "-l", "app=web", "src", "/app"])
        .ok();

    let dup = s.ksync(&["create", "--name", "web", "-l", "app=other", "src", "/app"]);
    insta::assert_snapshot!("duplicate_name", dup.fails(4));

    let same = s.ksync(&["create", "--name", "web2", "-l", "app=web", "src/", "/app/"]);
    insta::assert_snapshot!("identical_but_renamed", same.fails(4));

    s.ksync(&[
        "create", "--name", "web2", "-l", "app=web", "--force", "src", "/app",
    ])
    .ok();
    let replaced = s.ksync(&[
        "create",
        "--name",
        "web",
        "-l",
        "app=other",
        "--force",
        "src",
        "/app",
    ]);
    assert!(replaced.ok().starts_with("Replaced spec `web`"));
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(spec(&c, "web")["target"]["selector"], "app=other");
    assert_eq!(c["specs"].as_array().expect("specs").len(), 2);
}

#[test]
fn create_refuses_a_name_the_project_defines() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"web\"\npod = \"p\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n",
    );
    let run = s.ksync(&[
        "create", "--name", "web", "--force", "-l", "app=web", "src", "/app",
    ]);
    assert!(run.fails(4).contains("already exists in"), "{}", run.stderr);
}

#[test]
fn create_validates_like_the_config_files() {
    let s = Sandbox::new();
    s.write("project/file.txt", "x");
    for (args, needle) in [
        (
            &["create", "-l", "app in (a", "src", "/app"][..],
            "not a valid label selector",
        ),
        (&["create", "-l", "app=a", "src", "app"], "is not absolute"),
        (&["create", "-l", "app=a", "src", "/a/../b"], "write `/b`"),
        (
            &["create", "--name", "Web", "-l", "app=a", "src", "/a"],
            "is not a DNS-1123 label",
        ),
        (&["create", "-p", "Bad_Pod", "src", "/a"], "pod name"),
        (
            &["create", "-l", "app=a", "-n", "NS", "src", "/a"],
            "namespace",
        ),
        (&["create", "-l", "app=a", "file.txt", "/a"], "is a file"),
    ] {
        let run = s.ksync(args);
        assert!(run.fails(3).contains(needle), "{args:?}: {}", run.stderr);
    }
    assert!(!s.user_file().exists(), "nothing is written on error");
    let warned = s.ksync(&["create", "-l", "app=a", "later", "/a"]);
    assert!(
        warned
            .stderr
            .contains("local folder later does not exist yet"),
        "{}",
        warned.stderr
    );
    warned.ok();
}

#[test]
fn delete_unknown_names_lists_the_known_ones() {
    let s = Sandbox::new();
    s.write("home/.ksync/ksync.yaml", ORIGINAL);
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"api\"\npod = \"p\"\nlocalpath = \".\"\nremotepath = \"/app\"\n",
    );
    let run = s.ksync(&["delete", "nope"]);
    insta::assert_snapshot!("delete_unknown", run.fails(4));
    let run = s.ksync(&["delete", "api"]);
    assert!(
        run.fails(4)
            .contains("`api` is defined in ksync.toml; remove it there"),
        "{}",
        run.stderr
    );
    assert_eq!(s.read("home/.ksync/ksync.yaml"), ORIGINAL);
    let run = s.ksync(&["delete", "sunny-husky"]);
    run.ok();
    assert!(s.read("home/.ksync/ksync.yaml").contains("spec: []\n"));
}

#[test]
fn a_broken_user_file_is_never_overwritten() {
    let s = Sandbox::new();
    let broken = "spec:\n- name: a\n  pod: [x\n";
    s.write("home/.ksync/ksync.yaml", broken);
    s.mkdir("project/src");
    s.ksync(&["create", "-l", "app=a", "src", "/a"]).fails(3);
    s.ksync(&["delete", "a"]).fails(3);
    assert_eq!(s.read("home/.ksync/ksync.yaml"), broken);
}
