//! `--apply`: adds the suggested phrases to the dialplan files in place.
//!
//! Edited with `toml_edit`, so every comment, blank line and the order of
//! keys stay as the admin wrote them; only the phrase lists grow. The
//! result is checked exactly as `hotline check` would check it, and a
//! dialplan that does not check clean is never written. A file is
//! replaced whole (written beside it, then renamed), so a server reading
//! the folder never sees half an edit.
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Value};

use crate::dialplan::{check_source, CheckOptions, Diagnostic};

/// One phrase to add to one option.
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseEdit {
    pub menu: String,
    pub option: String,
    pub phrase: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not valid TOML: {message}", .path.display())]
    Toml { path: PathBuf, message: String },
    #[error("{}: no option `{option}` in menu `{menu}` to add a phrase to", .path.display())]
    NoOption { path: PathBuf, menu: String, option: String },
    #[error("{}: `phrases` of option `{option}` in menu `{menu}` is not a list", .path.display())]
    NotAList { path: PathBuf, menu: String, option: String },
    #[error("{}: not written: the changed dialplan does not check clean:\n{}", .path.display(),
        .diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    DoesNotCheck { path: PathBuf, diagnostics: Vec<Diagnostic> },
}

/// `source` with each edit's phrase appended to its option's `phrases`
/// (created when the option has none); a phrase already there is not
/// added twice.
pub fn add_phrases(path: &Path, source: &str, edits: &[PhraseEdit]) -> Result<String, ApplyError> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| ApplyError::Toml { path: path.into(), message: e.to_string() })?;
    for edit in edits {
        let no_option =
            || ApplyError::NoOption { path: path.into(), menu: edit.menu.clone(), option: edit.option.clone() };
        let option = doc
            .get_mut("menus")
            .and_then(|m| m.get_mut(&edit.menu))
            .and_then(|m| m.get_mut("options"))
            .and_then(|o| o.get_mut(&edit.option))
            .filter(|o| o.is_table_like())
            .ok_or_else(no_option)?;
        let table = option.as_table_like_mut().ok_or_else(no_option)?;
        if table.get("phrases").is_none() {
            table.insert("phrases", Item::Value(Value::Array(Array::new())));
        }
        let not_a_list =
            || ApplyError::NotAList { path: path.into(), menu: edit.menu.clone(), option: edit.option.clone() };
        let list = table.get_mut("phrases").and_then(Item::as_array_mut).ok_or_else(not_a_list)?;
        if !list.iter().any(|p| p.as_str() == Some(edit.phrase.as_str())) {
            push_in_style(list, &edit.phrase);
        }
    }
    Ok(doc.to_string())
}

/// Appends `phrase` the way the list is written: on a line of its own,
/// indented like the last item, in a list written one item per line;
/// after a space otherwise.
fn push_in_style(list: &mut Array, phrase: &str) {
    let last_prefix = list.iter().last().and_then(|v| v.decor().prefix()).and_then(|p| p.as_str()).map(str::to_string);
    list.push(phrase);
    // Only the line break and indentation: a comment in the last item's
    // prefix belongs to the line before it, and stays there.
    let indent = last_prefix.as_deref().and_then(|p| p.rsplit_once('\n')).map(|(_, indent)| format!("\n{indent}"));
    if let (Some(indent), Some(new)) = (indent, list.iter_mut().last()) {
        new.decor_mut().set_prefix(indent);
    }
}

/// Adds the phrases to the dialplan at `path`, checks the result as
/// `hotline check` does, and replaces the file only when it checks clean
/// (warnings allowed). Returns the new text.
pub fn apply_to_file(path: &Path, edits: &[PhraseEdit], check: &CheckOptions) -> Result<String, ApplyError> {
    let io = |source| ApplyError::Io { path: path.to_path_buf(), source };
    let source = std::fs::read_to_string(path).map_err(io)?;
    let changed = add_phrases(path, &source, edits)?;
    let report = check_source(path, changed.as_bytes(), check);
    if !report.parsed || report.errors() > 0 {
        return Err(ApplyError::DoesNotCheck { path: path.to_path_buf(), diagnostics: report.diagnostics });
    }
    if changed == source {
        return Ok(changed);
    }
    // Not `*.toml`, so a server watching the folder never loads it.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".suggest-new");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, &changed).map_err(io)?;
    if let Err(e) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(io(e));
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"# The front desk.
start = "main"

[operator]
extension = "100"   # the queue

[menus.main]
prompt = "Say billing or hours."

# Money matters.
[menus.main.options.billing]
phrases = ["invoices", "payment"] # keep short
dtmf = "1"
transfer = "200"

[menus.main.options.hours]
phrases = [
    "opening hours",  # the usual
    "hours",
]
say = "We are open nine to five."
then = "return"
"#;

    fn edit(option: &str, phrase: &str) -> PhraseEdit {
        PhraseEdit { menu: "main".into(), option: option.into(), phrase: phrase.into() }
    }

    #[test]
    fn adding_phrases_keeps_every_comment_and_line_as_written() {
        let out =
            add_phrases(Path::new("d.toml"), PLAN, &[edit("billing", "billing"), edit("hours", "when open")]).unwrap();
        let want = PLAN
            .replace(r#"["invoices", "payment"] # keep short"#, r#"["invoices", "payment", "billing"] # keep short"#)
            .replace("    \"hours\",\n]", "    \"hours\",\n    \"when open\",\n]");
        assert_eq!(out, want);
        // Twice is once.
        let again = add_phrases(Path::new("d.toml"), &out, &[edit("billing", "billing")]).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn an_unknown_option_is_refused_by_name() {
        let err = add_phrases(Path::new("d.toml"), PLAN, &[edit("parking", "car")]).unwrap_err();
        assert_eq!(err.to_string(), "d.toml: no option `parking` in menu `main` to add a phrase to");
    }

    #[test]
    fn a_dialplan_that_would_not_check_clean_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        // `goto` names a menu that does not exist: the file has an error
        // already, so no edit of it may be written.
        let broken = PLAN.replace("transfer = \"200\"", "goto = \"nowhere\"");
        std::fs::write(&path, &broken).unwrap();
        let err = apply_to_file(&path, &[edit("billing", "billing")], &CheckOptions::default()).unwrap_err();
        assert!(matches!(err, ApplyError::DoesNotCheck { .. }), "{err}");
        assert!(err.to_string().contains("nowhere"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken, "the file is untouched");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no leftover file");

        std::fs::write(&path, PLAN).unwrap();
        let written = apply_to_file(&path, &[edit("billing", "billing")], &CheckOptions::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
        assert!(written.contains(r#"["invoices", "payment", "billing"]"#), "{written}");
    }
}
