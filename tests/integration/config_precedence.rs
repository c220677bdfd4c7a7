//! Every configuration layer, and that each overrides the ones below it:
//! defaults < ~/.ksync/ksync.yaml < ksync.toml < ksync.local.toml < KSYNC_* < flags.

use crate::helpers::{Sandbox, spec};

const USER: &str = "\
namespace: user-ns
context: user-ctx
log-level: debug
spec:
- name: web
  selector: app=web
  localpath: /srv/user-web
  remotepath: /from-user
  reload: true
- name: tools
  pod: tools-0
  localpath: tools
  remotepath: /tools
";

const PROJECT: &str = r#"
namespace = "project-ns"

[[spec]]
name = "web"
remotepath = "/from-project"
localpath = "web"

[[spec]]
name = "api"
pod = "api-0"
localpath = "api"
remotepath = "/srv"
"#;

const LOCAL: &str = r#"
[[spec]]
name = "web"
remotepath = "/from-local"
localpath = "../elsewhere"
"#;

#[test]
fn each_layer_overrides_the_one_below() {
    let mut s = Sandbox::new();

    // Built-in defaults only.
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["log_level"]["value"], "info");
    assert_eq!(c["settings"]["log_level"]["source"], "built-in default");
    assert_eq!(c["settings"]["port"]["value"], 40322);
    assert_eq!(c["settings"]["namespace"], serde_json::Value::Null);
    assert_eq!(c["specs"].as_array().expect("specs").len(), 0);

    // The user file.
    s.write("home/.ksync/ksync.yaml", USER);
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["namespace"]["value"], "user-ns");
    assert_eq!(c["settings"]["namespace"]["source"], "~/.ksync/ksync.yaml");
    assert_eq!(c["settings"]["log_level"]["value"], "debug");
    assert_eq!(spec(&c, "web")["remote_path"], "/from-user");
    assert_eq!(spec(&c, "web")["namespace"], "user-ns");
    // Relative paths in the user file resolve against ~/.ksync.
    assert_eq!(
        spec(&c, "tools")["local_path"],
        s.root().join("home/.ksync/tools").display().to_string()
    );

    // The project file overrides it, key by key.
    s.write("project/ksync.toml", PROJECT);
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["namespace"]["value"], "project-ns");
    assert_eq!(c["settings"]["namespace"]["source"], "ksync.toml");
    assert_eq!(c["settings"]["context"]["value"], "user-ctx");
    let web = spec(&c, "web");
    assert_eq!(web["remote_path"], "/from-project");
    assert_eq!(web["target"]["selector"], "app=web");
    assert_eq!(web["reload"], true);
    assert_eq!(web["origin"]["fields"]["remotepath"], "ksync.toml");
    assert_eq!(web["origin"]["fields"]["selector"], "~/.ksync/ksync.yaml");
    assert_eq!(web["origin"]["declared_in"], "~/.ksync/ksync.yaml");
    assert_eq!(
        web["local_path"],
        s.project().join("web").display().to_string()
    );
    let names: Vec<&str> = c["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["web", "tools", "api"]);

    // ksync.local.toml overrides the project file.
    s.write("project/ksync.local.toml", LOCAL);
    let c = s.ksync(&["config", "-o", "json"]).json();
    let web = spec(&c, "web");
    assert_eq!(web["remote_path"], "/from-local");
    assert_eq!(web["origin"]["fields"]["remotepath"], "ksync.local.toml");
    assert_eq!(
        web["origin"]["sources"],
        serde_json::json!(["~/.ksync/ksync.yaml", "ksync.toml", "ksync.local.toml"])
    );
    assert_eq!(
        web["local_path"],
        s.root().join("elsewhere").display().to_string()
    );

    // KSYNC_* environment variables override the files.
    s.env("KSYNC_NAMESPACE", "env-ns")
        .env("KSYNC_LOG_LEVEL", "trace");
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["namespace"]["value"], "env-ns");
    assert_eq!(
        c["settings"]["namespace"]["source"],
        "environment (KSYNC_NAMESPACE)"
    );
    assert_eq!(c["settings"]["log_level"]["value"], "trace");
    assert_eq!(spec(&c, "api")["namespace"], "env-ns");

    // Command-line flags override everything.
    let c = s
        .ksync(&[
            "--context",
            "flag-ctx",
            "config",
            "-n",
            "flag-ns",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(c["settings"]["namespace"]["value"], "flag-ns");
    assert_eq!(
        c["settings"]["namespace"]["source"],
        "command line (--namespace)"
    );
    assert_eq!(c["settings"]["context"]["value"], "flag-ctx");
    assert_eq!(spec(&c, "tools")["namespace"], "flag-ns");
}

#[test]
fn a_spec_namespace_beats_the_default() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "namespace = \"team\"\n[[spec]]\nname = \"a\"\npod = \"p\"\nnamespace = \"own\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n",
    );
    let c = s.ksync(&["config", "-n", "flag", "-o", "json"]).json();
    assert_eq!(spec(&c, "a")["namespace"], "own");
}

