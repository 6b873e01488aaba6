//! The speech models on real recordings: voice detection, recognition and its
//! accuracy, prompts, transcription and replayed calls (no live server).
mod bench_intents;
mod endpointing;
mod grammar;
mod prompts;
mod replay_paths;
mod sentences;
mod transcribe;
mod whisper_base;
