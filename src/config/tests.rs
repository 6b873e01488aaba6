//! The server config: defaults, every section checked, every problem named with its place.
use super::*;

fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    ServerConfig::from_toml_str(text, None, &|_| None)
}

/// hotline.example.toml says its values are the defaults unless noted;
/// the noted ones are the `[ami]` section and the transfer method it
/// selects. Everything else must parse to exactly what no file gives.
#[test]
fn the_example_config_shows_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut example = ServerConfig::from_toml_str(&text, Some(&path), &|_| None).unwrap();
    let defaults = ServerConfig::from_toml_str("", Some(&path), &|_| None).unwrap();
    assert!(example.ami.is_some() && example.transfer.method == TransferMethod::Ami);
    example.ami = defaults.ami.clone();
    example.transfer.method = defaults.transfer.method;
    assert_eq!(format!("{example:#?}"), format!("{defaults:#?}"));
}

#[test]
fn recognizer_strictness_is_configurable_and_checked() {
    let d = parse("").unwrap();
    assert_eq!(d.grammar.min_evidence, crate::asr::whisper::GrammarOptions::default().min_evidence);
    assert_eq!(d.grammar.noisy_evidence, crate::asr::whisper::GrammarOptions::default().noisy_evidence);
    let c = parse("[recognizer]\nmin_evidence = 4.5\nnoisy_evidence = 1.5\nprior_correction = 0\n").unwrap();
    assert_eq!((c.grammar.min_evidence, c.grammar.noisy_evidence, c.grammar.max_prior_correction), (4.5, 1.5, 0.0));
    let e =
        parse("[recognizer]\nmin_evidence = 30\nnoisy_evidence = -2\nprior_correction = -1\n").unwrap_err().to_string();
    for field in ["recognizer.min_evidence", "recognizer.noisy_evidence", "recognizer.prior_correction"] {
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn recognizer_model_and_context_are_configurable_and_checked() {
    use crate::asr::models::WhisperModelName;
    use crate::asr::whisper::Padding;
    let d = parse("").unwrap();
    assert_eq!(d.recognizer_model, WhisperModelName::TinyEn);
    let c = parse("[recognizer]\nmodel = \"whisper-base\"\ncontext_ms = 4000\n").unwrap();
    assert_eq!(c.recognizer_model, WhisperModelName::Base);
    assert_eq!(c.grammar.padding, Padding::Utterance { margin_ms: 4000 });
    let e = parse("[recognizer]\nmodel = \"whisper-large\"\ncontext_ms = 40000\n").unwrap_err().to_string();
    assert!(e.contains("recognizer.model") && e.contains("\"whisper-tiny.en\" | \"whisper-base\""), "{e}");
    assert!(e.contains("recognizer.context_ms"), "{e}");
}

#[test]
fn second_pass_is_base_after_tiny_unless_configured_and_checked() {
    use crate::asr::whisper::Padding;
    // By default Whisper base hears tiny.en's unsure answers again, with
    // 4 s of context; there is none after base itself, and "none" is off.
    let default = parse("").unwrap().second_pass.expect("on by default");
    let model = default.model.expect("another model");
    assert!(model.models.whisper_encoder.ends_with("whisper-base/base-encoder.int8.onnx"));
    assert_eq!(
        (model.grammar.padding, default.clear, default.speed),
        (Padding::Utterance { margin_ms: 4000 }, 0.85, 1.0)
    );
    assert!(parse("[recognizer]\nmodel = \"whisper-base\"\n").unwrap().second_pass.is_none());
    assert!(parse("[recognizer]\nsecond_model = \"none\"\n").unwrap().second_pass.is_none());
    let c =
        parse("[recognizer]\nsecond_model = \"whisper-base\"\nsecond_context_ms = 3000\nmin_evidence = 4\n").unwrap();
    let second = c.second_pass.expect("second pass configured");
    let model = second.model.expect("another model");
    assert!(model.models.whisper_encoder.ends_with("whisper-base/base-encoder.int8.onnx"));
    assert_eq!(
        (model.grammar.padding, model.grammar.min_evidence, second.clear, second.speed),
        (Padding::Utterance { margin_ms: 3000 }, 4.0, 0.85, 1.0)
    );
    let e = parse("[recognizer]\nsecond_model = \"large\"\nsecond_accept = 1.5\nsecond_speed = 2\n")
        .unwrap_err()
        .to_string();
    for key in ["recognizer.second_model", "recognizer.second_accept", "recognizer.second_speed"] {
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn the_first_model_is_its_own_second_pass_only_at_another_speed() {
    // `second_speed` alone: the first model hears the utterance again, faster.
    let second = parse("[recognizer]\nsecond_speed = 1.1\n").unwrap().second_pass.expect("on");
    assert!(second.model.is_none(), "no second model in memory");
    assert_eq!(second.speed, 1.1);
    // Naming the first model is the same.
    let c = parse("[recognizer]\nsecond_model = \"whisper-tiny.en\"\nsecond_speed = 0.9\n").unwrap();
    assert!(c.second_pass.is_some_and(|s| s.model.is_none() && s.speed == 0.9));
    // The same model at the same speed would hear the same thing twice.
    let e = parse("[recognizer]\nsecond_model = \"whisper-tiny.en\"\n").unwrap_err().to_string();
    assert!(e.contains("recognizer.second_model") && e.contains("second_speed"), "{e}");
    // Its context is the first model's own.
    let e = parse("[recognizer]\nsecond_speed = 1.1\nsecond_context_ms = 3000\n").unwrap_err().to_string();
    assert!(e.contains("recognizer.second_context_ms") && e.contains("context_ms"), "{e}");
}

#[test]
fn endpointing_is_configurable_and_checked() {
    let c = parse("[endpointing]\nmin_silence_ms = 350\nthreshold = 0.6\nlistening_threshold = 0.3\npause_ms = 0\n")
        .unwrap();
    assert_eq!((c.endpoint.min_silence_ms, c.endpoint.threshold, c.endpoint.pause_ms), (350, 0.6, 0));
    assert_eq!(c.endpoint.listening_threshold, 0.3);
    assert!(c.endpoint.restart_when_listening, "on unless turned off");
    let off = parse("[endpointing]\nrestart_when_listening = false\n").unwrap();
    assert!(!off.endpoint.restart_when_listening);
    let e = parse("[endpointing]\nrestart_when_listening = \"no\"\n").unwrap_err().to_string();
    assert!(e.contains("restart_when_listening") && e.contains("true or false"), "{e}");
    let e = parse("[endpointing]\nlistening_threshold = 0\n").unwrap_err().to_string();
    assert!(e.contains("endpointing.listening_threshold"), "{e}");
    let e = parse("[endpointing]\nmin_silence_ms = 300\npause_ms = 300\n").unwrap_err().to_string();
    assert!(e.contains("endpointing.pause_ms"), "{e}");
    assert_eq!(c.endpoint.max_utterance_ms, crate::asr::EndpointConfig::default().max_utterance_ms);
    let e = parse("[endpointing]\nmin_silence_ms = 20\nthreshold = 1.5\nsilence = 3\n").unwrap_err().to_string();
    assert!(e.contains("silence"), "unknown key named: {e}");
    let e = parse("[endpointing]\nmin_silence_ms = 20\nthreshold = 1.5\n").unwrap_err().to_string();
    assert!(e.contains("endpointing.min_silence_ms") && e.contains("endpointing.threshold"), "{e}");
}

#[test]
fn defaults_listen_on_localhost_and_pick_a_working_transfer_method() {
    let c = parse("").unwrap();
    assert_eq!(c.general.listen.to_string(), "127.0.0.1:8088");
    assert_eq!(c.transfer.method, TransferMethod::Hangup, "no [ami]: the no-AMI method");
    assert!(c.auth.is_none() && c.general.keep_audio_dir.is_none());
    assert_eq!(c.general.call_records.as_deref(), Some(Path::new("calls.db")), "call records are kept by default");
    let e = parse("[transfer]\nmethod = \"ami\"").unwrap_err().to_string();
    assert!(e.contains("`transfer.method`") && e.contains("[ami]"), "{e}");
}

#[test]
fn call_records_are_kept_by_default_and_an_empty_path_turns_them_off() {
    let with_file =
        |text: &str| ServerConfig::from_toml_str(text, Some(Path::new("/etc/hotline/hotline.toml")), &|_| None);
    assert_eq!(with_file("").unwrap().general.call_records.as_deref(), Some(Path::new("/etc/hotline/calls.db")));
    assert_eq!(
        with_file("call_records = \"/var/log/c.jsonl\"").unwrap().general.call_records.as_deref(),
        Some(Path::new("/var/log/c.jsonl"))
    );
    assert_eq!(with_file("call_records = \"\"").unwrap().general.call_records, None);
    assert_eq!(with_file("").unwrap().general.records_keep_days, None, "every record is kept by default");
    assert_eq!(with_file("records_keep_days = 90").unwrap().general.records_keep_days, Some(90));
    let e = with_file("records_keep_days = 0").unwrap_err().to_string();
    assert!(e.contains("records_keep_days") && e.contains("1..="), "{e}");
}

#[test]
fn the_example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = ServerConfig::from_toml_str(&text, Some(&path), &|_| None).unwrap();
    assert_eq!(c.transfer.method, TransferMethod::Ami);
    assert!(c.ami.is_some());
}

#[test]
fn every_bad_field_is_named() {
    let e = parse(
        "listen = \"everywhere\"\nmax_calls = 0\n[transfer]\nmethod = \"pigeon\"\n[ami]\nport = 70000\n[auth]\nusername = \"a:b\"\n",
    )
    .unwrap_err();
    let all = e.to_string();
    for field in [
        "`listen`",
        "`max_calls`",
        "`transfer.method`",
        "`ami.port`",
        "`ami.username`",
        "`ami.secret`",
        "`auth.username`",
        "`auth.password`",
    ] {
        assert!(all.contains(field), "{field} missing in:\n{all}");
    }
}

#[test]
fn listeners_of_other_transports_with_their_control_channels() {
    let env = |k: &str| (k == ENV_ESL_PASSWORD).then(|| "ClueCon".to_string());
    let c = ServerConfig::from_toml_str(
        "[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nrate = 16000\n\
         [[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:9093\"\n\
         [esl]\naddress = \"127.0.0.1:8021\"\n[webhook]\nurl = \"http://127.0.0.1:8080/twilio/transfer\"\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(c.general.listen.to_string(), "127.0.0.1:8088", "chan_websocket stays the default listener");
    assert_eq!(
        c.listeners,
        vec![
            Listener {
                transport: Transport::AudioSocket,
                listen: "127.0.0.1:9092".parse().unwrap(),
                rate: Some(16_000),
                allow: vec![AddrRange::LOOPBACK_V4, AddrRange::LOOPBACK_V6],
                public_url: None,
            },
            Listener {
                transport: Transport::AudioFork,
                listen: "127.0.0.1:9093".parse().unwrap(),
                rate: None,
                allow: vec![AddrRange::ANY_V4, AddrRange::ANY_V6],
                public_url: None,
            },
        ]
    );
    assert_eq!(c.esl.as_ref().unwrap().addr, "127.0.0.1:8021");
    assert!(!format!("{c:?}").contains("ClueCon"));
    assert_eq!(c.webhook.as_ref().unwrap().url(), "http://127.0.0.1:8080/twilio/transfer");
}

#[test]
fn bad_listeners_name_their_field() {
    let e = parse(
        "[[listeners]]\ntransport = \"sip\"\nlisten = \"127.0.0.1:1\"\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"nowhere\"\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:2\"\nrate = 11025\n\
         [[listeners]]\ntransport = \"audio_stream\"\nlisten = \"127.0.0.1:3\"\n\
         [webhook]\nurl = \"ftp://x\"\n",
    )
    .unwrap_err()
    .to_string();
    for field in [
        "`listeners[0].transport`",
        "`listeners[1].listen`",
        "`listeners[2].rate`",
        "`listeners[3].transport`",
        "`webhook.url`",
    ] {
        assert!(e.contains(field), "{field} missing in:\n{e}");
    }
    assert!(e.contains("[esl]"), "{e}");
}

#[test]
fn listener_auth_keys_are_checked_and_named() {
    let env = |k: &str| match k {
        ENV_AUTH_TOKEN => Some("stream-token-0123456789".to_string()),
        ENV_TWILIO_AUTH_TOKEN => Some("twilio-secret".to_string()),
        _ => None,
    };
    let c = ServerConfig::from_toml_str(
        "[auth]\nusername = \"pbx\"\npassword = \"pw\"\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/24\", \"::1\"]\n\
         [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\nurl = \"wss://hotline.example.com/twilio\"\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(c.auth_token.as_ref().unwrap().expose(), "stream-token-0123456789");
    assert_eq!(c.twilio_auth_token.as_ref().unwrap().expose(), "twilio-secret");
    let dump = format!("{c:?}");
    assert!(!dump.contains("stream-token") && !dump.contains("twilio-secret"), "{dump}");
    let allow = &c.listeners[0].allow;
    assert!(allow[0].contains("10.0.0.77".parse().unwrap()) && !allow[0].contains("10.0.1.1".parse().unwrap()));
    assert!(allow[1].contains("::1".parse().unwrap()));
    assert_eq!(c.listeners[1].public_url.as_deref(), Some("wss://hotline.example.com/twilio"));

    let e = ServerConfig::from_toml_str(
        "[auth]\nusername = \"pbx\"\npassword = \"pw\"\ntoken = \"short\"\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/33\"]\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9093\"\nallow = []\n\
         [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\ntwilio = 1\n",
        None,
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("twilio"), "unknown key named: {e}");
    assert!(e.contains(":16:1: unknown field `twilio` in listeners[2]"), "the entry is named: {e}");
    let e = ServerConfig::from_toml_str(
        "[auth]\nusername = \"pbx\"\npassword = \"pw\"\ntoken = \"short\"\ntwilio_auth_token = \"t\"\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/33\"]\n\
         [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9093\"\nallow = []\n\
         [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\n",
        None,
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    for field in ["`auth.token`", "`listeners[0].allow`", "`listeners[1].allow`", "`listeners[2].url`"] {
        assert!(e.contains(field), "{field} missing in:\n{e}");
    }
    assert!(!e.contains("short"), "a secret in an error: {e}");
}

#[test]
fn audiosocket_accepts_only_loopback_by_default() {
    let c = parse("[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"0.0.0.0:9092\"\n").unwrap();
    let admitted = |ip: &str| c.listeners[0].allow.iter().any(|r| r.contains(ip.parse().unwrap()));
    assert!(admitted("127.0.0.1") && admitted("::1") && admitted("::ffff:127.0.0.1"));
    assert!(!admitted("10.0.0.5") && !admitted("192.168.1.1"));
}

#[test]
fn unknown_keys_are_reported_with_position() {
    let e = parse("listen = \"127.0.0.1:1\"\nmax_cals = 3\n").unwrap_err().to_string();
    assert!(e.contains(":2:1") && e.contains("max_cals"), "{e}");
}

#[test]
fn secrets_come_from_the_environment_and_are_never_printed() {
    let env = |k: &str| match k {
        ENV_AMI_SECRET => Some("ami-pw-123".to_string()),
        ENV_AUTH_PASSWORD => Some("ws-pw-456".to_string()),
        _ => None,
    };
    let c = ServerConfig::from_toml_str(
        "[ami]\nusername = \"hotline\"\nsecret = \"from-file\"\n[auth]\nusername = \"asterisk\"\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(c.ami.as_ref().unwrap().secret.expose(), "ami-pw-123", "environment wins over the file");
    assert_eq!(c.auth.as_ref().unwrap().password.expose(), "ws-pw-456");
    let dump = format!("{c:?}");
    assert!(!dump.contains("ami-pw-123") && !dump.contains("ws-pw-456"), "{dump}");
}

/// An admin who edits several sections at once learns of every mistake in
/// one run, each at the line and column of the value to fix, top-down.
#[test]
fn mistakes_in_three_sections_are_all_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:8088\"\n\
         max_calls = 0\n\
         [recognizer]\n\
         threads = 2\n\
         queue = \"many\"\n\
         [endpointing]\n\
         min_silence_ms = 500\n\
         threshold = 1.5\n\
         [[listeners]]\n\
         transport = \"sip\"\n\
         listen = \"127.0.0.1:9092\"\n",
    )
    .unwrap();
    let problems = ServerConfig::load(&path).unwrap_err().0;
    let found: Vec<(usize, usize, &str)> =
        problems.iter().map(|p| (p.line, p.col, p.message.split(':').next().unwrap_or_default())).collect();
    assert_eq!(
        found,
        vec![
            (2, 13, "`max_calls`"),
            (5, 9, "`recognizer.queue`"),
            (8, 13, "`endpointing.threshold`"),
            (10, 13, "`listeners[0].transport`"),
        ],
        "{problems:#?}"
    );
    assert!(problems.iter().all(|p| p.file == path.display().to_string()), "{problems:#?}");
    let printed = ServerConfig::load(&path).unwrap_err().to_string();
    assert!(
        printed.starts_with(&format!("{}:2:13: `max_calls`: 0 is out of range 1..=10000\n", path.display())),
        "{printed}"
    );
    assert!(printed.contains(":5:9: `recognizer.queue`: must be a whole number, found string"), "{printed}");
}

/// A mistyped key is named where it is written, with the key it most
/// likely meant, in whichever section it is.
#[test]
fn an_unknown_key_gets_a_suggestion() {
    let problems =
        parse("max_cals = 4\n[recognizer]\nthreds = 2\n[ami]\nusername = \"h\"\nsecret = \"s\"\nprot = 5038\n")
            .unwrap_err()
            .0;
    let found: Vec<(usize, usize, &str, Option<&str>)> =
        problems.iter().map(|p| (p.line, p.col, p.message.as_str(), p.help.as_deref())).collect();
    assert_eq!(
        found,
        vec![
            (1, 1, "unknown field `max_cals`", Some("did you mean `max_calls`?")),
            (3, 1, "unknown field `threds` in [recognizer]", Some("did you mean `threads`?")),
            (7, 1, "unknown field `prot` in [ami]", Some("did you mean `port`?")),
        ]
    );
    let printed = parse("[recognizer]\nthreds = 2\n").unwrap_err().to_string();
    assert_eq!(printed, "config:2:1: unknown field `threds` in [recognizer]\n  = help: did you mean `threads`?");
}

/// A key nothing resembles gets no guess: a wrong suggestion misleads.
#[test]
fn an_unknown_key_like_no_other_gets_no_suggestion() {
    let problems = parse("[webhook]\nurl = \"http://127.0.0.1:8080/t\"\nzzz = 1\n").unwrap_err().0;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].line, problems[0].col, problems[0].help.as_deref()), (3, 1, None));
}

/// Required keys of a section point at its header; a secret given only
/// through the environment is not asked for.
#[test]
fn a_missing_key_points_at_its_section() {
    let problems = parse("max_calls = 4\n\n[esl]\naddress = \"127.0.0.1:8021\"\n").unwrap_err().0;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].line, problems[0].col), (3, 2));
    assert!(problems[0].message.starts_with("`esl.password`: is required"), "{}", problems[0]);
    let env = |k: &str| (k == ENV_ESL_PASSWORD).then(|| "from-env".to_string());
    assert!(ServerConfig::from_toml_str("[esl]\naddress = \"127.0.0.1:8021\"\n", None, &env).is_ok());
}
