//! Whisper's byte-level BPE: the token table from `tokens.txt` (one
//! `base64-bytes id` per line) and an encoder for dialplan phrases.
//!
//! The ids of the table are also the merge ranks (the GPT-2 vocabulary was
//! built merge by merge), so encoding repeatedly merges the adjacent pair whose
//! concatenation has the lowest id, as tiktoken does.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::asr::{AsrError, RecognitionError};

/// Longest phrase (bytes) the encoder accepts: phrases come from dialplans
/// and are short; this bounds the quadratic merge loop.
const MAX_PHRASE_BYTES: usize = 1024;

pub struct Tokenizer {
    id_to_bytes: Vec<Vec<u8>>,
    bytes_to_id: HashMap<Vec<u8>, u32>,
}

/// A token table that cannot be used; names the file and, for a bad
/// line, its number.
#[derive(Debug, thiserror::Error)]
pub enum TokenTableError {
    #[error("cannot read the token table {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {problem}: {text:?}", .path.display())]
    BadLine { path: PathBuf, line: usize, problem: LineProblem, text: String },
    #[error("{}: byte {byte:#04x} has no token; not a byte-level BPE table", .path.display())]
    MissingByte { path: PathBuf, byte: u8 },
}

/// What is wrong with one line of a token table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("expected `base64 id`")]
    NotAPair,
    #[error("the id is not a number")]
    IdNotANumber,
    #[error("the token is not base64")]
    NotBase64,
    #[error("the id is larger than {MAX_ID}")]
    IdOutOfRange,
}

