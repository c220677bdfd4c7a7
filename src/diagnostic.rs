//! Problems a person can act on: what is wrong, where (file, line, column, with the source
//! line underlined), and how to fix it.
//!
//! Every user-facing configuration error and warning is a [`Problem`]. Several problems found
//! in one pass travel together as [`Problems`], so a user fixes a file in one go instead of
//! one error per run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode, SourceSpan};

/// A configuration file kept in memory so problems can point into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// How the file is named in messages: relative to the working directory when below it,
    /// otherwise as given.
    pub display: String,
    /// The whole text of the file.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wraps `text` read from `path`; `base` is the directory names are shown relative to.
    pub fn new(path: &Path, text: String, base: &Path) -> Self {
        SourceFile {
            path: path.to_path_buf(),
            display: display_path(path, base),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// `file:line:column` of a byte offset.
    pub fn location(&self, offset: usize) -> String {
        let (line, column) = self.line_col(offset);
        format!("{}:{line}:{column}", self.display)
    }
}

/// How a path is shown in messages: relative to `base` when below it, else `~/…` when below
/// the home directory, else absolute.
pub fn display_path(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => crate::config::tilde(path),
    }
}

/// A byte range inside a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (may be 0 for a position).
    pub len: usize,
}

/// One thing wrong (or worth a warning) in what the user gave ksync.
#[derive(Debug, Clone)]
pub struct Problem {
    code: &'static str,
    severity: Severity,
    message: String,
    help: Option<String>,
    at: Option<Box<(SourceFile, Span, String)>>,
}

impl Problem {
    /// An error with a stable `code` (e.g. `config::unknown-key`) and a message.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            at: None,
        }
    }

    /// A warning: reported, but nothing stops.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    /// Adds how to fix it.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Points at `span` in `file`, underlined with `label`.
    pub fn at(mut self, file: &SourceFile, span: Span, label: impl Into<String>) -> Self {
        self.at = Some(Box::new((file.clone(), span, label.into())));
        self
    }

    /// The stable code, e.g. `config::unknown-key`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// True for warnings.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// The message without location or help.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The fix, if one is known.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// `file:line:column` the problem points at, if it points into a file.
    pub fn location(&self) -> Option<String> {
        self.at.as_ref().map(|at| at.0.location(at.1.offset))
    }

    /// One line: `location: message`, for logs and machine-readable output.
    pub fn one_line(&self) -> String {
        match self.location() {
            Some(location) => format!("{location}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("ksync::{}", self.code)))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.at.as_ref().map(|at| &at.0 as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span, label) = self.at.as_deref()?;
        let span = SourceSpan::new(span.offset.into(), span.len);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(label.clone()),
            span,
        ))))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents = (*self.text).read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.display.clone(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

/// Several problems found in one pass; an error when at least one of them is an error.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    items: Vec<Problem>,
}

impl Problems {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one problem.
    pub fn push(&mut self, problem: Problem) {
        self.items.push(problem);
    }

    /// Records all of `other`.
    pub fn extend(&mut self, other: Problems) {
        self.items.extend(other.items);
    }

    /// True when at least one problem is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|p| !p.is_warning())
    }

    /// Every problem, errors and warnings, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.items.iter()
    }

    /// Only the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.items.iter().filter(|p| p.is_warning())
    }

    /// Splits off the errors: `Err` with them if there are any, else `Ok` with the warnings.
    pub fn into_result(self) -> Result<Vec<Problem>, InvalidConfig> {
        if self.has_errors() {
            Err(InvalidConfig {
                problems: self.items.into_iter().filter(|p| !p.is_warning()).collect(),
            })
        } else {
            Ok(self.items)
        }
    }
}

/// The configuration cannot be used: one or more [`Problem`]s, each with its location and fix.
#[derive(Debug, Clone)]
pub struct InvalidConfig {
    /// The errors, in the order found (never empty).
    pub problems: Vec<Problem>,
}

impl InvalidConfig {
    /// A single problem.
    pub fn one(problem: Problem) -> Self {
        InvalidConfig {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => f.write_str(one.message()),
            many => write!(f, "the configuration has {} problems", many.len()),
        }
    }
}

impl std::error::Error for InvalidConfig {}

impl Diagnostic for InvalidConfig {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.problems.as_slice() {
            [one] => Diagnostic::code(one),
            _ => Some(Box::new("ksync::config::invalid")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.problems.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.problems.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.problems.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.problems.as_slice() {
            [_] => None,
            many => Some(Box::new(many.iter().map(|p| p as &dyn Diagnostic))),
        }
    }
}

/// Renders a diagnostic the way the CLI prints it, without colours (for logs and snapshots).
pub fn render_plain(diagnostic: &dyn Diagnostic) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_links(false);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, diagnostic);
    out
}
