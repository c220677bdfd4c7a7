//! What is never synced: built-in patterns, a spec's `ignore` list and an optional
//! `.ksyncignore` in the local folder (gitignore syntax).
//!
//! The same list goes to both Syncthings (through the ignores API, as `.stignore` syntax) and
//! to ksync's own watcher (as gitignore rules), so an ignored path is neither scanned on
//! request nor sent either way.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Ignored unless a later `!pattern` re-includes them: version control data, editor swap
/// and backup files, OS metadata. `(?d)` lets Syncthing delete a folder that only holds them.
pub const DEFAULT_PATTERNS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "4913",
    "(?d).DS_Store",
    "(?d)Thumbs.db",
];

/// Name of the optional per-folder ignore file (gitignore syntax).
pub const KSYNCIGNORE: &str = ".ksyncignore";

/// Whether `name` (a file name) is a file Syncthing is still writing: it pulls into
/// `.syncthing.NAME.tmp` (`~syncthing~NAME.tmp` on Windows) and renames it into place when done.
pub fn is_syncthing_temp(name: &str) -> bool {
    (name.starts_with(".syncthing.") || name.starts_with("~syncthing~")) && name.ends_with(".tmp")
}

/// The ignore rules of one folder.
#[derive(Debug, Clone)]
pub struct IgnoreSet {
    stignore: Vec<String>,
    matcher: Gitignore,
}

impl IgnoreSet {
    /// Defaults, then `spec` patterns, then `.ksyncignore` lines (later rules win, and `!`
    /// re-includes, as in gitignore).
    pub fn build(local_root: &Path, spec: &[String]) -> Result<IgnoreSet, String> {
        let mut rules: Vec<String> = DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect();
        rules.extend(spec.iter().cloned());
        let file = local_root.join(KSYNCIGNORE);
        match std::fs::read_to_string(&file) {
            Ok(text) => rules.extend(text.lines().map(str::to_string)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
        let rules: Vec<String> = rules
            .into_iter()
            .map(|r| r.trim_end().to_string())
            .filter(|r| !r.is_empty() && !r.starts_with('#'))
            .collect();
        let mut builder = GitignoreBuilder::new(local_root);
        for rule in &rules {
            builder
                .add_line(None, strip_flags(rule))
                .map_err(|e| format!("ignore pattern `{rule}` is not valid: {e}"))?;
        }
        let matcher = builder
            .build()
            .map_err(|e| format!("ignore patterns are not valid: {e}"))?;
        Ok(IgnoreSet {
            stignore: rules.iter().map(|r| to_stignore(r)).collect(),
            matcher,
        })
    }

    /// The rules in Syncthing's `.stignore` syntax.
    pub fn stignore(&self) -> &[String] {
        &self.stignore
    }

    /// True when `relative` (to the folder) or one of its parents is ignored.
    pub fn is_ignored(&self, relative: &Path, is_dir: bool) -> bool {
        self.matcher
            .matched_path_or_any_parents(relative, is_dir)
            .is_ignore()
    }
}

/// Syncthing's `(?d)` and `(?i)` prefixes mean nothing to gitignore.
fn strip_flags(rule: &str) -> &str {
    let mut rule = rule;
    while let Some(rest) = rule
        .strip_prefix("(?d)")
        .or_else(|| rule.strip_prefix("(?i)"))
    {
        rule = rest;
    }
    rule
}

/// A gitignore rule as a `.stignore` line. Syncthing has no directory-only rules, so a
/// trailing `/` is dropped (the rule then also matches a file of that name).
fn to_stignore(rule: &str) -> String {
    let trimmed = rule.strip_suffix('/').unwrap_or(rule);
    if trimmed.is_empty() {
        rule.to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncthing_temporary_files_are_known_by_name() {
        assert!(is_syncthing_temp(".syncthing.index.html.tmp"));
        assert!(is_syncthing_temp("~syncthing~index.html.tmp"));
        assert!(!is_syncthing_temp("index.html.tmp"));
        assert!(!is_syncthing_temp(".syncthing.index.html"));
    }

    #[test]
    fn defaults_spec_and_ksyncignore() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(KSYNCIGNORE),
            "# build output\nnode_modules/\n*.log\n!keep.log\n\n",
        )
        .expect("write");
        let set = IgnoreSet::build(dir.path(), &["dist".to_string()]).expect("valid");
        let ignored = |p: &str, dir: bool| set.is_ignored(Path::new(p), dir);
        assert!(ignored(".git/HEAD", false));
        assert!(ignored("src/.main.rs.swp", false));
        assert!(ignored("dist/app.js", false));
        assert!(ignored("web/node_modules/x/index.js", false));
        assert!(ignored("debug.log", false));
        assert!(!ignored("keep.log", false));
        assert!(!ignored("src/main.rs", false));
        assert!(ignored(".DS_Store", false));
        let st = set.stignore();
        assert!(st.contains(&"node_modules".to_string()));
        assert!(st.contains(&"(?d).DS_Store".to_string()));
        assert!(st.contains(&"!keep.log".to_string()));
        assert!(!st.iter().any(|l| l.starts_with('#') || l.is_empty()));
    }

    #[test]
    fn bad_patterns_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = IgnoreSet::build(dir.path(), &["src/{a,b".to_string()]).expect_err("invalid glob");
        assert!(e.contains("src/{a,b"), "{e}");
    }
}
