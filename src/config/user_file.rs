//! Editing the user file `~/.ksync/ksync.yaml` for `ksync create` and `ksync delete`.
//!
//! Edits are made on the text, not by re-serialising the file: everything outside the
//! touched spec entry (other keys, other specs, comments, quoting, key order) stays byte for
//! byte as it was. The file is replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::document::{self, Format, Node, Value};
use super::paths::absolutize;
use crate::diagnostic::{InvalidConfig, SourceFile};
use crate::selector::LabelSelector;

/// A spec as `ksync create` writes it; also the normalised form of an existing entry, to
/// find identical specs under another name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSpec {
    /// Spec name.
    pub name: String,
    /// Pod name, or empty.
    pub pod: String,
    /// Canonical label selector, or empty.
    pub selector: String,
    /// Container name, or empty.
    pub containername: String,
    /// Namespace, or empty.
    pub namespace: String,
    /// Absolute local folder.
    pub localpath: String,
    /// Container path.
    pub remotepath: String,
    /// Reload after sync.
    pub reload: bool,
    /// Local side read-only.
    pub localreadonly: bool,
    /// Remote side read-only.
    pub remotereadonly: bool,
}

impl NewSpec {
    /// The same spec without its name, for "identical but renamed" comparisons.
    fn unnamed(&self) -> NewSpec {
        NewSpec {
            name: String::new(),
            ..self.clone()
        }
    }

    /// The YAML lines of this spec as a list item, `indent` spaces in.
    fn to_yaml(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let mut lines: Vec<String> = Vec::new();
        let strings = [
            ("name", &self.name),
            ("containername", &self.containername),
            ("pod", &self.pod),
            ("selector", &self.selector),
            ("namespace", &self.namespace),
            ("localpath", &self.localpath),
            ("remotepath", &self.remotepath),
        ];
        for (key, value) in strings {
            if !value.is_empty() {
                lines.push(format!("{key}: {}", yaml_scalar(value)));
            }
        }
        lines.push(format!("reload: {}", self.reload));
        if self.localreadonly {
            lines.push("localreadonly: true".into());
        }
        if self.remotereadonly {
            lines.push("remotereadonly: true".into());
        }
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let lead = if i == 0 { "- " } else { "  " };
            out.push_str(&format!("{pad}{lead}{line}\n"));
        }
        out
    }
}

/// Editing the user file failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UserFileError {
    /// The file is not valid YAML or not a ksync file; it is left untouched.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] InvalidConfig),
    /// Reading or writing failed.
    #[error("failed to {action} {}", path.display())]
    #[diagnostic(
        code(ksync::config::user_file_io),
        help("check that the directory exists and is writable; the file was not changed")
    )]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The user file, parsed, ready for text edits.
#[derive(Debug)]
pub struct UserFile {
    path: PathBuf,
    text: String,
    entries: Vec<Entry>,
    /// True when the entries are a block list (`- name: …` lines); false for a flow list.
    block: bool,
    /// Offset of the `spec` key and its value, when the key exists.
    spec_key: Option<(usize, Node)>,
}

#[derive(Debug)]
struct Entry {
    spec: NewSpec,
    /// Start of the comment lines right above the entry (its own start when there are none).
    comment_start: usize,
    /// Start of the line holding the entry's `-`.
    start: usize,
    /// Just past the entry's last line.
    end: usize,
    /// Column of the entry's `-`.
    dash_column: usize,
}

