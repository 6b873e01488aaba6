//! The dialplan's `language`: which language callers speak, checked
//! against the codes Whisper knows and, when `hotline check` knows it,
//! against the recogniser the server runs (`[recognizer] model`).
use super::diagnostic::{closest, Reporter};
use super::raw::At;
use crate::asr::language::{Language, WHISPER_LANGUAGES};
use crate::asr::models::WhisperModelName;

/// What admins write instead of a code, and the code they mean: language
/// names, country codes, locale tags of the language's usual region.
const MISTAKES: &[(&str, &str)] = &[
    ("english", "en"),
    ("chinese", "zh"),
    ("mandarin", "zh"),
    ("cmn", "zh"),
    ("cn", "zh"),
    ("zho", "zh"),
    ("chi", "zh"),
    ("german", "de"),
    ("spanish", "es"),
    ("french", "fr"),
    ("japanese", "ja"),
    ("jp", "ja"),
    ("korean", "ko"),
    ("kr", "ko"),
    ("gr", "el"),
    ("dk", "da"),
    ("se", "sv"),
    ("ua", "uk"),
    ("cz", "cs"),
    ("eng", "en"),
];

/// The dialplan's language (English when it names none); an unknown code,
/// or a language the English-only model cannot hear, is an error at the
/// `language` value.
pub fn language(raw: Option<&At<String>>, model: Option<WhisperModelName>, rep: &mut Reporter) -> Language {
    let Some(raw) = raw else { return Language::default() };
    let language = match Language::from_code(&raw.value) {
        Ok(l) => l,
        Err(_) => {
            let help = suggestion(&raw.value).map_or_else(
                || "use an ISO 639-1 code Whisper knows, such as \"en\", \"zh\", \"de\", \"es\"".to_string(),
                |code| format!("did you mean `{code}`?"),
            );
            rep.error(&raw.span, format!("unknown language `{}`", raw.value), Some(help));
            return Language::default();
        }
    };
    if model == Some(WhisperModelName::TinyEn) && !language.is_english() {
        rep.error(
            &raw.span,
            format!(
                "language `{language}` needs a multilingual recogniser, but `[recognizer] model` is `{}`, which hears English only",
                WhisperModelName::TinyEn
            ),
            Some(format!("set `[recognizer] model = \"{}\"` in the server configuration", WhisperModelName::Base)),
        );
    }
    language
}

/// The code a mistaken `language` value most likely means.
fn suggestion(written: &str) -> Option<&'static str> {
    let lower = written.trim().to_ascii_lowercase();
    if let Some((_, code)) = MISTAKES.iter().find(|(m, _)| *m == lower) {
        return Some(code);
    }
    // A locale tag: "zh-CN", "en_US", "pt-BR".
    if let Some((lang, _)) = lower.split_once(['-', '_']) {
        if let Ok(l) = Language::from_code(lang) {
            return Some(l.code());
        }
        return suggestion(lang);
    }
    closest(&lower, WHISPER_LANGUAGES.iter().copied().filter(|c| c.len() == lower.len()))
}

#[cfg(test)]
mod tests {
    use super::suggestion;
    use crate::asr::models::WhisperModelName;
    use crate::asr::Language;

    const EXAMPLE: &str = "dialplans/examples/mandarin.toml";

    #[test]
    fn the_mandarin_example_declares_its_language_and_fills_slots_from_mandarin_numbers() {
        let plan = crate::dialplan::load(std::path::Path::new(EXAMPLE)).expect("the example is valid");
        assert_eq!(plan.language, Language::from_code("zh").unwrap());
        let grammar = crate::call::grammar_at(&plan, "main", None).unwrap();
        assert_eq!(grammar.language.code(), "zh", "the menu's grammar carries the language to the recogniser");
        let uses = &plan.menus["main"].options.iter().find(|o| o.intent == "top_up").unwrap().slots.uses;
        for (sentence, amount) in [("我想充值五十元", "50"), ("充值一百块", "100"), ("充值两百", "200")]
        {
            assert_eq!(
                crate::call::slot_values(sentence, uses),
                [("amount".to_string(), amount.to_string())],
                "{sentence:?}"
            );
        }
    }

    #[test]
    fn mandarin_on_the_english_only_model_is_an_error_at_the_language() {
        let path = std::path::Path::new(EXAMPLE);
        let check = |model| {
            let opts = crate::dialplan::CheckOptions { tts_unavailable: None, recognizer_model: Some(model) };
            crate::dialplan::check_paths(&[path.to_path_buf()], &opts).files.remove(0).diagnostics
        };
        let errors: Vec<_> = check(WhisperModelName::TinyEn).into_iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let message = errors[0].to_string();
        assert!(message.contains("[recognizer] model") && message.contains("whisper-base"), "{message}");
        assert!(check(WhisperModelName::Base).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn mistaken_codes_get_the_code_meant() {
        assert_eq!(suggestion("cn"), Some("zh"));
        assert_eq!(suggestion("Mandarin"), Some("zh"));
        assert_eq!(suggestion("zh-CN"), Some("zh"));
        assert_eq!(suggestion("en_US"), Some("en"));
        assert_eq!(suggestion("jp"), Some("ja"));
    }
}
