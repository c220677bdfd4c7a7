//! Every validation error a user can hit, as printed: the message, the file, line and
//! column with the source underlined, and the fix. Snapshotted (insta) so wording changes
//! are reviewed.

use crate::helpers::Sandbox;

/// Runs `ksync config` on a project file and returns the redacted error report.
fn error_for(toml: &str) -> String {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write("project/ksync.toml", toml);
    let run = s.ksync(&["config"]);
    s.redact(run.fails(3))
}

const SPEC: &str =
    "name = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n";

macro_rules! error_case {
    ($name:ident, $toml:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(error_for($toml));
        }
    };
}

error_case!(unknown_top_level_key, "namespce = \"dev\"\n");
error_case!(
    unknown_spec_key_suggests_the_right_one,
    "[[spec]]\nname = \"web\"\npodd = \"web-0\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    unknown_key_without_a_close_match_lists_the_known_ones,
    &format!("[[spec]]\n{SPEC}flavour = \"vanilla\"\n")
);
error_case!(
    wrong_type_boolean_in_quotes,
    &format!("[[spec]]\n{SPEC}reload = \"yes\"\n")
);
error_case!(wrong_type_number_for_string, "namespace = 5\n");
error_case!(wrong_type_port, "port = 70000\n");
error_case!(
    wrong_type_selector,
    "[[spec]]\nname = \"web\"\nselector = 3\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    duplicate_spec_names,
    &format!("[[spec]]\n{SPEC}\n[[spec]]\n{SPEC}")
);
error_case!(
    name_not_a_dns_label,
    "[[spec]]\nname = \"Web_App\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    spec_without_name,
    "[[spec]]\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    neither_pod_nor_selector,
    "[[spec]]\nname = \"web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    both_pod_and_selector,
    &format!("[[spec]]\n{SPEC}pod = \"web-0\"\n")
);
error_case!(
    both_read_only_flags,
    &format!("[[spec]]\n{SPEC}localreadonly = true\nremotereadonly = true\n")
);
error_case!(
    remotepath_not_absolute,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"app/src\"\n"
);
error_case!(
    remotepath_not_normalised,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app/../etc\"\n"
);
error_case!(
    remotepath_escapes_the_root,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/../etc\"\n"
);
error_case!(
    remotepath_root,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/\"\n"
);
error_case!(
    invalid_selector_syntax,
    "[[spec]]\nname = \"web\"\nselector = \"app in (web\"\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    invalid_selector_key,
    "[[spec]]\nname = \"web\"\nselector = [\"app=web\", \"-tier!=db\"]\nlocalpath = \"src\"\nremotepath = \"/app\"\n"
);
error_case!(
    missing_remotepath,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\n"
);
error_case!(
    localpath_is_a_file,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"ksync.toml\"\nremotepath = \"/app\"\n"
);
error_case!(
    invalid_toml_syntax,
    "[[spec]]\nname = \"web\nselector = \"app=web\"\n"
);
error_case!(
    several_problems_at_once,
    "namespce = \"dev\"\n[[spec]]\nname = \"web\"\nselector = \"app in (\"\nlocalpath = \"src\"\nremotepath = \"app\"\n"
);
error_case!(
    undefined_template_variable_names_spec_field_and_variable,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app/{{ vars.release }}\"\n"
);
error_case!(
    pod_variables_only_in_remotepath,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src/{{ pod.name }}\"\nremotepath = \"/app\"\n"
);
error_case!(
    template_syntax_error,
    "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"src\"\nremotepath = \"/app/{{ vars.x }\"\n"
);
error_case!(invalid_log_level, "log-level = \"loud\"\n");

#[test]
fn invalid_yaml_in_the_user_file() {
    let s = Sandbox::new();
    s.write("home/.ksync/ksync.yaml", "spec:\n- name: a\n  pod: [x\n");
    insta::assert_snapshot!(s.redact(s.ksync(&["config"]).fails(3)));
}

#[test]
fn errors_point_at_the_layer_whose_value_is_in_effect() {
    let s = Sandbox::new();
    s.mkdir("project/src");
    s.write("project/ksync.toml", &format!("[[spec]]\n{SPEC}"));
    s.write(
        "project/ksync.local.toml",
        "# my overrides\n[[spec]]\nname = \"web\"\nremotepath = \"relative\"\n",
    );
    insta::assert_snapshot!(s.redact(s.ksync(&["config"]).fails(3)));
}

#[test]
fn bad_environment_value() {
    let mut s = Sandbox::new();
    s.env("KSYNC_PORT", "many");
    insta::assert_snapshot!(s.redact(s.ksync(&["config"]).fails(3)));
}

#[test]
fn missing_local_folder_is_a_warning_not_an_error() {
    let s = Sandbox::new();
    s.write(
        "project/ksync.toml",
        "[[spec]]\nname = \"web\"\nselector = \"app=web\"\nlocalpath = \"not-yet\"\nremotepath = \"/app\"\n",
    );
    let run = s.ksync(&["config"]);
    assert!(run.ok().contains("not-yet (missing)"));
    insta::assert_snapshot!(s.redact(&run.stderr));
    let json = s.ksync(&["config", "-o", "json"]).json();
    assert_eq!(json["warnings"][0]["code"], "config::local_missing");
    assert_eq!(json["warnings"][0]["location"], "ksync.toml:4:13");
}