/// Whisper's vocabularies have about 52 000 tokens; a larger id is a
/// corrupt table, and would make the id-indexed table huge.
const MAX_ID: usize = 1_000_000;

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self, TokenTableError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenTableError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses the table's text; `path` is the file it came from, named in
    /// errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TokenTableError> {
        let mut id_to_bytes: Vec<Vec<u8>> = Vec::new();
        let mut bytes_to_id = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |problem| TokenTableError::BadLine {
                path: path.to_path_buf(),
                line: n + 1,
                problem,
                text: line.chars().take(80).collect(),
            };
            let (tok, id) = line.rsplit_once(' ').ok_or_else(|| bad(LineProblem::NotAPair))?;
            let id: u32 = id.trim().parse().map_err(|_| bad(LineProblem::IdNotANumber))?;
            // The multilingual table writes its one empty token as `=`.
            let bytes = if tok == "=" {
                Vec::new()
            } else {
                base64::engine::general_purpose::STANDARD.decode(tok).map_err(|_| bad(LineProblem::NotBase64))?
            };
            let idx = id as usize;
            if idx > MAX_ID {
                return Err(bad(LineProblem::IdOutOfRange));
            }
            if id_to_bytes.len() <= idx {
                id_to_bytes.resize(idx + 1, Vec::new());
            }
            id_to_bytes[idx] = bytes.clone();
            // An empty token is never what a phrase encodes to.
            if !bytes.is_empty() {
                bytes_to_id.insert(bytes, id);
            }
        }
        // Every single byte must be a token, or some text could not be encoded.
        if let Some(byte) = (0..=255u8).find(|&b| !bytes_to_id.contains_key(&vec![b])) {
            return Err(TokenTableError::MissingByte { path: path.to_path_buf(), byte });
        }
        Ok(Tokenizer { id_to_bytes, bytes_to_id })
    }

    /// Number of text tokens (special tokens come after them).
    pub fn len(&self) -> usize {
        self.id_to_bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_to_bytes.is_empty()
    }

    /// The id of a token given by its bytes.
    pub fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        self.bytes_to_id.get(bytes).copied()
    }

    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.id_to_bytes.get(id as usize).map(|v| v.as_slice())
    }

    /// Text of a token sequence; special and unknown ids are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().filter_map(|&i| self.token_bytes(i)).flatten().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Token ids of `text`, split into pieces like GPT-2 does first.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, AsrError> {
        if text.len() > MAX_PHRASE_BYTES {
            return Err(RecognitionError::PhraseTooLong {
                bytes: text.len(),
                limit: MAX_PHRASE_BYTES,
                start: text.chars().take(40).collect(),
            }
            .into());
        }
        let mut out = Vec::new();
        for piece in pretokenize(text) {
            self.encode_piece(piece.as_bytes(), &mut out);
        }
        Ok(out)
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let Some(&id) = self.bytes_to_id.get(piece) {
            out.push(id);
            return;
        }
        let mut parts: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                let mut joined = parts[i].clone();
                joined.extend_from_slice(&parts[i + 1]);
                if let Some(&rank) = self.bytes_to_id.get(&joined) {
                    if best.is_none_or(|(r, _)| rank < r) {
                        best = Some((rank, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let next = parts.remove(i + 1);
            parts[i].extend_from_slice(&next);
        }
        // Every single byte is a token (checked at load), so this never skips.
        out.extend(parts.iter().filter_map(|p| self.bytes_to_id.get(p).copied()));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// GPT-2's pre-tokenisation, without a regex engine:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
pub fn pretokenize(text: &str) -> Vec<String> {
    const CONTRACTIONS: [&str; 7] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\'' {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            if let Some(c) = CONTRACTIONS.iter().find(|c| rest.starts_with(*c)) {
                pieces.push(c.to_string());
                i += c.chars().count();
                continue;
            }
        }
        let start = i;
        // An optional single leading space joins the following run.
        let mut j = i;
        if chars[j] == ' ' && j + 1 < chars.len() && class(chars[j + 1]) != Class::Space {
            j += 1;
        }
        let cls = class(chars[j]);
        if cls == Class::Space {
            // Whitespace run; leave the last space for the next word.
            let mut k = j;
            while k < chars.len() && class(chars[k]) == Class::Space {
                k += 1;
            }
            if k < chars.len() && k - j > 1 {
                k -= 1;
            }
            pieces.push(chars[start..k].iter().collect());
            i = k;
            continue;
        }
        let mut k = j + 1;
        while k < chars.len() && class(chars[k]) == cls {
            if cls == Class::Other && chars[k] == '\'' {
                // A contraction starts a new piece.
                let rest: String = chars[k..chars.len().min(k + 3)].iter().collect();
                if CONTRACTIONS.iter().any(|c| rest.starts_with(c)) {
                    break;
                }
            }
            k += 1;
        }
        pieces.push(chars[start..k].iter().collect());
        i = k;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::{pretokenize, LineProblem, TokenTableError, Tokenizer};
    use base64::Engine;
    use std::path::Path;

    fn byte_table() -> String {
        (0..=255u8).map(|b| format!("{} {b}\n", base64::engine::general_purpose::STANDARD.encode([b]))).collect()
    }

    /// An admin who finds a damaged model install is told which file and
    /// which line, as a compiler would, and not just "model error".
    #[test]
    fn a_malformed_line_of_a_token_file_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.en-tokens.txt");
        let mut table = byte_table();
        table.push_str("IGhlbGxv 256\nIHdvcmxk not-an-id\n");
        std::fs::write(&path, table).unwrap();
        let err = Tokenizer::load(&path).err().expect("a table with a bad id is refused");
        assert!(
            matches!(err, TokenTableError::BadLine { line: 258, problem: LineProblem::IdNotANumber, .. }),
            "{err:?}"
        );
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{}:258: the id is not a number: ", path.display())), "{shown}");
        assert!(shown.contains("not-an-id"), "{shown}");

        // A table missing a byte is named too, and a file that is not there.
        std::fs::write(&path, "YQ== 97\n").unwrap();
        let err = Tokenizer::load(&path).err().unwrap().to_string();
        assert!(err.starts_with(&format!("{}: byte 0x00 has no token", path.display())), "{err}");
        let missing = dir.path().join("missing.txt");
        let err = Tokenizer::load(&missing).err().unwrap().to_string();
        assert!(err.contains("missing.txt") && err.starts_with("cannot read the token table"), "{err}");
    }

    #[test]
    fn an_empty_token_written_as_a_lone_pad_is_accepted() {
        let mut table = byte_table();
        table.push_str("= 256\n");
        let tok = Tokenizer::parse(&table, Path::new("tokens.txt")).expect("a table with `= 256` loads");
        assert_eq!(tok.len(), 257);
        assert_eq!(tok.token_bytes(256), Some(&b""[..]));
        assert_eq!(tok.encode("ab").unwrap(), [97, 98]);
        let err = Tokenizer::parse("== 3\n", Path::new("tokens.txt")).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with("tokens.txt:1: ")), "{err:?}");
    }

    #[test]
    fn pretokenizes_like_gpt2() {
        assert_eq!(pretokenize(" Hello world."), [" Hello", " world", "."]);
        assert_eq!(pretokenize(" I'm 45 12!"), [" I", "'m", " 45", " 12", "!"]);
        assert_eq!(pretokenize("a  b"), ["a", " ", " b"]);
    }
}
