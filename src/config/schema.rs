//! The keys ksync understands, where each may appear, and what type it takes; and the walk
//! that checks one parsed file against them and turns it into a [`LayerData`] for figment.
//!
//! Unknown keys and wrong types are reported here, per file, with the exact position and a
//! "did you mean". Rules that need the merged view (a spec's pod *or* selector, names after
//! templating, …) live in [`super::specs`].

use std::collections::{HashMap, HashSet};

use figment::value::{Dict, Value as FValue};

use super::document::{Format, Node, Value};
use crate::diagnostic::{Problem, Problems, SourceFile, Span};

/// What a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Str,
    Bool,
    Port,
    /// A string, or a list of strings (`selector`).
    StrOrList,
    /// A list of strings (`ignore`).
    List,
    /// A table of scalars (`vars`).
    Vars,
    /// The list of specs.
    Specs,
    /// The `agent` table.
    Agent,
    /// A table of strings (`node-selector`).
    StrMap,
    /// A list of tables (`tolerations`).
    Tables,
    /// A table of anything (`resources`).
    Table,
}

impl Type {
    fn describe(self) -> &'static str {
        match self {
            Type::Str => "a string",
            Type::Bool => "a boolean (true or false)",
            Type::Port => "a port number (1-65535)",
            Type::StrOrList => "a string or a list of strings",
            Type::List => "a list of strings",
            Type::Vars => "a table of values",
            Type::Specs => "a list of spec tables",
            Type::Agent => "a table of agent settings",
            Type::StrMap => "a table of strings",
            Type::Tables => "a list of tables",
            Type::Table => "a table",
        }
    }
}

/// Top-level keys in every file.
const TOP: &[(&str, Type)] = &[
    ("context", Type::Str),
    ("namespace", Type::Str),
    ("log-level", Type::Str),
    ("port", Type::Port),
    ("syncthing", Type::Str),
    ("agent", Type::Agent),
    ("vars", Type::Vars),
    ("spec", Type::Specs),
];

/// Keys the original ksync wrote into `ksync.yaml` that ksync reads and ignores, and why.
const LEGACY_TOP: &[(&str, &str)] = &[
    (
        "apikey",
        "ksync generates a random Syncthing API key per install",
    ),
    (
        "daemonset-namespace",
        "the agent's namespace is chosen with `ksync init --namespace`",
    ),
    (
        "docker-root",
        "radar finds container files through /proc on any runtime",
    ),
    (
        "docker-socket",
        "radar detects the node's container runtime itself",
    ),
    ("output", "pass `-o` to the commands that print"),
    (
        "syncthing-port",
        "ksync picks a free local port for Syncthing",
    ),
    (
        "image",
        "the agent image is chosen with `ksync init --image`",
    ),
];

/// Keys of the `agent` table: how `ksync init` installs the agent.
const AGENT: &[(&str, Type)] = &[
    ("namespace", Type::Str),
    ("name", Type::Str),
    ("image", Type::Str),
    ("image-pull-policy", Type::Str),
    ("docker-socket", Type::Str),
    ("containerd-socket", Type::Str),
    ("state-dir", Type::Str),
    ("log-level", Type::Str),
    ("node-selector", Type::StrMap),
    ("tolerations", Type::Tables),
    ("resources", Type::Table),
];

/// Keys of one spec.
const SPEC: &[(&str, Type)] = &[
    ("name", Type::Str),
    ("containername", Type::Str),
    ("pod", Type::Str),
    ("selector", Type::StrOrList),
    ("namespace", Type::Str),
    ("localpath", Type::Str),
    ("remotepath", Type::Str),
    ("reload", Type::Bool),
    ("localreadonly", Type::Bool),
    ("remotereadonly", Type::Bool),
    ("ignore", Type::List),
];

/// Where a value sits in the configuration, independent of the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum FieldPath {
    /// A top-level key.
    Top(String),
    /// A key of the spec with this (raw) name; `""` is the spec entry itself.
    Spec(String, String),
    /// A template variable under `vars`.
    Var(String),
}

/// One file (or other source), checked and normalised for merging.
#[derive(Debug, Default)]
pub(super) struct LayerData {
    /// Values, with `spec` turned into a table keyed by spec name so that layers merge spec
    /// by spec and key by key.
    pub dict: Dict,
    /// Where each value was written.
    pub positions: HashMap<FieldPath, Span>,
    /// Spec names in the order written.
    pub spec_order: Vec<String>,
    /// Specs with a key that was refused (unknown or of the wrong type) in this file: their
    /// "missing value" errors would only repeat that problem.
    pub incomplete_specs: HashSet<String>,
}

