//! Problems found in a dialplan, with the place they were found.
//!
//! Printed one per line as `file:line:col: error: message`, the format
//! editors and CI log viewers turn into clickable links.
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The dialplan works, but probably not as intended.
    Warning,
    /// The dialplan cannot be put into service.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is with the file as a whole.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    /// A suggestion such as "did you mean `billing`?".
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 marks a problem with the file as a whole (unreadable, ...).
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file.display(), self.severity, self.message)?;
        } else {
            write!(f, "{}:{}:{}: {}: {}", self.file.display(), self.line, self.col, self.severity, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// Turns byte spans of one source text into diagnostics.
pub(crate) struct Reporter<'a> {
    file: PathBuf,
    source: &'a str,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: PathBuf, source: &'a str) -> Self {
        Reporter { file, source, diagnostics: Vec::new() }
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>, help: Option<String>) {
        self.push(span, Severity::Error, message.into(), help);
    }

    pub(crate) fn warning(&mut self, span: &Range<usize>, message: impl Into<String>, help: Option<String>) {
        self.push(span, Severity::Warning, message.into(), help);
    }

    fn push(&mut self, span: &Range<usize>, severity: Severity, message: String, help: Option<String>) {
        let (line, col) = line_col(self.source, span.start);
        self.diagnostics.push(Diagnostic { file: self.file.clone(), line, col, severity, message, help });
    }

    /// Diagnostics in the order of the file, so an admin can fix top-down.
    pub(crate) fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| (d.line, d.col));
        self.diagnostics
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// 1-based line and character column of a byte offset (clamped to the text).
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// "did you mean `x`?" when one of `known` is close to `word`.
pub fn did_you_mean<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<String> {
    closest(word, known).map(|k| format!("did you mean `{k}`?"))
}

/// The most similar known word, if it is similar enough to be a typo.
pub fn closest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let word = word.to_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&word, &k.to_lowercase()), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 10_000), (3, 1));
    }

    #[test]
    fn display_puts_help_on_an_indented_line() {
        let d = Diagnostic {
            file: "x.toml".into(),
            line: 3,
            col: 7,
            severity: Severity::Error,
            message: "unknown menu `biling`".into(),
            help: Some("did you mean `billing`?".into()),
        };
        assert_eq!(d.to_string(), "x.toml:3:7: error: unknown menu `biling`\n  = help: did you mean `billing`?");
    }

    #[test]
    fn suggestions_only_for_close_words() {
        let menus = ["main", "billing", "support"];
        assert_eq!(closest("biling", menus), Some("billing"));
        assert_eq!(closest("Suport", menus), Some("support"));
        assert_eq!(closest("weather", menus), None);
    }
}
