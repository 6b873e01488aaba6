//! Problems found in a server config, each with the place it was found.
//!
//! Printed one per line as `file:line:col: message`, with a `= help:` line
//! under it when a likely fix is known: the shape the dialplan checker
//! uses (and whose position and did-you-mean helpers this reuses), so an
//! admin reads both the same way and editors turn both into links.
use std::fmt;
use std::ops::{Range, RangeInclusive};

use crate::dialplan::diagnostic::line_col;
use crate::dialplan::At;

/// One mistake in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as the admin named it (`config` when there is none).
    pub file: String,
    /// 1-based; 0 when the problem is with the file as a whole (unreadable).
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    /// A likely fix, such as "did you mean `max_calls`?".
    pub help: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// Collects the problems of one config text while its sections are
/// checked, so that every mistake is reported at once.
pub(crate) struct Problems<'a> {
    file: String,
    source: &'a str,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(file: String, source: &'a str) -> Self {
        Problems { file, source, found: Vec::new() }
    }

    /// A problem at a byte span of the source.
    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>, help: Option<String>) {
        let (line, col) = line_col(self.source, span.start);
        self.found.push(Problem { file: self.file.clone(), line, col, message: message.into(), help });
    }

    /// A problem with the value of `field` (its dotted name, as an admin
    /// searches the example config for it).
    pub(crate) fn field(&mut self, span: &Range<usize>, field: &str, message: impl fmt::Display) {
        self.at(span, format!("`{field}`: {message}"), None);
    }

    /// A whole number within `range`; the default when absent or, after
    /// reporting it, when out of range (so checking goes on).
    pub(crate) fn int_in(
        &mut self,
        field: &str,
        value: &Option<At<i64>>,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> i64 {
        match value {
            None => default,
            Some(v) if range.contains(&v.value) => v.value,
            Some(v) => {
                self.field(&v.span, field, format!("{} is out of range {}..={}", v.value, range.start(), range.end()));
                default
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Problems in the order of the file, so an admin can fix top-down.
    /// The sort is stable: problems at one place keep the order found.
    pub(crate) fn into_sorted(mut self) -> Vec<Problem> {
        self.found.sort_by_key(|p| (p.line, p.col));
        self.found
    }
}
