//! `ksync config`: the merged, rendered specs and where each value comes from.

use std::fmt::Write;

use clap::Args;
use serde_json::json;

use super::{Context, Output, print, warn_all};
use crate::config::{LoadedConfig, Sourced, load, tilde};
use crate::error::Error;
use crate::spec::{RemotePath, Spec};

/// Arguments of `ksync config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Default namespace for specs that set none (overrides the files).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(super) fn run(ctx: &Context, args: ConfigArgs) -> Result<(), Error> {
    let loaded = load(&ctx.load_options(args.namespace))?;
    match args.output {
        Output::Pretty => {
            warn_all(&loaded.warnings);
            print(&pretty(&loaded));
        }
        Output::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&as_json(&loaded)).unwrap_or_default()
        )),
    }
    Ok(())
}

fn pretty(loaded: &LoadedConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Files (lowest precedence first):");
    if loaded.files.is_empty() {
        let _ = writeln!(
            out,
            "  none: no ksync.toml here or in a parent, no ~/.ksync/ksync.yaml"
        );
    }
    for file in &loaded.files {
        let _ = writeln!(out, "  {:<20} {}", file.role.to_string(), tilde(&file.path));
    }
    let s = &loaded.settings;
    let _ = writeln!(out, "\nSettings:");
    let mut rows = Rows::default();
    let optional = |v: &Option<Sourced<String>>, missing: &str| match v {
        Some(v) => (v.value.clone(), v.source.clone()),
        None => (missing.to_string(), String::new()),
    };
    let (context, context_src) = optional(&s.context, "(kubeconfig's current context)");
    rows.add("context", context, context_src);
    let (namespace, namespace_src) = optional(&s.namespace, "(the context's namespace)");
    rows.add("namespace", namespace, namespace_src);
    rows.add(
        "log-level",
        s.log_level.value.clone(),
        s.log_level.source.clone(),
    );
    rows.add("port", s.port.value.to_string(), s.port.source.clone());
    let (syncthing, syncthing_src) = optional(&s.syncthing, "(syncthing on PATH)");
    rows.add("syncthing", syncthing, syncthing_src);
    rows.write(&mut out);

    let _ = writeln!(out, "\nSpecs:");
    if loaded.specs.is_empty() {
        let _ = writeln!(
            out,
            "  none. Add [[spec]] tables to ksync.toml, or run `ksync create LOCAL REMOTE -l app=web`."
        );
    }
    for spec in loaded.specs.iter() {
        spec_block(&mut out, spec, loaded);
    }
    out
}

fn spec_block(out: &mut String, spec: &Spec, loaded: &LoadedConfig) {
    let o = &spec.origin;
    let overrides: Vec<&String> = o.sources.iter().filter(|s| **s != o.declared_in).collect();
    let mut header = format!("{}  (from {}", spec.name, o.declared_in);
    if !overrides.is_empty() {
        let list: Vec<&str> = overrides.iter().map(|s| s.as_str()).collect();
        let _ = write!(header, ", overridden in {}", list.join(", "));
    }
    header.push(')');
    let _ = writeln!(out, "\n{header}");
    let src = |field: &str| o.fields.get(field).cloned().unwrap_or_default();
    let mut rows = Rows::default();
    let target_src = match spec.target {
        crate::spec::Target::Pod(_) => src("pod"),
        crate::spec::Target::Selector(_) => src("selector"),
    };
    rows.add("target", spec.target.to_string(), target_src);
    rows.add(
        "container",
        spec.container
            .clone()
            .unwrap_or_else(|| "(the pod's first container)".into()),
        src("containername"),
    );
    let (ns, ns_src) = match (&spec.namespace, o.fields.get("namespace")) {
        (Some(ns), Some(source)) => (ns.clone(), source.clone()),
        (Some(ns), None) => (
            ns.clone(),
            loaded
                .settings
                .namespace
                .as_ref()
                .map(|n| format!("default from {}", n.source))
                .unwrap_or_default(),
        ),
        (None, _) => ("(the context's namespace)".into(), String::new()),
    };
    rows.add("namespace", ns, ns_src);
    let local = tilde(&spec.local_path);
    let local = if spec.local_path.is_dir() {
        local
    } else {
        format!("{local} (missing)")
    };
    rows.add("local", local, src("localpath"));
    let remote = match &spec.remote_path {
        RemotePath::Fixed(p) => p.to_string(),
        RemotePath::PerContainer { template, .. } => format!("{template} (per container)"),
    };
    rows.add("remote", remote, src("remotepath"));
    let direction_src = match spec.direction {
        crate::spec::Direction::TwoWay => String::new(),
        crate::spec::Direction::LocalReadOnly => src("localreadonly"),
        crate::spec::Direction::RemoteReadOnly => src("remotereadonly"),
    };
    rows.add("direction", spec.direction.to_string(), direction_src);
    rows.add(
        "reload",
        if spec.reload { "yes" } else { "no" }.into(),
        src("reload"),
    );
    if !spec.ignore.is_empty() {
        rows.add("ignore", spec.ignore.join(", "), src("ignore"));
    }
    rows.write(out);
}

/// Key / value / source rows, with the source column aligned.
#[derive(Default)]
struct Rows(Vec<(&'static str, String, String)>);

impl Rows {
    fn add(&mut self, key: &'static str, value: String, source: String) {
        self.0.push((key, value, source));
    }

    fn write(self, out: &mut String) {
        let width = self
            .0
            .iter()
            .map(|(_, v, _)| v.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value, source) in self.0 {
            let line = format!("  {key:<10} {value:<width$}   {source}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

fn as_json(loaded: &LoadedConfig) -> serde_json::Value {
    let specs: Vec<serde_json::Value> = loaded
        .specs
        .iter()
        .map(|spec| {
            let mut value = serde_json::to_value(spec).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert(
                    "remote_path_per_container".into(),
                    json!(matches!(spec.remote_path, RemotePath::PerContainer { .. })),
                );
                obj.insert("local_path_exists".into(), json!(spec.local_path.is_dir()));
            }
            value
        })
        .collect();
    let warnings: Vec<serde_json::Value> = loaded
        .warnings
        .iter()
        .map(|w| {
            json!({
                "code": w.code(),
                "message": w.message(),
                "location": w.location(),
                "help": w.help_text(),
            })
        })
        .collect();
    json!({
        "files": loaded.files,
        "project_dir": loaded.project_dir,
        "settings": loaded.settings,
        "specs": specs,
        "warnings": warnings,
    })
}