#[test]
fn empty_string_unsets_a_lower_layer_value() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"a\"\npod = \"web-0\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n",
    );
    s.write(
        "project/ksync.local.toml",
        "[[spec]]\nname = \"a\"\npod = \"\"\nselector = \"app=web\"\n",
    );
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(
        spec(&c, "a")["target"],
        serde_json::json!({"selector": "app=web"})
    );
}

#[test]
fn project_file_is_found_from_a_subdirectory_and_by_flag() {
    let mut s = Sandbox::new();
    s.mkdir("project/src");
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"a\"\npod = \"p\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n",
    );
    s.cd("project/src/deep");
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["project_dir"], s.project().display().to_string());
    assert_eq!(
        spec(&c, "a")["local_path"],
        s.project().join("src").display().to_string()
    );

    s.write(
        "other/custom.toml",
        "[[spec]]\nname = \"b\"\npod = \"p\"\nlocalpath = \".\"\nremotepath = \"/b\"\n",
    );
    let c = s
        .ksync(&["-f", "../../../other/custom.toml", "config", "-o", "json"])
        .json();
    assert_eq!(
        spec(&c, "b")["local_path"],
        s.root().join("other").display().to_string()
    );
    let missing = s.ksync(&["-f", "nope.toml", "config"]);
    assert!(missing.fails(3).contains("does not exist"));
}

#[test]
fn ksync_home_moves_the_user_file() {
    let mut s = Sandbox::new();
    let home = s.root().join("elsewhere-home");
    s.write("elsewhere-home/ksync.yaml", "namespace: moved\n");
    s.env("KSYNC_HOME", &home.display().to_string());
    let c = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(c["settings"]["namespace"]["value"], "moved");
}

#[test]
fn the_original_tools_file_loads_unchanged() {
    let s = Sandbox::new();
    // As `ksync create` of the original tool wrote it (viper dumps every setting).
    let original = "\
apikey: ksync
context: \"\"
daemonset-namespace: kube-system
docker-root: /var/lib/docker
docker-socket: /var/run/docker.sock
log-level: debug
namespace: default
output: pretty
port: 40322
spec:
- name: sunny-husky
  containername: \"\"
  pod: \"\"
  selector:
  - app=app
  - tier=web
  namespace: default
  localpath: /tmp/ksync-original-example
  remotepath: /code
  reload: true
  localreadonly: false
  remotereadonly: false
- name: quiet-otter
  containername: app
  pod: otter-0
  selector: []
  namespace: default
  localpath: /tmp/ksync-original-example
  remotepath: /srv/
  reload: false
  localreadonly: false
  remotereadonly: true
syncthing-port: 8384
";
    s.write("home/.ksync/ksync.yaml", original);
    let run = s.ksync(&["config", "-o", "json"]);
    let c = run.json();
    let husky = spec(&c, "sunny-husky");
    assert_eq!(husky["target"]["selector"], "app=app,tier=web");
    assert_eq!(husky["container"], serde_json::Value::Null);
    assert_eq!(husky["namespace"], "default");
    assert_eq!(husky["remote_path"], "/code");
    assert_eq!(husky["reload"], true);
    assert_eq!(husky["direction"], "two-way");
    let otter = spec(&c, "quiet-otter");
    assert_eq!(otter["target"]["pod"], "otter-0");
    assert_eq!(otter["container"], "app");
    assert_eq!(otter["remote_path"], "/srv");
    assert_eq!(otter["direction"], "remote-read-only");
    let codes: Vec<&str> = c["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().expect("code"))
        .collect();
    assert!(codes.contains(&"config::legacy_key"), "{codes:?}");
    // And the pretty output explains the ignored keys on stderr without failing.
    let pretty = s.ksync(&["config"]);
    assert!(
        pretty
            .stderr
            .contains("`apikey` (from the original ksync) is ignored")
    );
    assert!(pretty.ok().contains("sunny-husky"));
}
