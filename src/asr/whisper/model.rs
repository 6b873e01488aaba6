//! The Whisper encoder and decoder ONNX graphs (sherpa-onnx's export) on
//! `ort`, with the model facts read from the encoder's metadata.
//!
//! One `WhisperModel` is loaded per process and shared by every call. In ort
//! `Session::run` needs `&mut`, so each graph sits behind a mutex: on two
//! cores a second copy of the decoder would cost more memory than the
//! contention it saves.
//!
//! The decoder graph is rewritten in memory as it loads (see [`super::graph`]):
//! its self-attention cache then holds only the positions decoded so far,
//! and all hypotheses of a call share one output projection.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use super::mel::{LogMel, MelFrontend, N_MELS};
use super::tokens::Tokenizer;
use crate::asr::models::ModelPaths;
use crate::asr::{AsrError, Language, ModelError, RecognitionError};

/// Model facts from the ONNX metadata.
#[derive(Debug, Clone)]
pub struct ModelMeta {
    pub sot: u32,
    pub eot: u32,
    pub no_timestamps: u32,
    pub no_speech: u32,
    pub n_text_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    /// Tokens Whisper uses for sound tags and symbols (`[`, `(`, `♪`...).
    pub non_speech_tokens: Vec<u32>,
    pub model_type: String,
    /// The prompt's start: `<|startoftranscript|>` alone (English-only
    /// models) or followed by the language and task tokens (multilingual).
    pub sot_sequence: Vec<u32>,
    pub is_multilingual: bool,
    /// Language codes ("en", "zh"…) and their tokens, in the model's order.
    pub languages: Vec<(String, u32)>,
    pub transcribe: Option<u32>,
}

impl ModelMeta {
    fn from_map(map: &HashMap<String, String>, source: &Path) -> Result<Self, AsrError> {
        let get = |key: &str| -> Result<usize, AsrError> {
            map.get(key).and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
                AsrError::from(ModelError::MetadataKey { path: source.to_path_buf(), key: key.to_string() })
            })
        };
        let ids = |key: &str| -> Vec<u32> {
            map.get(key).map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect()).unwrap_or_default()
        };
        let non_speech_tokens = ids("non_speech_tokens");
        let sot = get("sot")? as u32;
        let mut sot_sequence = ids("sot_sequence");
        if sot_sequence.is_empty() {
            sot_sequence.push(sot);
        }
        let codes: Vec<String> =
            map.get("all_language_codes").map_or(Vec::new(), |v| v.split(',').map(|c| c.trim().to_string()).collect());
        let language_tokens = ids("all_language_tokens");
        let is_multilingual = map.get("is_multilingual").is_some_and(|v| v.trim() == "1");
        if sot_sequence[0] != sot
            || (is_multilingual && (sot_sequence.len() != 3 || codes.len() != language_tokens.len()))
        {
            return Err(ModelError::Unexpected {
                path: source.to_path_buf(),
                what: format!(
                    "metadata `sot_sequence` {sot_sequence:?} or the language list does not fit a Whisper model"
                ),
            }
            .into());
        }
        Ok(ModelMeta {
            sot,
            eot: get("eot")? as u32,
            no_timestamps: get("no_timestamps")? as u32,
            no_speech: get("no_speech")? as u32,
            n_text_layer: get("n_text_layer")?,
            n_text_ctx: get("n_text_ctx")?,
            n_text_state: get("n_text_state")?,
            n_vocab: get("n_vocab")?,
            n_audio_ctx: get("n_audio_ctx")?,
            non_speech_tokens,
            model_type: map.get("model_type").cloned().unwrap_or_else(|| "whisper".into()),
            sot_sequence,
            is_multilingual,
            languages: codes.into_iter().zip(language_tokens).collect(),
            transcribe: map.get("transcribe").and_then(|v| v.trim().parse().ok()),
        })
    }

    /// The decoder prompt for transcribing `language` without timestamps:
    /// `<|startoftranscript|> <|notimestamps|>` for an English-only model,
    /// `<|startoftranscript|> <|xx|> <|transcribe|> <|notimestamps|>` for a
    /// multilingual one (the ids all come from the metadata).
    pub fn prompt(&self, language: &str) -> Result<Vec<u32>, LanguageError> {
        let (model, language_name) = (self.model_type.clone(), language.to_string());
        if !self.is_multilingual {
            return if language == "en" {
                Ok([&self.sot_sequence[..], &[self.no_timestamps]].concat())
            } else {
                Err(LanguageError::EnglishOnly { model, language: language_name })
            };
        }
        let token = self
            .languages
            .iter()
            .find(|(code, _)| code == language)
            .map(|(_, t)| *t)
            .ok_or(LanguageError::Unknown { model, language: language_name })?;
        let transcribe = self.transcribe.unwrap_or(self.sot_sequence[2]);
        Ok(vec![self.sot, token, transcribe, self.no_timestamps])
    }
}

