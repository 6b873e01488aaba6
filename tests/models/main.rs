//! The speech models on real recordings: voice detection, recognition and its
//! accuracy, prompts, transcription and replayed calls (no live server).
mod endpointing;
mod grammar;
mod language;
mod pauses;
mod prompts;
mod replay_paths;
mod sentences;
mod slots_replay;
mod transcribe;
mod whisper_base;
