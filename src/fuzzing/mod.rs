//! Fuzzing the parsers and the call machine: "never panics on input",
//! checked rather than hoped for (see `docs/fuzzing.md`).
//!
//! Each `fuzz_*` function takes arbitrary bytes, turns them into structured
//! input with [`Entropy`] (valid messages, mutated ones, garbage, in any
//! order), feeds one parser, and panics when a promise is broken; a panic
//! inside the parser is a finding too. The same functions are the bodies of
//! the cargo-fuzz targets in `fuzz/` (built with the `fuzzing` feature) and
//! of the property tests in `tests.rs`, which hand them random bytes from
//! proptest on every `cargo test`.
mod call;
mod codecs;
#[cfg(test)]
mod tests;
mod text;

pub use call::fuzz_call;
pub use codecs::{fuzz_audiosocket_framer, fuzz_codecs};
pub use text::{fuzz_config, fuzz_dialplan, fuzz_esl, fuzz_http_head, fuzz_wav, mutate_wav};

/// A source of decisions read from fuzzer bytes: every choice consumes a
/// few bytes, and once they run out every choice is the first one (zero),
/// so shorter inputs mean simpler cases and a fuzzer's minimised input
/// stays meaningful.
pub struct Entropy<'a> {
    data: &'a [u8],
}

impl<'a> Entropy<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Entropy { data }
    }

    /// True when every byte was used: loops driven by the input stop here.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// A number in `0..n` (`n` > 0); one byte when that is enough.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        if n <= 256 {
            self.byte() as usize % n
        } else {
            self.u32() as usize % n
        }
    }

    /// True about once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// Up to `max` raw bytes of the input, used as they are.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }

    /// `data` cut at arbitrary points: every piece non-empty, in order.
    pub fn split<'d>(&mut self, data: &'d [u8]) -> Vec<&'d [u8]> {
        let mut pieces = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = match self.below(4) {
                // Small pieces often: headers cut in the middle.
                0 => 1 + self.below(4),
                1 => 1 + self.below(64),
                2 => rest.len(),
                _ => 1 + self.below(rest.len().min(4096)),
            };
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }
}

/// Bytes a mutation inserts: the delimiters of the formats fuzzed here
/// (JSON, TOML, HTTP, ESL, percent escapes) and a multi-byte character.
const TOKENS: &[&[u8]] = &[
    b" ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"0",
    b"a",
    b"\\",
    b"=",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"#",
    b"'",
    b".",
    b"%",
    b"%2",
    b"-1",
    b"1e999",
    b"\"\"\"",
    b"[[",
    b"\xc3\xa9",
    b"\xff",
    b"\0",
    b"99999999999999999999",
];

/// `seed` changed by one to four random edits at the byte and line level:
/// flips, inserted delimiters, deletions, truncation, deleted, duplicated
/// or swapped lines, and renamed `key =` / `"key":` names.
pub fn mutate(e: &mut Entropy, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + e.below(4) {
        let at = e.below(data.len() + 1);
        match e.below(9) {
            0 => {
                if let Some(b) = data.get_mut(at) {
                    *b ^= 1 << e.below(8);
                }
            }
            1 => {
                let token = e.pick(TOKENS);
                data.splice(at..at, token.iter().copied());
            }
            2 => {
                let end = (at + 1 + e.below(16)).min(data.len());
                data.drain(at..end.max(at));
            }
            3 => data.truncate(at),
            4 => data = edit_lines(e, &data, LineEdit::Delete),
            5 => data = edit_lines(e, &data, LineEdit::Duplicate),
            6 => data = edit_lines(e, &data, LineEdit::Swap),
            7 => data = rename_key(e, &data),
            _ => {
                let random = e.bytes(8);
                data.splice(at..at, random.iter().copied());
            }
        }
    }
    data
}

enum LineEdit {
    Delete,
    Duplicate,
    Swap,
}

fn edit_lines(e: &mut Entropy, data: &[u8], edit: LineEdit) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    if lines.is_empty() {
        return data.to_vec();
    }
    let i = e.below(lines.len());
    match edit {
        LineEdit::Delete => {
            lines.remove(i);
        }
        LineEdit::Duplicate => lines.insert(i, lines[i]),
        LineEdit::Swap => {
            let j = e.below(lines.len());
            lines.swap(i, j);
        }
    }
    lines.concat()
}

/// Replaces the name of one `name =` (TOML) or `"name":` (JSON) with
/// another name of the same text, a near miss, or nothing.
fn rename_key(e: &mut Entropy, data: &[u8]) -> Vec<u8> {
    let keys = key_spans(data);
    if keys.is_empty() {
        return data.to_vec();
    }
    let (start, end) = *e.pick(&keys);
    let replacement: Vec<u8> = match e.below(3) {
        0 => {
            let (s, t) = *e.pick(&keys);
            data[s..t].to_vec()
        }
        1 => {
            let mut near = data[start..end].to_vec();
            let i = e.below(near.len());
            near[i] = *e.pick(b"abz_-.0 ");
            near
        }
        _ => Vec::new(),
    };
    [&data[..start], &replacement[..], &data[end..]].concat()
}

/// Byte ranges of key names: a run of name characters followed by ` =` or
/// `":`.
fn key_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut spans = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if !is_name(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < data.len() && is_name(data[i]) {
            i += 1;
        }
        let after = &data[i..];
        let trimmed = after.iter().position(|&b| b != b' ').map_or(&after[after.len()..], |p| &after[p..]);
        if trimmed.starts_with(b"=") || after.starts_with(b"\":") {
            spans.push((start, i));
        }
    }
    spans
}
