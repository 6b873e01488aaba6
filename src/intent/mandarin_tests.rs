//! Mandarin text through the matcher's pipeline: no spaces between words,
//! number words as said on the phone, phrases found inside sentences.
//! Text only: no Mandarin recordings are available, so these say nothing
//! about how well Whisper hears Mandarin.
use super::*;

fn billing_menu() -> Vec<Candidate> {
    let candidate = |intent: &str, phrases: &[&str]| Candidate {
        intent: intent.into(),
        phrases: phrases.iter().map(|p| p.to_string()).collect(),
    };
    vec![
        candidate("billing", &["账单", "查话费"]),
        candidate("support", &["技术支持", "网络故障"]),
        candidate("agent", &["人工", "客服"]),
    ]
}

#[test]
fn mandarin_normalises_to_one_token_per_character_without_fillers() {
    for (text, want) in [
        ("我想查一下账单。", "查 账 单"),
        ("请帮我转人工，谢谢！", "转 人 工"),
        ("嗯，技术支持", "技 术 支 持"),
        ("账单账单", "账 单"),
        ("我的号码是幺三八零零", "我 的 号 码 是 1 3 8 0 0"),
        ("二十三", "2 3"),
        ("４５１２", "4 5 1 2"),
        ("我要iPhone 15", "iphone 1 5"),
    ] {
        assert_eq!(normalize(text), want, "{text:?}");
    }
}

#[test]
fn mandarin_digits_and_numbers_are_read_as_callers_say_them() {
    for (text, want) in [
        ("幺三八零零一二三四", "138001234"),
        ("我的号码是幺三八，零零。", "13800"),
        ("两两五", "225"),
        ("二十三", "23"),
        ("十五", "15"),
        ("一百零五", "105"),
        ("分机三百零五", "305"),
        ("138", "138"),
    ] {
        assert_eq!(parse_digits(text).as_deref(), Some(want), "{text:?}");
    }
    for text in ["账单", "我想查一下账单", "十分感谢"] {
        assert_eq!(parse_digits(text), None, "{text:?}");
    }
}

#[test]
fn mandarin_phrase_is_found_inside_a_sentence_without_spaces() {
    let menu = billing_menu();
    let matcher = TextMatcher::default();
    for (text, intent) in [("我想查一下账单", "billing"), ("转人工", "agent"), ("我家网络故障了", "support")]
    {
        let best = matcher.match_intent(text, &menu).best.unwrap_or_else(|| panic!("{text:?}: no match"));
        assert_eq!(best.intent, intent, "{text:?}");
        // The dialplan default `accept`: found word for word, acted on.
        assert!(best.confidence >= 0.85, "{text:?}: {}", best.confidence);
    }
    // A character heard wrong costs that character, as a word does in
    // English: still the best option, but not acted on without asking.
    let slip = matcher.match_intent("帐单", &menu).best.expect("a slip still points somewhere");
    assert_eq!(slip.intent, "billing");
    assert!(slip.confidence < 0.85, "{}", slip.confidence);
    // Words of no option.
    let weather = matcher.match_intent("今天天气怎么样", &menu);
    assert!(weather.best.as_ref().is_none_or(|b| b.confidence < 0.35), "{weather:?}");
}

#[test]
fn mandarin_confirmations_are_yes_or_no() {
    for (text, want) in
        [("是的", Some(true)), ("对", Some(true)), ("没错。", Some(true)), ("不是", Some(false)), ("不对", Some(false))]
    {
        assert_eq!(parse_yes_no(text), want, "{text:?}");
    }
    assert_eq!(parse_yes_no("我想查账单"), None);
}
