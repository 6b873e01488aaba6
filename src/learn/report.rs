//! The suggestions as a person reads them (a table, then each one's
//! evidence) or as JSON for tools.
use std::fmt::Write as _;

use super::propose::{Decision, Proposal, Suggestion};

/// Which regression check ran, said in every report.
pub const CHECK: &str = "open transcripts: the recorded transcripts replayed through the text matcher";
/// Added to [`CHECK`] when `--rehear` ran.
pub const CHECK_AUDIO: &str = "; kept audio: recognised again with the menu's grammar before and after";

/// Everything `hotline suggest` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The records file read.
    pub records: String,
    pub calls: usize,
    /// Utterances heard in menus (the regression corpus).
    pub utterances: usize,
    /// Calls of dialplans not found in the dialplan folder (left out).
    pub calls_without_dialplan: usize,
    /// Record lines or events that could not be read (left out).
    pub skipped: usize,
    pub check: String,
    pub suggestions: Vec<Suggestion>,
}

/// The report as one JSON document.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The report as text: a summary table, then each suggestion's evidence.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} calls, {} utterances in menus{}{}",
        report.records,
        report.calls,
        report.utterances,
        match report.calls_without_dialplan {
            0 => String::new(),
            n => format!(", {n} calls of dialplans not in the folder left out"),
        },
        match report.skipped {
            0 => String::new(),
            n => format!(", {n} unreadable records skipped"),
        },
    );
    let _ = writeln!(out, "check: {}", report.check);
    if report.suggestions.is_empty() {
        let _ = writeln!(out, "\nnothing to suggest: every caller was understood");
        return out;
    }
    let rows: Vec<[String; 7]> = report
        .suggestions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (fixed, moved) = match &s.replay {
                Some(r) => (format!("{}/{}", r.fixed, s.count), format!("{}/{}", r.moved.len(), r.others_checked)),
                None => ("-".into(), "-".into()),
            };
            [
                (i + 1).to_string(),
                format!("{}/{}", s.dialplan, s.menu),
                s.count.to_string(),
                format!("\"{}\"", s.words),
                short(&s.proposal),
                fixed,
                moved,
            ]
        })
        .collect();
    // `fixed`: of the group; `moves`: other utterances of the menu the change sends elsewhere.
    let header = ["#", "menu", "count", "words", "suggestion", "fixed", "moves"];
    let widths: Vec<usize> =
        (0..7).map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0)).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    for (i, s) in report.suggestions.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}. {}/{}: \"{}\", {} callers", i + 1, s.dialplan, s.menu, s.words, s.count);
        let _ = writeln!(
            out,
            "   {} not understood, {} refused \"did you mean\", {} confirmed, {} undone at once; confidence before {:.2}",
            s.no_match, s.refused, s.confirmed, s.undone, s.confidence_before
        );
        let heard: Vec<String> = s.heard_as.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = writeln!(out, "   heard as: {}", heard.join(", "));
        let _ = writeln!(out, "   calls: {}", s.example_calls.join(", "));
        if let Some(m) = &s.meant {
            let _ = writeln!(out, "   meant: `{}` ({} of {})", m.option, m.callers, s.count);
        }
        let _ = writeln!(out, "   suggestion: {}", long(&s.proposal));
        if let Some(r) = &s.replay {
            let _ = writeln!(
                out,
                "   replayed: fixes {} of {}; {} of {} other utterances of the menu move",
                r.fixed,
                s.count,
                r.moved.len(),
                r.others_checked
            );
            for m in &r.moved {
                let _ = writeln!(
                    out,
                    "     {} \"{}\": {} -> {}",
                    m.call_id,
                    m.text,
                    decision(&m.before),
                    decision(&m.after)
                );
            }
        }
    }
    out
}

fn short(p: &Proposal) -> String {
    match p {
        Proposal::AddPhrase { option, .. } => format!("add phrase to `{option}`"),
        Proposal::NewOption { .. } => "new option?".into(),
        Proposal::NewGlobal { .. } => "new global intent?".into(),
        Proposal::Nothing { .. } => "nothing to do".into(),
    }
}

fn long(p: &Proposal) -> String {
    match p {
        Proposal::AddPhrase { option, phrase } => format!("add phrase \"{phrase}\" to option `{option}`"),
        Proposal::NewOption { phrase } => {
            format!("callers ask for \"{phrase}\" and no option fits: a new option")
        }
        Proposal::NewGlobal { phrase, menus } => format!(
            "callers ask for \"{phrase}\" in {} menus ({}) and nothing fits: a new global intent",
            menus.len(),
            menus.join(", ")
        ),
        Proposal::Nothing { why } => format!("nothing to do ({why})"),
    }
}

fn decision(d: &Decision) -> String {
    match d {
        Decision::Act(i) => format!("acts on `{i}`"),
        Decision::Confirm(i) => format!("asks about `{i}`"),
        Decision::NoMatch => "no match".into(),
    }
}