/// A language the model's metadata does not list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    #[error("{model} knows English only, not language {language:?}")]
    EnglishOnly { model: String, language: String },
    #[error("{model} does not know language {language:?}")]
    Unknown { model: String, language: String },
}

impl ModelMeta {
    /// The prompt's tokens by name (`<|startoftranscript|><|zh|>…`), so a
    /// log or a test can see which language an utterance was decoded in.
    pub fn prompt_text(&self, prompt: &[u32]) -> String {
        prompt
            .iter()
            .map(|&t| {
                let name = if t == self.sot {
                    "startoftranscript"
                } else if t == self.no_timestamps {
                    "notimestamps"
                } else if Some(t) == self.transcribe {
                    "transcribe"
                } else if let Some((code, _)) = self.languages.iter().find(|(_, id)| *id == t) {
                    code
                } else {
                    return format!("<|{t}|>");
                };
                format!("<|{name}|>")
            })
            .collect()
    }
}

/// The encoder's output for one utterance: cross-attention keys and values,
/// `[n_layer][positions][n_state]` each.
pub struct AudioFeatures {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub positions: usize,
}

/// Self-attention cache of `batch` hypotheses, `[n_layer][batch][ctx][state]`.
#[derive(Clone)]
pub struct KvCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub batch: usize,
    /// Positions per row: those decoded so far with the rewritten graph,
    /// all `n_text_ctx` with the original one.
    pub ctx: usize,
}

/// Logits of one decoder call, `[batch][tokens][n_vocab]`.
pub struct Logits {
    pub data: Vec<f32>,
    pub batch: usize,
    pub tokens: usize,
    pub vocab: usize,
}

impl Logits {
    pub fn row(&self, b: usize, t: usize) -> &[f32] {
        let start = (b * self.tokens + t) * self.vocab;
        &self.data[start..start + self.vocab]
    }
}

pub struct WhisperModel {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    /// The decoder graph was rewritten: caches grow with the text.
    growing_cache: bool,
    pub meta: ModelMeta,
    pub tokenizer: Tokenizer,
    pub mel: MelFrontend,
    /// The English decoder prompt (see [`ModelMeta::prompt`]).
    pub prompt: Vec<u32>,
}

fn fail(what: &'static str) -> impl Fn(ort::Error) -> AsrError {
    move |source| RecognitionError::Runtime { stage: what, source }.into()
}

/// Which decoder graph to run (the original is kept for comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderGraph {
    /// Rewritten in memory for speed (see [`super::graph`]).
    Rewritten,
    /// As exported.
    Original,
}

impl WhisperModel {
    pub fn load(paths: &ModelPaths) -> Result<Self, AsrError> {
        Self::load_with(paths, DecoderGraph::Rewritten)
    }