/// Checks `root` (parsed from `file`) and converts it; problems are added to `problems`.
pub(super) fn walk(
    file: &SourceFile,
    format: Format,
    root: &Node,
    problems: &mut Problems,
) -> LayerData {
    let mut out = LayerData::default();
    let Value::Map(entries) = &root.value else {
        problems.push(
            Problem::error(
                "config::wrong_type",
                format!(
                    "{} must hold a table of settings, found {}",
                    file.display,
                    root.value.type_name()
                ),
            )
            .at(file, root.span, "expected a table"),
        );
        return out;
    };
    let mut seen: HashMap<String, Span> = HashMap::new();
    for (key_node, value) in entries {
        let key = key_node.key_text();
        if let Some(first) = seen.insert(key.clone(), key_node.span) {
            problems.push(duplicate_key(file, &key, key_node.span, first));
            continue;
        }
        if format == Format::Yaml
            && let Some((_, why)) = LEGACY_TOP.iter().find(|(k, _)| *k == key)
        {
            problems.push(
                Problem::warning(
                    "config::legacy_key",
                    format!("`{key}` (from the original ksync) is ignored: {why}"),
                )
                .with_help(format!("delete the `{key}` line to silence this warning"))
                .at(file, key_node.span, "ignored"),
            );
            continue;
        }
        let Some(&(_, ty)) = TOP.iter().find(|(k, _)| *k == key) else {
            let mut known: Vec<&str> = TOP.iter().map(|(k, _)| *k).collect();
            if format == Format::Yaml {
                known.extend(LEGACY_TOP.iter().map(|(k, _)| *k));
            }
            problems.push(unknown_key(file, &key, key_node.span, &known, "top-level"));
            continue;
        };
        match ty {
            Type::Specs => walk_specs(file, value, problems, &mut out),
            Type::Vars => walk_vars(file, value, problems, &mut out),
            Type::Agent => walk_agent(file, value, problems, &mut out),
            _ => {
                if let Some(v) = convert(file, &key, ty, value, problems) {
                    out.positions
                        .insert(FieldPath::Top(key.clone()), value.span);
                    out.dict.insert(key, v);
                }
            }
        }
    }
    out
}

/// The entries of a table whose keys are in `known`, each with its type; duplicate and
/// unknown keys are reported (with a "did you mean") and skipped. Returns whether any key
/// was refused.
fn known_entries<'n>(
    file: &SourceFile,
    entries: &'n [(Node, Node)],
    known: &[(&str, Type)],
    place: &str,
    problems: &mut Problems,
) -> (Vec<(String, Type, &'n Node)>, bool) {
    let mut out = Vec::new();
    let mut refused = false;
    let mut seen: HashMap<String, Span> = HashMap::new();
    for (key_node, value) in entries {
        let key = key_node.key_text();
        if let Some(first) = seen.insert(key.clone(), key_node.span) {
            problems.push(duplicate_key(file, &key, key_node.span, first));
            continue;
        }
        match known.iter().find(|(k, _)| *k == key) {
            Some(&(_, ty)) => out.push((key, ty, value)),
            None => {
                let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
                problems.push(unknown_key(file, &key, key_node.span, &names, place));
                refused = true;
            }
        }
    }
    (out, refused)
}

/// The entries of the top-level table `key`: `None` when it is empty (`~`) or, after reporting
/// it, not a table at all.
fn table_entries<'a>(
    file: &SourceFile,
    key: &str,
    ty: Type,
    value: &'a Node,
    problems: &mut Problems,
) -> Option<&'a [(Node, Node)]> {
    match &value.value {
        Value::Map(entries) => Some(entries),
        Value::Null => None,
        other => {
            problems.push(wrong_type(file, key, ty, other, value.span));
            None
        }
    }
}

fn walk_agent(file: &SourceFile, value: &Node, problems: &mut Problems, out: &mut LayerData) {
    let Some(entries) = table_entries(file, "agent", Type::Agent, value, problems) else {
        return;
    };
    let mut agent = Dict::new();
    let (known, _) = known_entries(file, entries, AGENT, "the agent settings", problems);
    for (key, ty, v) in known {
        if let Some(converted) = convert(file, &key, ty, v, problems) {
            out.positions
                .insert(FieldPath::Top(format!("agent.{key}")), v.span);
            agent.insert(key, converted);
        }
    }
    out.dict.insert("agent".into(), FValue::from(agent));
}

/// Any value, as figment's.
fn any_value(node: &Node) -> FValue {
    match &node.value {
        Value::Null => FValue::from(String::new()),
        Value::Bool(b) => FValue::from(*b),
        Value::Int(i) => FValue::from(*i),
        Value::Float(f) => FValue::from(*f),
        Value::Str(s) => FValue::from(s.clone()),
        Value::List(items) => FValue::from(items.iter().map(any_value).collect::<Vec<_>>()),
        Value::Map(entries) => FValue::from(
            entries
                .iter()
                .map(|(k, v)| (k.key_text(), any_value(v)))
                .collect::<Dict>(),
        ),
    }
}

