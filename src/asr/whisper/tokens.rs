//! Whisper's byte-level BPE: the token table from `tokens.txt` (one
//! `base64-bytes id` per line) and an encoder for dialplan phrases.
//!
//! The ids of the table are also the merge ranks (the GPT-2 vocabulary was
//! built merge by merge), so encoding repeatedly merges the adjacent pair whose
//! concatenation has the lowest id, as tiktoken does.
use std::collections::HashMap;
use std::path::Path;

use base64::Engine;

use crate::asr::AsrError;

/// Longest phrase (bytes) the encoder accepts: phrases come from dialplans
/// and are short; this bounds the quadratic merge loop.
const MAX_PHRASE_BYTES: usize = 1024;

pub struct Tokenizer {
    id_to_bytes: Vec<Vec<u8>>,
    bytes_to_id: HashMap<Vec<u8>, u32>,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self, AsrError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| AsrError::Model(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| AsrError::Model(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut id_to_bytes: Vec<Vec<u8>> = Vec::new();
        let mut bytes_to_id = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
            let (tok, id) = line.rsplit_once(' ').ok_or_else(|| bad("expected `base64 id`"))?;
            let id: u32 = id.trim().parse().map_err(|_| bad("id is not a number"))?;
            // The multilingual table writes its one empty token as `=`.
            let bytes = if tok == "=" {
                Vec::new()
            } else {
                base64::engine::general_purpose::STANDARD.decode(tok).map_err(|_| bad("token is not base64"))?
            };
            let idx = id as usize;
            if idx > 1_000_000 {
                return Err(bad("id out of range"));
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
        for b in 0..=255u8 {
            if !bytes_to_id.contains_key(&vec![b]) {
                return Err(format!("byte {b:#04x} has no token; not a byte-level BPE table"));
            }
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
            return Err(AsrError::Failed(format!(
                "phrase of {} bytes is longer than {MAX_PHRASE_BYTES}: {:?}…",
                text.len(),
                text.chars().take(40).collect::<String>()
            )));
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
    use super::{pretokenize, Tokenizer};
    use base64::Engine;

    #[test]
    fn an_empty_token_written_as_a_lone_pad_is_accepted() {
        let mut table: String =
            (0..=255u8).map(|b| format!("{} {b}\n", base64::engine::general_purpose::STANDARD.encode([b]))).collect();
        table.push_str("= 256\n");
        let tok = Tokenizer::parse(&table).expect("a table with `= 256` loads");
        assert_eq!(tok.len(), 257);
        assert_eq!(tok.token_bytes(256), Some(&b""[..]));
        assert_eq!(tok.encode("ab").unwrap(), [97, 98]);
        assert!(Tokenizer::parse("== 3\n").err().is_some_and(|e| e.contains("line 1")));
    }

    #[test]
    fn pretokenizes_like_gpt2() {
        assert_eq!(pretokenize(" Hello world."), [" Hello", " world", "."]);
        assert_eq!(pretokenize(" I'm 45 12!"), [" I", "'m", " 45", " 12", "!"]);
        assert_eq!(pretokenize("a  b"), ["a", " ", " b"]);
    }
}