impl UserFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn open(path: &Path) -> Result<UserFile, UserFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(UserFileError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let base = path.parent().unwrap_or(Path::new("/"));
        let file = SourceFile::new(path, text.clone(), Path::new(""));
        let root = document::parse(&file, Format::Yaml).map_err(InvalidConfig::one)?;
        let mut spec_key = None;
        let mut entries = Vec::new();
        let mut block = true;
        if let Value::Map(top) = &root.value
            && let Some((key, value)) = top.iter().find(|(k, _)| k.key_text() == "spec")
        {
            if let Value::List(items) = &value.value {
                let mut previous_end = line_end(&text, key.span.offset);
                for item in items {
                    let spec = normalise_entry(item, base);
                    let end = line_end(&text, deepest_end(item));
                    match dash_of(&text, item.span.offset) {
                        Some((start, dash_column)) if block => {
                            entries.push(Entry {
                                spec,
                                comment_start: comment_block_start(&text, previous_end, start),
                                start,
                                end,
                                dash_column,
                            });
                        }
                        _ => {
                            block = false;
                            entries.push(Entry {
                                spec,
                                comment_start: 0,
                                start: 0,
                                end: 0,
                                dash_column: 0,
                            });
                        }
                    }
                    previous_end = end;
                }
            }
            spec_key = Some((key.span.offset, value.clone()));
        }
        Ok(UserFile {
            path: path.to_path_buf(),
            text,
            entries,
            block,
            spec_key,
        })
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the specs in the file, in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.spec.name.clone()).collect()
    }

    /// The spec in the file that equals `spec` in everything but the name.
    pub fn same_as(&self, spec: &NewSpec) -> Option<&str> {
        let wanted = spec.unnamed();
        self.entries
            .iter()
            .find(|e| e.spec.unnamed() == wanted && e.spec.name != spec.name)
            .map(|e| e.spec.name.as_str())
    }

    /// The text with `spec` added, or replacing the entry of the same name.
    pub fn with_spec(&self, spec: &NewSpec) -> String {
        if !self.block {
            let mut specs: Vec<NewSpec> = self
                .entries
                .iter()
                .map(|e| e.spec.clone())
                .filter(|s| s.name != spec.name)
                .collect();
            specs.push(spec.clone());
            return self.rewrite_spec_value(&specs);
        }
        if let Some(existing) = self.entries.iter().find(|e| e.spec.name == spec.name) {
            let mut out = self.text[..existing.start].to_string();
            out.push_str(&spec.to_yaml(existing.dash_column));
            out.push_str(&self.text[existing.end..]);
            return out;
        }
        if let Some(last) = self.entries.last() {
            let mut out = self.text[..last.end].to_string();
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&spec.to_yaml(last.dash_column));
            out.push_str(&self.text[last.end..]);
            return out;
        }
        self.rewrite_spec_value(std::slice::from_ref(spec))
    }

    /// The text without the entries named in `names` (which must exist).
    pub fn without(&self, names: &[String]) -> String {
        if !self.block {
            let kept: Vec<NewSpec> = self
                .entries
                .iter()
                .map(|e| e.spec.clone())
                .filter(|s| !names.contains(&s.name))
                .collect();
            return self.rewrite_spec_value(&kept);
        }
        let mut out = String::new();
        let mut at = 0;
        for entry in self.entries.iter().filter(|e| names.contains(&e.spec.name)) {
            out.push_str(&self.text[at..entry.comment_start]);
            at = entry.end;
        }
        out.push_str(&self.text[at..]);
        let remaining = self
            .entries
            .iter()
            .filter(|e| !names.contains(&e.spec.name))
            .count();
        if remaining == 0
            && let Some((key_offset, _)) = &self.spec_key
        {
            // Keep the file explicit about having no specs, as the original tool did.
            let start = line_start(&out, *key_offset);
            let end = line_end(&out, *key_offset);
            out.replace_range(start..end, "spec: []\n");
        }
        out
    }

    /// The text with the whole `spec` value written anew as a block list (or appended when
    /// the key is missing). Used for empty and flow-style lists.
    fn rewrite_spec_value(&self, specs: &[NewSpec]) -> String {
        let mut block = String::from(if specs.is_empty() {
            "spec: []\n"
        } else {
            "spec:\n"
        });
        for spec in specs {
            block.push_str(&spec.to_yaml(0));
        }
        match &self.spec_key {
            Some((key_offset, value)) => {
                let start = line_start(&self.text, *key_offset);
                let end = line_end(&self.text, deepest_end(value).max(*key_offset));
                format!("{}{block}{}", &self.text[..start], &self.text[end..])
            }
            None => {
                let mut out = self.text.clone();
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&block);
                out
            }
        }
    }

    /// Replaces the file with `text` atomically, keeping its permissions; creates the ksync
    /// home if needed.
    pub fn write(&self, text: &str) -> Result<(), UserFileError> {
        let io = |source| UserFileError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".ksync.yaml.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            if let Ok(meta) = std::fs::metadata(&self.path) {
                std::fs::set_permissions(&tmp, meta.permissions())?;
            }
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