fn walk_vars(file: &SourceFile, value: &Node, problems: &mut Problems, out: &mut LayerData) {
    let Some(entries) = table_entries(file, "vars", Type::Vars, value, problems) else {
        return;
    };
    let mut vars = Dict::new();
    for (k, v) in entries {
        let name = k.key_text();
        let converted = match &v.value {
            Value::Str(s) => FValue::from(s.clone()),
            Value::Bool(b) => FValue::from(*b),
            Value::Int(i) => FValue::from(*i),
            Value::Float(f) => FValue::from(*f),
            other => {
                problems.push(
                    Problem::error(
                        "config::wrong_type",
                        format!(
                            "variable `{name}` must be a string, number or boolean, found {}",
                            other.type_name()
                        ),
                    )
                    .with_help("template variables hold single values")
                    .at(file, v.span, "not a single value"),
                );
                continue;
            }
        };
        out.positions.insert(FieldPath::Var(name.clone()), v.span);
        vars.insert(name, converted);
    }
    out.dict.insert("vars".into(), FValue::from(vars));
}

fn walk_specs(file: &SourceFile, value: &Node, problems: &mut Problems, out: &mut LayerData) {
    let items = match &value.value {
        Value::List(items) => items,
        Value::Null => return,
        other => {
            problems.push(
                wrong_type(file, "spec", Type::Specs, other, value.span).with_help(
                    "in TOML write each spec as a `[[spec]]` table; in YAML as a `- name: …` list item",
                ),
            );
            return;
        }
    };
    let mut specs = Dict::new();
    let mut first_seen: HashMap<String, Span> = HashMap::new();
    for item in items {
        let Value::Map(entries) = &item.value else {
            problems.push(wrong_type(
                file,
                "spec entry",
                Type::Specs,
                &item.value,
                item.span,
            ));
            continue;
        };
        let name_node = entries
            .iter()
            .find(|(k, _)| k.key_text() == "name")
            .map(|(_, v)| v);
        let name = match name_node.map(|n| &n.value) {
            Some(Value::Str(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Str(_)) | Some(Value::Null) | None => {
                problems.push(
                    Problem::error("config::missing_name", "this spec has no name")
                        .with_help(
                            "add `name = \"…\"` (a DNS-1123 label such as `web`); names identify specs in `ksync get`, `ksync delete` and overrides",
                        )
                        .at(file, name_node.map_or(item.span, |n| n.span), "spec without a name"),
                );
                continue;
            }
            Some(other) => {
                problems.push(wrong_type(
                    file,
                    "name",
                    Type::Str,
                    other,
                    name_node.map_or(item.span, |n| n.span),
                ));
                continue;
            }
        };
        let name_span = name_node.map_or(item.span, |n| n.span);
        if let Some(first) = first_seen.get(&name) {
            let (line, _) = file.line_col(first.offset);
            problems.push(
                Problem::error(
                    "config::duplicate_spec",
                    format!("spec `{name}` is defined twice in {}", file.display),
                )
                .with_help(format!(
                    "rename one of them, or merge them into the first definition (line {line})"
                ))
                .at(file, name_span, "second definition"),
            );
            continue;
        }
        first_seen.insert(name.clone(), name_span);
        out.positions
            .insert(FieldPath::Spec(name.clone(), String::new()), name_span);
        let mut spec = Dict::new();
        let (known, refused) =
            known_entries(file, entries, SPEC, &format!("spec `{name}`"), problems);
        if refused {
            out.incomplete_specs.insert(name.clone());
        }
        for (key, ty, v) in known {
            if key == "name" {
                continue;
            }
            match convert(file, &key, ty, v, problems) {
                Some(converted) => {
                    out.positions
                        .insert(FieldPath::Spec(name.clone(), key.clone()), v.span);
                    spec.insert(key, converted);
                }
                None if !matches!(v.value, Value::Null) => {
                    out.incomplete_specs.insert(name.clone());
                }
                None => {}
            }
        }
        out.spec_order.push(name.clone());
        specs.insert(name, FValue::from(spec));
    }
    out.dict.insert("spec".into(), FValue::from(specs));
}

/// Converts a scalar or list value of type `ty`; `None` (with a problem recorded) on a type
/// mismatch, and `None` without a problem for an explicit null.
fn convert(
    file: &SourceFile,
    key: &str,
    ty: Type,
    node: &Node,
    problems: &mut Problems,
) -> Option<FValue> {
    let strings = |items: &[Node], problems: &mut Problems| -> Option<FValue> {
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::Str(s) => out.push(FValue::from(s.clone())),
                other => {
                    problems.push(
                        Problem::error(
                            "config::wrong_type",
                            format!(
                                "every item of `{key}` must be a string, found {}",
                                other.type_name()
                            ),
                        )
                        .with_help("quote the item")
                        .at(file, item.span, "not a string"),
                    );
                    return None;
                }
            }
        }
        Some(FValue::from(out))
    };
    match (ty, &node.value) {
        (_, Value::Null) => None,
        (Type::Str | Type::StrOrList, Value::Str(s)) => Some(FValue::from(s.clone())),
        (Type::Bool, Value::Bool(b)) => Some(FValue::from(*b)),
        (Type::Port, Value::Int(i)) if (1..=65535).contains(i) => Some(FValue::from(*i)),
        (Type::StrOrList | Type::List, Value::List(items)) => strings(items, problems),
        (Type::StrMap, Value::Map(entries)) => {
            let mut dict = Dict::new();
            for (k, v) in entries {
                match &v.value {
                    Value::Str(s) => {
                        dict.insert(k.key_text(), FValue::from(s.clone()));
                    }
                    other => {
                        problems.push(wrong_type(file, &k.key_text(), Type::Str, other, v.span));
                        return None;
                    }
                }
            }
            Some(FValue::from(dict))
        }
        (Type::Table, Value::Map(_)) => Some(any_value(node)),
        (Type::Tables, Value::List(items)) => {
            if let Some(bad) = items.iter().find(|i| !matches!(i.value, Value::Map(_))) {
                problems.push(wrong_type(file, key, Type::Tables, &bad.value, bad.span));
                return None;
            }
            Some(any_value(node))
        }
        (Type::Bool, Value::Str(s)) if bool_word(s).is_some() => {
            problems.push(
                wrong_type(file, key, ty, &node.value, node.span).with_help(format!(
                    "write {} without quotes",
                    bool_word(s).unwrap_or_default()
                )),
            );
            None
        }
        (_, other) => {
            problems.push(wrong_type(file, key, ty, other, node.span));
            None
        }
    }
}

