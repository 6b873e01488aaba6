use super::*;

fn block(lines: &[(&str, &str)]) -> AmiMessage {
    AmiMessage { headers: lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
}

#[test]
fn the_channel_is_found_by_its_variable_line() {
    let events = vec![
        block(&[("Event", "Status"), ("Channel", "PJSIP/100-00000001"), ("Variable", "AS_ID=")]),
        block(&[
            ("Event", "Status"),
            ("Channel", "PJSIP/200-00000002"),
            ("Variable", "OTHER=x"),
            ("Variable", "AS_ID=4040-1"),
        ]),
        block(&[("Event", "Status"), ("Channel", "PJSIP/300-00000003"), ("Variable", "AS_ID=4040-12")]),
    ];
    assert_eq!(caller_channel_with_variable(&events, "AS_ID", "4040-1").as_deref(), Some("PJSIP/200-00000002"));
    assert_eq!(caller_channel_with_variable(&events, "AS_ID", "4040-12").as_deref(), Some("PJSIP/300-00000003"));
    assert_eq!(caller_channel_with_variable(&events, "AS_ID", "4040"), None, "whole values only");
    assert_eq!(caller_channel_with_variable(&events, "OTHER", "4040-1"), None);
}

#[test]
fn an_inherited_variable_on_the_audiosocket_channel_does_not_count() {
    let events = vec![
        block(&[("Event", "Status"), ("Channel", "AudioSocket/10.0.0.20:9093-00000001"), ("Variable", "AS_ID=u-1")]),
        block(&[("Event", "Status"), ("Channel", "PJSIP/1001-0000002a"), ("Variable", "AS_ID=u-1")]),
    ];
    assert_eq!(caller_channel_with_variable(&events, "AS_ID", "u-1").as_deref(), Some("PJSIP/1001-0000002a"));
    assert_eq!(caller_channel_with_variable(&events[..1], "AS_ID", "u-1"), None, "only the AudioSocket leg: no caller");
}

#[test]
fn landing_is_told_by_newexten_or_hangup_of_that_channel() {
    let newexten = |ch: &str, ctx: &str, ext: &str| {
        block(&[("Event", "Newexten"), ("Channel", ch), ("Context", ctx), ("Exten", ext), ("Priority", "1")])
    };
    let caller = "Local/s@caller-sim-00000003;1";
    assert_eq!(landing_of(&newexten(caller, "agents", "101"), caller, "agents", "101"), Some(Landing::Arrived));
    assert_eq!(
        landing_of(&newexten(caller, "agents", "i"), caller, "agents", "101"),
        Some(Landing::Elsewhere { context: "agents".into(), exten: "i".into() })
    );
    assert_eq!(landing_of(&newexten("PJSIP/9-1", "agents", "101"), caller, "agents", "101"), None, "another channel");
    assert_eq!(landing_of(&newexten(caller, "hotline", "s"), caller, "agents", "101"), None, "not yet at the target");
    let hangup = block(&[("Event", "Hangup"), ("Channel", caller), ("Cause", "16"), ("Cause-txt", "Normal Clearing")]);
    assert_eq!(
        landing_of(&hangup, caller, "agents", "101"),
        Some(Landing::HungUp { cause: "cause 16: Normal Clearing".into() })
    );
    assert_eq!(Landing::Arrived.result_text(), "ok");
    assert!(Landing::Unconfirmed.result_text().starts_with("unconfirmed"));
}

#[test]
fn status_asks_for_the_variables() {
    let a = AmiAction::status_with_variables(&["AS_ID"]);
    assert_eq!(a.name, "Status");
    assert_eq!(a.headers, vec![("Variables".to_string(), "AS_ID".to_string())]);
}
