//! Located diagnostics for workspace loading.
//!
//! Cedar reports parse, schema and validation problems as `miette::Diagnostic`s whose labels are
//! byte offsets into the text that was parsed. Because the loader parses every file on its own,
//! those offsets are offsets into that file, and this module turns them into `file:line:column`
//! plus a rendered snippet. It does no I/O.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// How serious a diagnostic is. Errors keep a workspace from becoming active; warnings do not
/// (unless the caller asks for warnings to be denied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workspace cannot be used.
    Error,
    /// Suspicious but usable (for example a schema declaration that shadows another).
    Warning,
}

/// One problem found while loading a workspace, located in one of its files.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Workspace-relative path of the file, with `/` separators.
    pub file: String,
    /// 1-based line, or 0 when the problem has no position (for example a missing file).
    pub line: usize,
    /// 1-based column in characters, or 0 when unknown.
    pub column: usize,
    /// What is wrong, in Cedar's words where Cedar found it.
    pub message: String,
    /// A hint on how to fix it, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip)]
    span: Option<(usize, usize)>,
    #[serde(skip)]
    source: Option<Arc<str>>,
}

impl Diagnostic {
    /// An error about a whole file (no position).
    pub fn file_error(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            span: None,
            source: None,
        }
    }

    /// An error at a byte offset of a file's text.
    pub fn at_offset(
        file: impl Into<String>,
        text: &Arc<str>,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            severity: Severity::Error,
            file: file.into(),
            line,
            column,
            message: message.into(),
            help: None,
            span: Some((offset, len)),
            source: Some(Arc::clone(text)),
        }
    }

    /// An error at a 1-based line and column (as serde_json reports them).
    pub fn at_line(
        file: impl Into<String>,
        text: &Arc<str>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset = offset_of(text, line, column);
        let mut d = Self::at_offset(file, text, offset, 0, message);
        d.line = line;
        d.column = column;
        d
    }

    /// Adds a help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turns this into a warning.
    pub fn into_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Converts a Cedar diagnostic about `text` (the content of `file`) into located diagnostics:
    /// one for the diagnostic itself and one for each related diagnostic, so that a file with
    /// three syntax errors reports three positions.
    pub fn from_cedar(
        file: &str,
        text: &Arc<str>,
        diag: &dyn miette::Diagnostic,
        severity: Severity,
    ) -> Vec<Self> {
        let mut out = Vec::new();
        let related: Vec<&dyn miette::Diagnostic> =
            diag.related().map(|r| r.collect()).unwrap_or_default();
        push_one(&mut out, file, text, diag, severity);
        for r in related {
            push_one(&mut out, file, text, r, severity);
        }
        out
    }

    /// Renders the diagnostic as a miette report with the offending source line underlined.
    pub fn render(&self, color: bool) -> String {
        let message = match self.span {
            Some(_) => self.message.clone(),
            None => self.to_string(),
        };
        let report = Rendered {
            message,
            help: self.help.clone(),
            src: miette::NamedSource::new(
                &self.file,
                self.source.as_deref().unwrap_or_default().to_owned(),
            ),
            span: self.span.map(|(o, l)| miette::SourceSpan::new(o.into(), l)),
            severity: self.severity,
        };
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering only fails on a formatter error; the plain form is still correct.
            return self.to_string();
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

fn push_one(
    out: &mut Vec<Diagnostic>,
    file: &str,
    text: &Arc<str>,
    diag: &dyn miette::Diagnostic,
    severity: Severity,
) {
    let message = diag.to_string();
    let help = diag.help().map(|h| h.to_string());
    let first_label = diag.labels().and_then(|mut labels| labels.next());
    let mut d = match first_label {
        Some(label) if label.offset() <= text.len() => {
            Diagnostic::at_offset(file, text, label.offset(), label.len(), message)
        }
        _ => Diagnostic::file_error(file, message),
    };
    d.help = help;
    d.severity = severity;
    out.push(d);
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Byte offset of a 1-based line and column; clamps to the text.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes: usize =
                l.chars().take(column.saturating_sub(1)).map(char::len_utf8).sum();
            return offset + col_bytes;
        }
        offset += l.len();
    }
    text.len()
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Rendered {
    message: String,
    help: Option<String>,
    src: miette::NamedSource<String>,
    span: Option<miette::SourceSpan>,
    severity: Severity,
}

impl miette::Diagnostic for Rendered {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span.map(|_| &self.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.span.map(|s| {
            Box::new(std::iter::once(miette::LabeledSpan::new_with_span(Some("here".into()), s)))
                as Box<dyn Iterator<Item = miette::LabeledSpan>>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "ab\ncdé\nfg";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 6), (2, 3));
    }

    #[test]
    fn offset_round_trips_with_line_column() {
        let text = "one\ntwo\nthree";
        let off = offset_of(text, 3, 2);
        assert_eq!(line_column(text, off), (3, 2));
    }

    #[test]
    fn display_is_file_line_column_message() {
        let text: Arc<str> = Arc::from("permit(\n  principal\n");
        let d = Diagnostic::at_offset("a/b.cedar", &text, 10, 9, "unexpected end of input");
        assert_eq!(d.to_string(), "a/b.cedar:2:3: unexpected end of input");
        assert!(d.render(false).contains("a/b.cedar"));
    }
}