/// An existing entry in the normalised form of [`NewSpec`].
fn normalise_entry(item: &Node, base: &Path) -> NewSpec {
    let mut spec = NewSpec::default();
    let Value::Map(fields) = &item.value else {
        return spec;
    };
    for (key, value) in fields {
        let text = match &value.value {
            Value::Str(s) => s.trim().to_string(),
            Value::List(items) => items
                .iter()
                .filter_map(|n| match &n.value {
                    Value::Str(s) => Some(s.trim().to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        let flag = matches!(value.value, Value::Bool(true));
        match key.key_text().as_str() {
            "name" => spec.name = text,
            "pod" => spec.pod = text,
            "selector" => {
                spec.selector = LabelSelector::parse(&text).map_or(text, |s| s.to_string());
            }
            "containername" => spec.containername = text,
            "namespace" => spec.namespace = text,
            "localpath" if !text.is_empty() => {
                spec.localpath = absolutize(base, Path::new(&text)).display().to_string();
            }
            "remotepath" => {
                spec.remotepath = if text.len() > 1 {
                    text.trim_end_matches('/').to_string()
                } else {
                    text
                };
            }
            "reload" => spec.reload = flag,
            "localreadonly" => spec.localreadonly = flag,
            "remotereadonly" => spec.remotereadonly = flag,
            _ => {}
        }
    }
    spec
}

/// A string as a YAML scalar: plain when that is unambiguous, else double-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain_char = |c: char| c.is_ascii_alphanumeric() || "_./@-=,!()".contains(c);
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n",
    ];
    let looks_numeric = s.parse::<f64>().is_ok();
    let plain = !s.is_empty()
        && s.chars().all(plain_char)
        && !s.starts_with(['-', '!', '@', '.', ','])
        && !reserved.contains(&s.to_ascii_lowercase().as_str())
        && !looks_numeric;
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

/// Offset just past the newline ending the line that holds `offset`.
fn line_end(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// Start of the line holding the `-` that introduces the block list item whose content
/// starts at `offset`, and the `-`'s column (0-based); `None` for flow-style items.
fn dash_of(text: &str, offset: usize) -> Option<(usize, usize)> {
    let start = line_start(text, offset);
    let prefix = &text[start..offset.min(text.len())];
    let dash_here = |prefix: &str| {
        let trimmed = prefix.trim_end();
        (trimmed.trim_start() == "-").then(|| trimmed.len() - 1)
    };
    if let Some(column) = dash_here(prefix) {
        return Some((start, column));
    }
    // `-` alone on the line above, the content on the next line.
    if prefix.trim().is_empty() && start > 0 {
        let above = line_start(text, start - 1);
        if let Some(column) = dash_here(&text[above..start]) {
            return Some((above, column));
        }
    }
    None
}

/// Start of the comment lines that directly precede `start` (but not before `floor`).
fn comment_block_start(text: &str, floor: usize, start: usize) -> usize {
    let mut begin = start;
    while begin > floor {
        let prev = line_start(text, begin - 1);
        if prev < floor || !text[prev..begin].trim_start().starts_with('#') {
            break;
        }
        begin = prev;
    }
    begin
}

/// The furthest byte any node inside `node` reaches.
fn deepest_end(node: &Node) -> usize {
    let own = node.span.offset + node.span.len;
    match &node.value {
        Value::List(items) => items.iter().map(deepest_end).fold(own, usize::max),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| deepest_end(k).max(deepest_end(v)))
            .fold(own, usize::max),
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "\
apikey: ksync
context: \"\"
log-level: debug
namespace: default
port: 40322
# my specs
spec:
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
# the api
- name: api
  pod: api-0
  localpath: /tmp/api
  remotepath: /srv
  reload: false
extra: keep-me
";

    fn open(text: &str) -> (tempfile::TempDir, UserFile) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ksync.yaml");
        std::fs::write(&path, text).expect("write");
        let file = UserFile::open(&path).expect("opens");
        (dir, file)
    }

    fn new_spec(name: &str) -> NewSpec {
        NewSpec {
            name: name.into(),
            selector: "app=web".into(),
            localpath: "/home/u/web".into(),
            remotepath: "/app".into(),
            ..NewSpec::default()
        }
    }

    #[test]
    fn add_keeps_everything_else() {
        let (_d, file) = open(ORIGINAL);
        assert_eq!(file.names(), ["sunny-husky", "api"]);
        let out = file.with_spec(&new_spec("web"));
        let expected = ORIGINAL.replace(
            "  reload: false\nextra",
            "  reload: false\n- name: web\n  selector: app=web\n  localpath: /home/u/web\n  remotepath: /app\n  reload: false\nextra",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn delete_removes_entry_and_its_comment() {
        let (_d, file) = open(ORIGINAL);
        let out = file.without(&["api".to_string()]);
        assert!(!out.contains("- name: api\n"), "{out}");
        assert!(!out.contains("api-0"));
        assert!(!out.contains("# the api"));
        assert!(out.contains("# my specs") && out.contains("extra: keep-me"));
        let out = file.without(&["sunny-husky".to_string(), "api".to_string()]);
        assert_eq!(
            out,
            "apikey: ksync\ncontext: \"\"\nlog-level: debug\nnamespace: default\nport: 40322\n# my specs\nspec: []\nextra: keep-me\n"
        );
    }

    #[test]
    fn identical_specs_are_found_under_other_names() {
        let (_d, file) = open(ORIGINAL);
        let same = NewSpec {
            name: "other".into(),
            selector: "app=app".into(),
            namespace: "default".into(),
            localpath: "/tmp/ksync".into(),
            remotepath: "/code".into(),
            reload: true,
            ..NewSpec::default()
        };
        assert_eq!(file.same_as(&same), Some("sunny-husky"));
        assert_eq!(
            file.same_as(&NewSpec {
                reload: false,
                ..same
            }),
            None
        );
    }

    #[test]
    fn empty_and_flow_lists_become_block_lists() {
        for text in [
            "",
            "spec: []\n",
            "port: 1\nspec:\n",
            "spec: [{name: a, pod: p, localpath: /a, remotepath: /b}]\nport: 2\n",
        ] {
            let (_d, file) = open(text);
            let out = file.with_spec(&new_spec("web"));
            let reparsed = UserFile::open_text(&out);
            assert!(reparsed.contains(&"web".to_string()), "{text:?} -> {out}");
        }
    }

    #[test]
    fn replace_keeps_position() {
        let (_d, file) = open(ORIGINAL);
        let out = file.with_spec(&new_spec("sunny-husky"));
        assert!(out.starts_with("apikey: ksync\n"));
        assert!(
            out.contains("# my specs\nspec:\n- name: sunny-husky\n  selector: app=web\n"),
            "{out}"
        );
        assert!(out.contains("# the api\n- name: api"));
    }

    #[test]
    fn scalars_are_quoted_when_needed() {
        assert_eq!(
            yaml_scalar("app=web,tier in (a,b)"),
            "\"app=web,tier in (a,b)\""
        );
        assert_eq!(yaml_scalar("/home/u/src"), "/home/u/src");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("123"), "\"123\"");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
        assert_eq!(yaml_scalar("!x"), "\"!x\"");
    }

    impl UserFile {
        fn open_text(text: &str) -> Vec<String> {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("ksync.yaml");
            std::fs::write(&path, text).expect("write");
            UserFile::open(&path).expect("valid yaml").names()
        }
    }
}
