//! From the merged configuration to validated [`Spec`]s: templates rendered, every rule of a
//! spec checked, and each problem pointed at the file and line whose value is in effect.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::value::{Dict, Value as FValue};

use super::layer::Layer;
use super::schema::FieldPath;
use crate::diagnostic::{Problem, Problems, display_path};
use crate::selector::LabelSelector;
use crate::spec::{self, Direction, Origin, RemotePath, Spec, Target};
use crate::template::{PER_CONTAINER_FIELDS, Renderer};

/// The merged view: figment's result plus the layers, to trace each value to its source.
pub(crate) struct Merged<'a> {
    pub figment: &'a Figment,
    pub layers: &'a [Layer],
    pub cwd: &'a Path,
}

impl Merged<'_> {
    /// The layer a merged value came from.
    pub(super) fn layer_of(&self, value: &FValue) -> Option<&Layer> {
        let metadata = self.figment.get_metadata(value.tag())?;
        self.layers.iter().find(|l| l.owns(metadata))
    }

    /// Spec names in declaration order (first appearance, lowest layer first).
    fn spec_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for layer in self.layers {
            for name in &layer.data.spec_order {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Builds every spec; problems (errors and warnings) go to `problems`.
    pub(super) fn specs(
        &self,
        renderer: &Renderer,
        default_namespace: Option<&str>,
        problems: &mut Problems,
    ) -> Vec<Spec> {
        let merged: Dict = self
            .figment
            .find_value("spec")
            .ok()
            .and_then(FValue::into_dict)
            .unwrap_or_default();
        let mut specs: Vec<Spec> = Vec::new();
        let mut rendered_names: HashMap<String, String> = HashMap::new();
        for raw_name in self.spec_names() {
            let Some(fields) = merged.get(&raw_name).and_then(FValue::as_dict) else {
                continue;
            };
            let builder = SpecBuilder {
                merged: self,
                raw_name: &raw_name,
                fields,
                renderer,
                problems: Problems::new(),
                incomplete: self
                    .layers
                    .iter()
                    .any(|l| l.data.incomplete_specs.contains(&raw_name)),
            };
            let (spec, spec_problems) = builder.build(default_namespace);
            problems.extend(spec_problems);
            let Some(spec) = spec else { continue };
            if let Some(other) = rendered_names.insert(spec.name.clone(), raw_name.clone()) {
                problems.push(
                    self.problem_at(
                        Problem::error(
                            "config::duplicate_spec",
                            format!(
                                "specs `{other}` and `{raw_name}` both get the name `{}`",
                                spec.name
                            ),
                        )
                        .with_help(
                            "spec names must be unique after templating; change one of them",
                        ),
                        &raw_name,
                        "",
                        "renders to a name already in use",
                    ),
                );
                continue;
            }
            specs.push(spec);
        }
        specs
    }

    /// Points `problem` at spec `name`'s `field` (or its declaration for `""`) in the layer
    /// whose value is in effect.
    fn problem_at(&self, problem: Problem, name: &str, field: &str, label: &str) -> Problem {
        let path = FieldPath::Spec(name.to_string(), field.to_string());
        let layer = if field.is_empty() {
            self.layers
                .iter()
                .find(|l| l.data.positions.contains_key(&path))
        } else {
            self.figment
                .find_value("spec")
                .ok()
                .and_then(|v| v.into_dict())
                .and_then(|d| {
                    d.get(name)
                        .and_then(FValue::as_dict)
                        .and_then(|f| f.get(field))
                        .cloned()
                })
                .and_then(|v| self.layer_of(&v))
                .or_else(|| {
                    self.layers
                        .iter()
                        .rev()
                        .find(|l| l.data.positions.contains_key(&path))
                })
        };
        match layer.and_then(|l| l.position(&path)) {
            Some((file, span)) => problem.at(file, span, label),
            None => problem,
        }
    }
}

struct SpecBuilder<'a> {
    merged: &'a Merged<'a>,
    raw_name: &'a str,
    fields: &'a Dict,
    renderer: &'a Renderer,
    problems: Problems,
    /// A file already reported a refused key of this spec: do not also report the value as
    /// missing.
    incomplete: bool,
}