    pub fn load_with(paths: &ModelPaths, graph: DecoderGraph) -> Result<Self, AsrError> {
        let encoder = crate::asr::runtime::session(&paths.whisper_encoder)?;
        let enc_in: Vec<&str> = encoder.inputs().iter().map(|i| i.name()).collect();
        let metadata = encoder
            .metadata()
            .map_err(|source| ModelError::Metadata { path: paths.whisper_encoder.clone(), source })?;
        let keys = metadata.custom_keys().unwrap_or_default();
        let map: HashMap<String, String> =
            keys.into_iter().filter_map(|k| metadata.custom(&k).map(|v| (k, v))).collect();
        drop(metadata);
        let meta = ModelMeta::from_map(&map, &paths.whisper_encoder)?;
        let (decoder, growing_cache) = load_decoder(&paths.whisper_decoder, &meta, graph)?;
        let dec_in: Vec<&str> = decoder.inputs().iter().map(|i| i.name()).collect();
        let want_dec = [
            "tokens",
            "in_n_layer_self_k_cache",
            "in_n_layer_self_v_cache",
            "n_layer_cross_k",
            "n_layer_cross_v",
            "offset",
        ];
        if enc_in != ["mel"] || dec_in != want_dec {
            return Err(ModelError::Unexpected {
                path: paths.whisper_encoder.clone(),
                what: format!(
                    "with {}, not a sherpa-onnx Whisper export (encoder inputs {enc_in:?}, decoder inputs {dec_in:?})",
                    paths.whisper_decoder.display()
                ),
            }
            .into());
        }
        let tokenizer = Tokenizer::load(&paths.whisper_tokens)?;
        if tokenizer.len() > meta.eot as usize + 1 || meta.n_vocab <= meta.no_timestamps as usize {
            return Err(ModelError::Unexpected {
                path: paths.whisper_tokens.clone(),
                what: format!(
                    "{} tokens does not fit the model (eot {}, n_vocab {})",
                    tokenizer.len(),
                    meta.eot,
                    meta.n_vocab
                ),
            }
            .into());
        }
        let prompt =
            meta.prompt("en").map_err(|source| ModelError::Language { path: paths.whisper_encoder.clone(), source })?;
        Ok(WhisperModel {
            prompt,
            encoder: Mutex::new(encoder),
            decoder: Mutex::new(decoder),
            growing_cache,
            meta,
            tokenizer,
            mel: MelFrontend::new(),
        })
    }

    /// The decoder prompt for an utterance in `language`, its language
    /// token taken from the model's language list. An English-only model
    /// asked for another language fails: it would transcribe the caller's
    /// words as English nonsense.
    pub fn prompt_for(&self, language: Language) -> Result<Vec<u32>, AsrError> {
        if language.is_english() {
            return Ok(self.prompt.clone());
        }
        Ok(self.meta.prompt(language.code())?)
    }

    /// The lone-space token Whisper must not start a transcript with.
    pub fn tokenizer_blank(&self) -> Option<u32> {
        self.tokenizer.id_of(b" ")
    }

    /// Runs the encoder on a log-mel spectrogram of any length up to 30 s.
    pub fn encode(&self, mel: &LogMel) -> Result<AudioFeatures, AsrError> {
        let input = Tensor::from_array(([1usize, N_MELS, mel.frames], mel.data.clone()))
            .map_err(fail("whisper encoder input"))?;
        let mut session = self.encoder.lock().unwrap_or_else(|p| p.into_inner());
        let out = session.run(ort::inputs!["mel" => input]).map_err(fail("whisper encoder"))?;
        let (shape, k) = out["n_layer_cross_k"].try_extract_tensor::<f32>().map_err(fail("whisper encoder output"))?;
        let (_, v) = out["n_layer_cross_v"].try_extract_tensor::<f32>().map_err(fail("whisper encoder output"))?;
        let positions = shape.get(2).copied().unwrap_or(0) as usize;
        if shape.len() != 4 || positions == 0 || k.len() != v.len() {
            return Err(RecognitionError::Shape {
                stage: "whisper encoder",
                what: format!("unexpected output shape {shape:?}"),
            }
            .into());
        }
        Ok(AudioFeatures { k: k.to_vec(), v: v.to_vec(), positions })
    }

