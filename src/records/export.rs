//! `hotline records export`: the stored calls as JSON lines, one per call,
//! the same lines a `.jsonl` store writes, for log pipelines.
use std::io::Write;
use std::path::Path;

use super::recorded::for_each_stored;
use super::StoreError;

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
}

/// Writes every call of the store at `path` that started at or after
/// `since_unix_ms` to `out`, one JSON line each, oldest first. Returns how
/// many. Reads only: a server may be writing meanwhile. A `.jsonl` store's
/// lines are copied as they are (an unparsable one only when exporting
/// everything); a line too long to be a record is left out with a warning.
pub fn export_jsonl(path: &Path, since_unix_ms: u64, out: &mut dyn Write) -> Result<usize, ExportError> {
    let mut n = 0;
    let mut failed = None;
    for_each_stored(path, since_unix_ms, |stored| {
        let Some(json) = stored.json else {
            tracing::warn!(store = %path.display(), at = %stored.at, "line too long for a call record; not exported");
            return true;
        };
        // A line that does not say when its call started is in no period.
        if since_unix_ms > 0 && stored.start_unix_ms.is_none() {
            return true;
        }
        match writeln!(out, "{json}") {
            Ok(()) => {
                n += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    failed.map_or(Ok(n), |e| Err(ExportError::Write(e)))
}

/// `--since` as Unix milliseconds: `YYYY-MM-DD` (midnight UTC) or
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_since(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (y, mo, day) = (d.next().ok_or_else(bad)??, d.next().ok_or_else(bad)??, d.next().ok_or_else(bad)??);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let secs_of_day = match time {
        None => 0,
        Some(t) => {
            let mut p = t.splitn(3, ':').map(|p| p.parse::<i64>().map_err(|_| bad()));
            let (h, mi, s) = (p.next().ok_or_else(bad)??, p.next().ok_or_else(bad)??, p.next().ok_or_else(bad)??);
            if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
                return Err(bad());
            }
            h * 3600 + mi * 60 + s
        }
    };
    Ok(((days_from_civil(y, mo, day) * 86_400 + secs_of_day) * 1000) as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_dates_are_utc_midnight_or_the_given_second() {
        assert_eq!(parse_since("1970-01-01"), Ok(0));
        assert_eq!(parse_since("2026-12-05"), Ok(1_796_428_800_000));
        assert_eq!(parse_since("2026-12-05T06:30:01Z"), Ok(1_796_428_800_000 + (6 * 3600 + 30 * 60 + 1) * 1000));
        for bad in ["yesterday", "2026-13-01", "2026-12-05T06:30", "2026-12", ""] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
