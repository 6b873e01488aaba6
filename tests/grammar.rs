//! Grammar-constrained recognition on real recordings.
use std::sync::OnceLock;

use hotline::asr::models::ModelPaths;
use hotline::asr::whisper::mel::MelFrontend;
use hotline::asr::whisper::{GrammarOptions, GrammarWhisper};
use hotline::asr::{Grammar, GrammarChoice, Recognizer};
use hotline::bench::data;

fn model() -> &'static GrammarWhisper {
    static M: OnceLock<GrammarWhisper> = OnceLock::new();
    M.get_or_init(|| GrammarWhisper::load(&ModelPaths::default_location(), GrammarOptions::default()).expect("model loads"))
}

fn menu(words: &[&str]) -> Grammar {
    Grammar {
        choices: words.iter().map(|w| GrammarChoice { label: w.to_string(), phrases: vec![w.to_string()] }).collect(),
        digits: None,
    }
}

#[test]
fn explore() {
    let td = data::default_testdata();
    let m = model();
    let words: Vec<&str> = data::COMMAND_WORDS.iter().chain(data::DIGIT_WORDS.iter()).copied().collect();
    let g = menu(&words);
    let clips = data::speech_commands_phone(&td, 10).unwrap();
    let mut ok = 0;
    for c in &clips {
        let d = m.recognize_detailed(&c.samples, &g).unwrap();
        let good = d.recognition.choice.as_deref() == Some(c.truth.as_str());
        ok += good as usize;
        println!("{} {} -> {:?} best {:?} open {:?} {:.2} ns {:.2} {}ms", if good {"OK "} else {"BAD"}, c.truth, d.recognition.choice, d.best, d.open.text, d.open.first_phrase_logprob(m.end_tokens()), d.open.no_speech_prob, d.recognition.decode_ms);
    }
    println!("commands {ok}/{}", clips.len());
    let clips = data::fsdd_test(&td, 1).unwrap();
    let g = Grammar { choices: vec![], digits: Some((1, 1)) };
    let mut ok = 0;
    for c in &clips {
        let d = m.recognize_detailed(&c.samples, &g).unwrap();
        let got = d.recognition.choice.as_deref().map(data::normalise);
        let good = got.as_deref() == Some(c.truth.as_str());
        ok += good as usize;
        println!("{} {} -> {:?} best {:?} open {:?} {:.2} ns {:.2} {}ms", if good {"OK "} else {"BAD"}, c.truth, d.recognition.choice, d.best, d.open.text, d.open.first_phrase_logprob(m.end_tokens()), d.open.no_speech_prob, d.recognition.decode_ms);
    }
    println!("fsdd {ok}/{}", clips.len());
}

#[test]
fn timing() {
    use hotline::asr::whisper::{decode, score::CompiledChoices};
    use std::time::Instant;
    let td = data::default_testdata();
    let m = model();
    let words: Vec<&str> = data::COMMAND_WORDS.iter().chain(data::DIGIT_WORDS.iter()).copied().collect();
    let g = menu(&words);
    let clips = data::speech_commands_phone(&td, 100).unwrap();
    let c = &clips[0];
    for _ in 0..2 {
        let t = Instant::now();
        let mel = m.features(&c.samples);
        let t_mel = t.elapsed();
        let audio = m.model().encode(&mel).unwrap();
        let t_enc = t.elapsed();
        let p = decode::prefix(m.model(), &audio).unwrap();
        let t_pre = t.elapsed();
        let o = decode::open_greedy(m.model(), &audio, &p, 100).unwrap();
        let t_open = t.elapsed();
        let cc = CompiledChoices::new(m.model(), &g.choices).unwrap();
        let s = cc.score(m.model(), &audio, &p, m.end_tokens()).unwrap();
        let t_score = t.elapsed();
        let one = m.model().select_rows(&p.cache, &[0; 16]);
        let t_sel = t.elapsed();
        let _ = m.model().decode(&audio, &vec![220u32; 16], &one, 2).unwrap();
        let t_dec16 = t.elapsed();
        println!("mel {:?} enc {:?} prefix {:?} open {:?} ({} tok) score {:?} ({} forms) select16 {:?} dec16 {:?}", t_mel, t_enc - t_mel, t_pre - t_enc, t_open - t_pre, o.tokens.len(), t_score - t_open, cc.form_count(), t_sel - t_score, t_dec16 - t_sel);
        let _ = s;
    }
}