    /// The cache of `batch` hypotheses before anything is decoded.
    pub fn empty_cache(&self, batch: usize) -> KvCache {
        let ctx = if self.growing_cache { 0 } else { self.meta.n_text_ctx };
        let n = self.meta.n_text_layer * batch * ctx * self.meta.n_text_state;
        KvCache { k: vec![0.0; n], v: vec![0.0; n], batch, ctx }
    }

    /// True when the decoder runs the rewritten graph (see [`super::graph`]).
    pub fn has_growing_cache(&self) -> bool {
        self.growing_cache
    }

    /// Copies row `src` of `cache` into each of `rows` rows (beam reordering
    /// and sharing a decoded prefix between phrases).
    pub fn select_rows(&self, cache: &KvCache, rows: &[usize]) -> KvCache {
        let per_row = cache.ctx * self.meta.n_text_state;
        let layers = self.meta.n_text_layer;
        let mut k = Vec::with_capacity(layers * rows.len() * per_row);
        let mut v = Vec::with_capacity(layers * rows.len() * per_row);
        for l in 0..layers {
            for &r in rows {
                let start = (l * cache.batch + r) * per_row;
                k.extend_from_slice(&cache.k[start..start + per_row]);
                v.extend_from_slice(&cache.v[start..start + per_row]);
            }
        }
        KvCache { k, v, batch: rows.len(), ctx: cache.ctx }
    }

