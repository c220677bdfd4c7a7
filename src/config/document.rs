//! Reading a TOML or YAML configuration file into a tree whose every node knows where it was
//! written, so later checks can point at the exact line and column.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::diagnostic::{Problem, SourceFile, Span};

/// The syntax of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `ksync.toml`, `ksync.local.toml`.
    Toml,
    /// `ksync.yaml` (the original tool's file).
    Yaml,
}

/// A value with the byte range it was written at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// YAML `~`/`null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (TOML dates are kept as strings too).
    Str(String),
    /// An array / sequence.
    List(Vec<Node>),
    /// A table / mapping, in file order; keys are string nodes.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// How the type is named in messages ("a string", "a list", …).
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "an empty value",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a table",
        }
    }
}

impl Node {
    /// The key text, for nodes used as map keys.
    pub(super) fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Null => "~".into(),
            Value::List(_) | Value::Map(_) => "<complex key>".into(),
        }
    }
}

/// Parses `file` as `format`. Syntax errors come back as a problem pointing at the error.
pub(super) fn parse(file: &SourceFile, format: Format) -> Result<Node, Problem> {
    match format {
        Format::Toml => parse_toml(file),
        Format::Yaml => parse_yaml(file),
    }
}

fn parse_toml(file: &SourceFile) -> Result<Node, Problem> {
    match toml::from_str::<TomlNode>(&file.text) {
        Ok(node) => Ok(node.into_node()),
        Err(e) => {
            let span = e
                .span()
                .map(|r| Span {
                    offset: r.start,
                    len: r.len(),
                })
                .unwrap_or_default();
            Err(Problem::error(
                "config::syntax",
                format!("{} is not valid TOML: {}", file.display, e.message().trim()),
            )
            .with_help("fix the syntax at the marked place; see https://toml.io for the format")
            .at(file, span, "here"))
        }
    }
}

fn parse_yaml(file: &SourceFile) -> Result<Node, Problem> {
    if file.text.trim().is_empty() {
        return Ok(Node {
            value: Value::Map(vec![]),
            span: Span::default(),
        });
    }
    match serde_saphyr::from_str::<YamlNode>(&file.text) {
        Ok(node) => Ok(node.into_node()),
        Err(e) => {
            let span = e
                .location()
                .map(|l| yaml_span(&l, &file.text))
                .unwrap_or_default();
            let message = yaml_error_message(&e);
            Err(Problem::error(
                "config::syntax",
                format!("{} is not valid YAML: {message}", file.display),
            )
            .with_help("fix the syntax at the marked place")
            .at(file, span, "here"))
        }
    }
}

/// serde-saphyr's message without the location and snippet it appends.
fn yaml_error_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let mut message = full.lines().next().unwrap_or_default().trim();
    message = message.strip_prefix("error:").unwrap_or(message).trim();
    // "line 3 column 8: unclosed bracket" -> "unclosed bracket": the snippet shows where.
    if message.starts_with("line ")
        && let Some((_, rest)) = message.split_once(": ")
    {
        message = rest;
    }
    let message = message.split(" at line ").next().unwrap_or(message);
    message.trim().trim_end_matches(':').to_string()
}

fn yaml_span(location: &serde_saphyr::Location, text: &str) -> Span {
    let span = location.span();
    if let (Some(offset), Some(len)) = (span.byte_offset(), span.byte_len()) {
        return Span {
            offset: offset as usize,
            len: len as usize,
        };
    }
    // Fall back to line and column.
    let line = location.line().max(1) as usize;
    let column = location.column().max(1) as usize;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let offset = text[line_start.min(text.len())..]
        .char_indices()
        .nth(column - 1)
        .map_or(text.len(), |(i, _)| line_start + i);
    Span { offset, len: 0 }
}

/// The shape shared by the TOML and YAML trees; `N` is the format's spanned node.
enum Kind<N> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<N>),
    Map(Vec<(N, N)>),
}

struct KindVisitor<N>(PhantomData<N>);

impl<'de, N: Deserialize<'de>> Visitor<'de> for KindVisitor<N> {
    type Value = Kind<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Kind::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Kind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Kind::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Kind::Map(entries))
    }
}

impl<'de, N: Deserialize<'de>> Deserialize<'de> for Kind<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor(PhantomData))
    }
}

impl<N> Kind<N> {
    fn into_value(self, convert: impl Fn(N) -> Node) -> Value {
        match self {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(b),
            Kind::Int(i) => Value::Int(i),
            Kind::Float(f) => Value::Float(f),
            Kind::Str(s) => Value::Str(s),
            Kind::List(items) => Value::List(items.into_iter().map(&convert).collect()),
            Kind::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (convert(k), convert(v)))
                    .collect(),
            ),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(transparent)]
struct TomlNode(toml::Spanned<Kind<TomlNode>>);

impl TomlNode {
    fn into_node(self) -> Node {
        let range = self.0.span();
        let span = Span {
            offset: range.start,
            len: range.len(),
        };
        Node {
            value: self.0.into_inner().into_value(TomlNode::into_node),
            span,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(transparent)]
struct YamlNode(serde_saphyr::Spanned<Kind<YamlNode>>);

impl YamlNode {
    fn into_node(self) -> Node {
        let span = self.0.referenced.span();
        let span = Span {
            offset: span.byte_offset().unwrap_or(0) as usize,
            len: span.byte_len().unwrap_or(0) as usize,
        };
        Node {
            value: self.0.value.into_value(YamlNode::into_node),
            span,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(Path::new("/p/f"), text.into(), Path::new("/p"))
    }

    fn lookup<'a>(node: &'a Node, key: &str) -> &'a Node {
        match &node.value {
            Value::Map(entries) => {
                &entries
                    .iter()
                    .find(|(k, _)| k.key_text() == key)
                    .expect("key")
                    .1
            }
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn toml_nodes_know_their_place() {
        let f = file("namespace = \"dev\"\n[[spec]]\nname = \"web\"\nreload = true\n");
        let root = parse(&f, Format::Toml).expect("valid");
        let ns = lookup(&root, "namespace");
        assert_eq!(ns.value, Value::Str("dev".into()));
        assert_eq!(f.line_col(ns.span.offset), (1, 13));
        let Value::List(specs) = &lookup(&root, "spec").value else {
            panic!("list")
        };
        let reload = lookup(&specs[0], "reload");
        assert_eq!(reload.value, Value::Bool(true));
        assert_eq!(f.line_col(reload.span.offset), (4, 10));
    }

    #[test]
    fn yaml_nodes_know_their_place() {
        let f = file("apikey: ksync\nspec:\n- name: sunny-husky\n  pod: \"\"\n  reload: true\n");
        let root = parse(&f, Format::Yaml).expect("valid");
        let Value::List(specs) = &lookup(&root, "spec").value else {
            panic!("list")
        };
        let pod = lookup(&specs[0], "pod");
        assert_eq!(pod.value, Value::Str(String::new()));
        assert_eq!(f.line_col(pod.span.offset), (4, 8));
    }

    #[test]
    fn syntax_errors_point_at_the_error() {
        let f = file("a = 1\nb = [\n");
        let p = parse(&f, Format::Toml).expect_err("invalid");
        assert!(p.location().expect("location").starts_with("f:"));
        let f = file("a: [1\nb: 2\n");
        let p = parse(&f, Format::Yaml).expect_err("invalid");
        assert!(p.message().contains("not valid YAML"), "{}", p.message());
        assert!(p.location().is_some());
    }
}