impl SpecBuilder<'_> {
    fn build(mut self, default_namespace: Option<&str>) -> (Option<Spec>, Problems) {
        let spec = self.try_build(default_namespace);
        let spec = if self.problems.has_errors() {
            None
        } else {
            spec
        };
        (spec, self.problems)
    }

    fn try_build(&mut self, default_namespace: Option<&str>) -> Option<Spec> {
        let name = self.render_name();
        let pod = self.string("pod");
        let selector = self.selector();
        let container = self.string("containername");
        let namespace = self.string("namespace");
        let local_path = self.local_path();
        let remote_path = self.remote_path();
        let ignore = self.ignore();
        let reload = self.bool("reload");
        let local_ro = self.bool("localreadonly");
        let remote_ro = self.bool("remotereadonly");

        let checks = [
            (
                "pod",
                "config::invalid_pod",
                "not a pod name",
                pod.as_deref().map(spec::check_pod),
            ),
            (
                "containername",
                "config::invalid_container",
                "not a container name",
                container.as_deref().map(spec::check_container),
            ),
            (
                "namespace",
                "config::invalid_namespace",
                "not a namespace",
                namespace.as_deref().map(spec::check_namespace),
            ),
        ];
        for (field, code, label, check) in checks {
            if let Some(Err(refusal)) = check {
                self.refuse(field, code, refusal, label);
            }
        }
        let target = match (pod, selector) {
            (Some(pod), None) => Some(Target::Pod(pod)),
            (None, Some(selector)) => Some(Target::Selector(selector)),
            (Some(_), Some(_)) => {
                let selector_at = self.source_of("selector");
                self.error(
                    "pod",
                    "config::pod_and_selector",
                    format!("spec `{}` sets both `pod` and `selector` (selector from {selector_at})", self.raw_name),
                    "keep one: `pod` syncs exactly that pod, `selector` every pod whose labels match; to unset one in an override file, set it to \"\"",
                    "pod set here",
                );
                None
            }
            (None, None)
                if self.incomplete || self.attempted("pod") || self.attempted("selector") =>
            {
                None
            }
            (None, None) => {
                self.error(
                    "",
                    "config::no_target",
                    format!("spec `{}` sets neither `pod` nor `selector`", self.raw_name),
                    "add `selector = \"app=web\"` to sync every pod with that label, or `pod = \"web-0\"` for one pod",
                    "which pods?",
                );
                None
            }
        };
        let direction = match (local_ro, remote_ro) {
            (true, true) => {
                self.error(
                    "remotereadonly",
                    "config::both_read_only",
                    format!("spec `{}` makes both sides read-only, so nothing could sync", self.raw_name),
                    "keep `localreadonly` (local → container) or `remotereadonly` (container → local), not both",
                    "second read-only flag",
                );
                Direction::TwoWay
            }
            (true, false) => Direction::LocalReadOnly,
            (false, true) => Direction::RemoteReadOnly,
            (false, false) => Direction::TwoWay,
        };
        let namespace = namespace.or_else(|| default_namespace.map(str::to_string));
        Some(Spec {
            name: name?,
            target: target?,
            container,
            namespace,
            local_path: local_path?,
            remote_path: remote_path?,
            reload,
            direction,
            ignore,
            origin: self.origin(),
        })
    }

    fn origin(&self) -> Origin {
        let mut origin = Origin::default();
        for layer in self.merged.layers {
            if layer
                .data
                .positions
                .contains_key(&FieldPath::Spec(self.raw_name.to_string(), String::new()))
            {
                if origin.declared_in.is_empty() {
                    origin.declared_in = layer.label();
                }
                origin.sources.push(layer.label());
            }
        }
        for (field, value) in self.fields {
            if let Some(layer) = self.merged.layer_of(value) {
                origin.fields.insert(field.clone(), layer.label());
            }
        }
        origin
    }

    /// True when `field` has a non-empty value (which may have failed to render or parse).
    fn attempted(&self, field: &str) -> bool {
        match self.fields.get(field) {
            Some(FValue::String(_, s)) => !s.trim().is_empty(),
            Some(FValue::Array(_, items)) => !items.is_empty(),
            _ => false,
        }
    }

    fn source_of(&self, field: &str) -> String {
        self.fields
            .get(field)
            .and_then(|v| self.merged.layer_of(v))
            .map_or_else(
                || "a default".to_string(),
                |l| match l.position(&FieldPath::Spec(
                    self.raw_name.to_string(),
                    field.to_string(),
                )) {
                    Some((file, span)) => file.location(span.offset),
                    None => l.label(),
                },
            )
    }

    fn error(&mut self, field: &str, code: &'static str, message: String, help: &str, label: &str) {
        let problem = Problem::error(code, message).with_help(help);
        self.problems
            .push(self.merged.problem_at(problem, self.raw_name, field, label));
    }

    fn refuse(&mut self, field: &str, code: &'static str, refusal: spec::Refusal, label: &str) {
        let problem = Problem::error(code, refusal.message).with_help(refusal.help);
        self.problems
            .push(self.merged.problem_at(problem, self.raw_name, field, label));
    }

    fn warn(&mut self, field: &str, code: &'static str, message: String, help: &str, label: &str) {
        let problem = Problem::warning(code, message).with_help(help);
        self.problems
            .push(self.merged.problem_at(problem, self.raw_name, field, label));
    }

    /// Renders a static template field; reports failures.
    fn render(&mut self, field: &str, source: &str) -> Option<String> {
        match self.renderer.render(field, source) {
            Ok(s) => Some(s),
            Err(e) => {
                let help = e.help().unwrap_or("fix the template").to_string();
                self.error(
                    field,
                    "config::template",
                    format!("spec `{}`, field `{field}`: {e}", self.raw_name),
                    &help,
                    "in this template",
                );
                None
            }
        }
    }

    /// A string field, rendered; empty means unset.
    fn string(&mut self, field: &str) -> Option<String> {
        let raw = self.fields.get(field)?.as_str()?.to_string();
        let rendered = self.render(field, &raw)?;
        let trimmed = rendered.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }

    fn bool(&self, field: &str) -> bool {
        self.fields
            .get(field)
            .and_then(FValue::to_bool)
            .unwrap_or(false)
    }

    fn render_name(&mut self) -> Option<String> {
        let name = self.render("name", self.raw_name)?;
        if let Err(mut refusal) = spec::check_name(&name) {
            if name != self.raw_name {
                refusal.message =
                    format!("{} (rendered from `{}`)", refusal.message, self.raw_name);
            }
            self.refuse("", "config::invalid_name", refusal, "spec name");
            return None;
        }
        Some(name)
    }

    fn selector(&mut self) -> Option<LabelSelector> {
        let value = self.fields.get("selector")?;
        let raw = match value {
            FValue::String(_, s) => s.clone(),
            FValue::Array(_, items) => items
                .iter()
                .filter_map(FValue::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => return None,
        };
        let rendered = self.render("selector", &raw)?;
        if rendered.trim().is_empty() {
            return None;
        }
        match spec::parse_selector(&rendered) {
            Ok(selector) if selector.is_empty() => None,
            Ok(selector) => Some(selector),
            Err(refusal) => {
                self.refuse(
                    "selector",
                    "config::invalid_selector",
                    refusal,
                    "invalid selector",
                );
                None
            }
        }
    }

    fn local_path(&mut self) -> Option<PathBuf> {
        let Some(raw) = self
            .fields
            .get("localpath")
            .and_then(FValue::as_str)
            .map(str::to_string)
        else {
            self.error(
                "",
                "config::missing_localpath",
                format!("spec `{}` has no `localpath`", self.raw_name),
                "add `localpath = \"./src\"` (relative to the file that declares it)",
                "which local folder?",
            );
            return None;
        };
        let rendered = self.render("localpath", &raw)?;
        if rendered.trim().is_empty() {
            self.error(
                "localpath",
                "config::missing_localpath",
                format!("spec `{}` has an empty `localpath`", self.raw_name),
                "set it to the local folder to sync, e.g. `./src`",
                "empty",
            );
            return None;
        }
        let base = self
            .fields
            .get("localpath")
            .and_then(|v| self.merged.layer_of(v))
            .map_or(self.merged.cwd, |l| l.base_dir(self.merged.cwd));
        let expanded = expand_tilde(&rendered);
        let path = super::paths::absolutize(base, &expanded);
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                self.error(
                    "localpath",
                    "config::local_not_a_folder",
                    format!(
                        "localpath {} is a file, not a folder",
                        display_path(&path, self.merged.cwd)
                    ),
                    "ksync syncs folders; point `localpath` at the folder that holds the file",
                    "not a folder",
                );
                None
            }
            Ok(_) => Some(path),
            Err(_) => {
                self.warn(
                    "localpath",
                    "config::local_missing",
                    format!(
                        "local folder {} does not exist yet",
                        display_path(&path, self.merged.cwd)
                    ),
                    "create it before starting a sync, or fix `localpath`",
                    "missing folder",
                );
                Some(path)
            }
        }
    }

    fn remote_path(&mut self) -> Option<RemotePath> {
        let Some(raw) = self
            .fields
            .get("remotepath")
            .and_then(FValue::as_str)
            .map(str::to_string)
        else {
            self.error(
                "",
                "config::missing_remotepath",
                format!("spec `{}` has no `remotepath`", self.raw_name),
                "add `remotepath = \"/app\"`, the absolute path inside the container",
                "which container path?",
            );
            return None;
        };
        debug_assert!(PER_CONTAINER_FIELDS.contains(&"remotepath"));
        if self.renderer.uses_container(&raw) {
            return match self.renderer.check_per_container(&raw) {
                Ok(()) => Some(RemotePath::PerContainer {
                    template: raw,
                    renderer: self.renderer.clone(),
                }),
                Err(e) => {
                    let help = e.help().unwrap_or("fix the template").to_string();
                    self.error(
                        "remotepath",
                        "config::template",
                        format!("spec `{}`, field `remotepath`: {e}", self.raw_name),
                        &help,
                        "in this template",
                    );
                    None
                }
            };
        }
        let rendered = self.render("remotepath", &raw)?;
        let shown = if rendered == raw {
            format!("`{raw}`")
        } else {
            format!("`{raw}` (rendered to `{rendered}`)")
        };
        match spec::check_remote_path(&rendered, &shown) {
            Ok(path) => Some(RemotePath::Fixed(path)),
            Err(refusal) => {
                self.refuse(
                    "remotepath",
                    "config::invalid_remotepath",
                    refusal,
                    "invalid container path",
                );
                None
            }
        }
    }

    fn ignore(&mut self) -> Vec<String> {
        let Some(items) = self.fields.get("ignore").and_then(FValue::as_array) else {
            return Vec::new();
        };
        let raw: Vec<String> = items
            .iter()
            .filter_map(FValue::as_str)
            .map(str::to_string)
            .collect();
        let mut out = Vec::new();
        for pattern in raw {
            if let Some(rendered) = self.render("ignore", &pattern) {
                if rendered.trim().is_empty() {
                    self.error(
                        "ignore",
                        "config::empty_ignore",
                        "an `ignore` pattern is empty".into(),
                        "remove the empty pattern",
                        "empty pattern",
                    );
                } else {
                    out.push(rendered);
                }
            }
        }
        out
    }
}

fn expand_tilde(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    PathBuf::from(path)
}

/// Values of `vars` after merging, as template values.
pub(crate) fn merged_vars(figment: &Figment) -> BTreeMap<String, minijinja::Value> {
    figment
        .find_value("vars")
        .ok()
        .and_then(FValue::into_dict)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                FValue::String(_, s) => minijinja::Value::from(s),
                FValue::Bool(_, b) => minijinja::Value::from(b),
                other => match other.to_i128().and_then(|i| i64::try_from(i).ok()) {
                    Some(i) => minijinja::Value::from(i),
                    None => minijinja::Value::from(other.to_f64().unwrap_or_default()),
                },
            };
            (k, value)
        })
        .collect()
}