    /// One decoder call: `tokens` is `[batch][n]` (same `n` for all rows),
    /// placed at `offset` after what `cache` holds.
    pub fn decode(
        &self,
        audio: &AudioFeatures,
        tokens: &[u32],
        cache: &KvCache,
        offset: usize,
    ) -> Result<(Logits, KvCache), AsrError> {
        let batch = cache.batch;
        let m = &self.meta;
        if batch == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(batch) {
            return Err(RecognitionError::Shape {
                stage: "whisper decoder",
                what: format!("{} tokens for {batch} rows", tokens.len()),
            }
            .into());
        }
        let n = tokens.len() / batch;
        if offset + n > m.n_text_ctx {
            return Err(RecognitionError::Shape {
                stage: "whisper decoder",
                what: format!("{} tokens exceed the text context of {}", offset + n, m.n_text_ctx),
            }
            .into());
        }
        let (layers, state) = (m.n_text_layer, m.n_text_state);
        // The rewritten graph reads `offset + n` positions and writes the
        // last `n`: hand it exactly that many.
        let ctx = if self.growing_cache { offset + n } else { m.n_text_ctx };
        if cache.ctx < offset || cache.ctx > ctx || cache.k.len() != layers * batch * cache.ctx * state {
            return Err(RecognitionError::Shape {
                stage: "whisper decoder",
                what: format!("cache of {} positions for offset {offset}", cache.ctx),
            }
            .into());
        }
        let grown;
        let (k_in, v_in) = if cache.ctx == ctx {
            (&cache.k[..], &cache.v[..])
        } else {
            grown = (
                grow(&cache.k, layers * batch, cache.ctx, ctx, state),
                grow(&cache.v, layers * batch, cache.ctx, ctx, state),
            );
            (&grown.0[..], &grown.1[..])
        };
        // The rewritten graph broadcasts one copy of the audio over the
        // rows; the exported one wants a copy per row.
        let audio_rows = if self.growing_cache { 1 } else { batch };
        let per_layer = audio.positions * state;
        let tile = |src: &[f32]| -> Vec<f32> {
            let mut out = Vec::with_capacity(layers * batch * per_layer);
            for l in 0..layers {
                let layer = &src[l * per_layer..(l + 1) * per_layer];
                for _ in 0..batch {
                    out.extend_from_slice(layer);
                }
            }
            out
        };
        let tiled;
        let (cross_k_in, cross_v_in) = if audio_rows == 1 {
            (&audio.k[..], &audio.v[..])
        } else {
            tiled = (tile(&audio.k), tile(&audio.v));
            (&tiled.0[..], &tiled.1[..])
        };
        let cross_shape = [layers, audio_rows, audio.positions, state];
        let cache_shape = [layers, batch, ctx, state];
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let tokens_t = Tensor::from_array(([batch, n], ids)).map_err(fail("whisper decoder input"))?;
        // Lend the caches, don't copy them.
        let k_cache = TensorRef::from_array_view((cache_shape, k_in)).map_err(fail("whisper decoder input"))?;
        let v_cache = TensorRef::from_array_view((cache_shape, v_in)).map_err(fail("whisper decoder input"))?;
        let cross_k = TensorRef::from_array_view((cross_shape, cross_k_in)).map_err(fail("whisper decoder input"))?;
        let cross_v = TensorRef::from_array_view((cross_shape, cross_v_in)).map_err(fail("whisper decoder input"))?;
        let offset_t = Tensor::from_array(([1usize], vec![offset as i64])).map_err(fail("whisper decoder input"))?;
        let mut session = self.decoder.lock().unwrap_or_else(|p| p.into_inner());
        let out = session
            .run(ort::inputs![
                "tokens" => tokens_t,
                "in_n_layer_self_k_cache" => k_cache,
                "in_n_layer_self_v_cache" => v_cache,
                "n_layer_cross_k" => cross_k,
                "n_layer_cross_v" => cross_v,
                "offset" => offset_t,
            ])
            .map_err(fail("whisper decoder"))?;
        let (lshape, logits) = out["logits"].try_extract_tensor::<f32>().map_err(fail("whisper decoder output"))?;
        let (kshape, k) =
            out["out_n_layer_self_k_cache"].try_extract_tensor::<f32>().map_err(fail("whisper decoder output"))?;
        let (_, v) =
            out["out_n_layer_self_v_cache"].try_extract_tensor::<f32>().map_err(fail("whisper decoder output"))?;
        let vocab = lshape.get(2).copied().unwrap_or(0) as usize;
        // Token ids index these rows everywhere: the size must be the model's.
        if lshape.len() != 3 || vocab != m.n_vocab || logits.len() != batch * n * vocab {
            return Err(RecognitionError::Shape {
                stage: "whisper decoder",
                what: format!("unexpected logits shape {lshape:?}"),
            }
            .into());
        }
        if k.len() != layers * batch * ctx * state || v.len() != k.len() {
            return Err(RecognitionError::Shape {
                stage: "whisper decoder",
                what: format!("unexpected cache shape {kshape:?}"),
            }
            .into());
        }
        Ok((
            Logits { data: logits.to_vec(), batch, tokens: n, vocab },
            KvCache { k: k.to_vec(), v: v.to_vec(), batch, ctx },
        ))
    }
}

/// Intra-op threads of the shared decoder session: one per core, at most 4.
pub fn decoder_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Loads the decoder with its graph rewritten for speed; when the graph is
/// not the shape the rewrite expects, the original graph (slower; scores
/// differ only by the 8-bit output projection).
fn load_decoder(path: &Path, meta: &ModelMeta, graph: DecoderGraph) -> Result<(Session, bool), AsrError> {
    if graph == DecoderGraph::Original {
        return Ok((crate::asr::runtime::session(path)?, false));
    }
    crate::asr::models::require(path)?;
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
    let shape =
        super::graph::DecoderShape { n_vocab: meta.n_vocab, n_state: meta.n_text_state, n_text_ctx: meta.n_text_ctx };
    match super::graph::rewrite_decoder(&bytes, &shape) {
        Ok(rewritten) => {
            drop(bytes);
            Ok((crate::asr::runtime::session_from_memory(&rewritten, path, decoder_threads())?, true))
        }
        Err(why) => {
            tracing::warn!(model = %path.display(), %why, "decoder graph not rewritten; decoding will be slower");
            Ok((crate::asr::runtime::session(path)?, false))
        }
    }
}