fn bool_word(s: &str) -> Option<&'static str> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some("true"),
        "false" | "no" | "off" => Some("false"),
        _ => None,
    }
}

fn wrong_type(file: &SourceFile, key: &str, ty: Type, found: &Value, span: Span) -> Problem {
    let expected = ty.describe();
    let help = match (ty, found) {
        (Type::Str, Value::Bool(_) | Value::Int(_) | Value::Float(_)) => {
            "put the value in quotes".to_string()
        }
        (Type::Port, Value::Int(_)) => "use a port between 1 and 65535".to_string(),
        _ => format!("`{key}` takes {expected}"),
    };
    Problem::error(
        "config::wrong_type",
        format!(
            "`{key}` must be {expected}, found {}",
            match found {
                Value::Int(i) if ty == Type::Port => format!("{i}"),
                other => other.type_name().to_string(),
            }
        ),
    )
    .with_help(help)
    .at(file, span, format!("expected {expected}"))
}

fn duplicate_key(file: &SourceFile, key: &str, span: Span, first: Span) -> Problem {
    let (line, _) = file.line_col(first.offset);
    Problem::error("config::duplicate_key", format!("`{key}` is set twice"))
        .with_help(format!("keep one of them; the first is on line {line}"))
        .at(file, span, "set again here")
}

fn unknown_key(file: &SourceFile, key: &str, span: Span, known: &[&str], place: &str) -> Problem {
    let help = match did_you_mean(key, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("known keys here: {}", known.join(", ")),
    };
    Problem::error(
        "config::unknown_key",
        format!("unknown key `{key}` in {place}"),
    )
    .with_help(help)
    .at(file, span, "unknown key")
}

/// The known key closest to `key`, if any is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key_squashed = squash(key);
    if let Some(exact) = known.iter().find(|k| squash(k) == key_squashed) {
        return Some(exact);
    }
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&key_squashed, &squash(k)), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known: Vec<&str> = SPEC.iter().map(|(k, _)| *k).collect();
        assert_eq!(did_you_mean("podd", &known), Some("pod"));
        assert_eq!(did_you_mean("local_path", &known), Some("localpath"));
        assert_eq!(did_you_mean("remote-path", &known), Some("remotepath"));
        assert_eq!(did_you_mean("container", &known), Some("containername"));
        assert_eq!(did_you_mean("selectors", &known), Some("selector"));
        assert_eq!(did_you_mean("zzz", &known), None);
    }
}