/// `[rows][from][state]` → `[rows][to][state]`, new positions zero.
fn grow(src: &[f32], rows: usize, from: usize, to: usize, state: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * to * state];
    for r in 0..rows {
        out[r * to * state..(r * to + from) * state].copy_from_slice(&src[r * from * state..(r + 1) * from * state]);
    }
    out
}

/// `log_softmax(row)[id]` for several ids at once.
pub fn log_softmax_at(row: &[f32], ids: &[u32]) -> Vec<f32> {
    let lse = log_sum_exp(row);
    ids.iter().map(|&i| row.get(i as usize).map_or(f32::NEG_INFINITY, |x| x - lse)).collect()
}

/// `log(Σ exp(x))`. Every scored position normalises a row of 51 864
/// logits, so this runs millions of times per utterance: it works in
/// fixed-width lanes the compiler turns into SIMD, with a polynomial `exp`
/// (libm's works one value at a time and took ~0.2 ms a row).
pub fn log_sum_exp(xs: &[f32]) -> f32 {
    let chunks = xs.chunks_exact(LANES);
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    for c in chunks.clone() {
        for (m, &x) in lane_max.iter_mut().zip(c) {
            *m = m.max(x);
        }
    }
    let max = chunks.remainder().iter().chain(&lane_max).copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let mut lane_sum = [0.0f32; LANES];
    for c in chunks.clone() {
        for (s, &x) in lane_sum.iter_mut().zip(c) {
            *s += fast_exp(x - max);
        }
    }
    let sum: f32 = lane_sum.iter().sum::<f32>() + chunks.remainder().iter().map(|&x| fast_exp(x - max)).sum::<f32>();
    max + sum.ln()
}

/// Lanes of [`log_sum_exp`]: two AVX registers, four SSE ones.
const LANES: usize = 8;

/// `exp(x)` for `x ≤ 0` within 2e-7 relative error (Cephes' expf
/// polynomial): `2^n · exp(r)` with `n = round(x / ln 2)`. Inputs below -87
/// give `exp(-87)` (~1e-38), which is nothing next to the row's maximum,
/// whose term is 1.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    // Adding 1.5 · 2^23 rounds to an integer, which the sum's low mantissa
    // bits then hold: integer ops on those bits stay in SIMD lanes, where
    // `as i32` (saturating) would not.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5e-1;
    let exp_r = p * r * r + r + 1.0;
    // 2^n: the exponent field n + 127 (ROUND's own bits are 0x4B40_0000).
    exp_r * f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23)
}

#[cfg(test)]
mod tests {
    use super::log_sum_exp;

    fn exact(xs: &[f32]) -> f64 {
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        max + xs.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln()
    }

    #[test]
    fn log_sum_exp_matches_the_exact_sum_on_logit_rows() {
        // A row shaped like Whisper's: a vocabulary of logits spread over
        // ~30 nats, one clear winner, and rows of odd lengths.
        let mut state = 12345u32;
        for len in [1usize, 2, 7, 8, 9, 1000, 51_864] {
            let row: Vec<f32> = (0..len)
                .map(|i| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 8) as f32 / (1u32 << 24) as f32 * 30.0 - 20.0 + if i == len / 2 { 12.0 } else { 0.0 }
                })
                .collect();
            let got = log_sum_exp(&row) as f64;
            assert!((got - exact(&row)).abs() < 1e-4, "len {len}: {got} vs {}", exact(&row));
        }
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), f32::NEG_INFINITY);
        assert!((log_sum_exp(&[f32::NEG_INFINITY, -3.5]) + 3.5).abs() < 1e-6);
        assert!((log_sum_exp(&[0.0, 0.0]) - std::f32::consts::LN_2).abs() < 1e-6);
        assert!(log_sum_exp(&[]).is_infinite());
    }
}
