//! The language callers speak, by the code Whisper knows it by.
//!
//! A dialplan names its language (`language = "zh"`); the recogniser puts
//! that language's token into the decoder prompt of every utterance of the
//! call. The token ids come from the model's own language list (its ONNX
//! metadata), never from here: this module only knows the codes, so that
//! `hotline check` can judge a dialplan without loading a model.

/// The languages of Whisper's multilingual models, in the models' order
/// (their metadata `all_language_codes`). ISO 639-1 codes, except Hawaiian
/// (`haw`, ISO 639-2), which has none.
pub const WHISPER_LANGUAGES: [&str; 99] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi",
    "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml",
    "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs",
    "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am",
    "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su",
];

/// A language Whisper knows; English unless a dialplan says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language(&'static str);

/// A code that is not one of [`WHISPER_LANGUAGES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language code {code:?}: Whisper knows ISO 639-1 codes such as \"en\", \"zh\", \"de\"")]
pub struct UnknownLanguage {
    pub code: String,
}

impl Language {
    pub const ENGLISH: Language = Language("en");

    /// The language of an ISO 639-1 code ("zh"); case and surrounding
    /// spaces are forgiven, as admins write "ZH" too.
    pub fn from_code(code: &str) -> Result<Language, UnknownLanguage> {
        let wanted = code.trim().to_ascii_lowercase();
        WHISPER_LANGUAGES
            .iter()
            .find(|c| **c == wanted)
            .map(|c| Language(c))
            .ok_or_else(|| UnknownLanguage { code: code.to_string() })
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    pub fn is_english(self) -> bool {
        self == Language::ENGLISH
    }

    /// What callers say for the digit `d` (0-9), as the recogniser listens
    /// for it: "three" in English (Whisper's "3" is one of its spellings),
    /// 三 and the numeral in Mandarin. `None` in the languages whose digit
    /// words hotline does not know yet, and for a `d` that is no digit.
    pub fn digit_words(self, d: usize) -> Option<Vec<String>> {
        use crate::asr::whisper::decode::{MANDARIN_DIGITS, NUMBER_WORDS};
        let english = NUMBER_WORDS.get(d)?;
        match self.0 {
            "en" => Some(vec![english.to_string()]),
            "zh" => Some(MANDARIN_DIGITS[d].iter().map(|w| w.to_string()).chain([d.to_string()]).collect()),
            _ => None,
        }
    }

    /// What callers say for the menu key `d` (0-9): its digit words, and
    /// in English the words callers frame a key with, as the prompt said
    /// it ("press three", "option three", "number three"). `None` where
    /// [`Language::digit_words`] is.
    pub fn key_phrases(self, d: usize) -> Option<Vec<String>> {
        const ENGLISH_FRAMES: [&str; 3] = ["press", "option", "number"];
        let words = self.digit_words(d)?;
        let frames: &[&str] = if self.is_english() { &ENGLISH_FRAMES } else { &[] };
        let framed: Vec<String> = frames.iter().flat_map(|f| words.iter().map(move |w| format!("{f} {w}"))).collect();
        Some(words.into_iter().chain(framed).collect())
    }
}

impl Default for Language {
    fn default() -> Self {
        Language::ENGLISH
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_whispers_and_nothing_else() {
        assert_eq!(Language::from_code("zh").map(Language::code), Ok("zh"));
        assert_eq!(Language::from_code(" ZH ").map(Language::code), Ok("zh"));
        assert_eq!(Language::default(), Language::ENGLISH);
        for bad in ["", "cn", "zh-CN", "english", "xx"] {
            assert!(Language::from_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digits_are_said_in_the_callers_language() {
        assert_eq!(Language::ENGLISH.digit_words(3), Some(vec!["three".to_string()]));
        let zh = Language::from_code("zh").unwrap();
        assert_eq!(zh.digit_words(2), Some(vec!["二".to_string(), "两".to_string(), "2".to_string()]));
        assert_eq!(Language::from_code("de").unwrap().digit_words(3), None);
        assert_eq!(Language::ENGLISH.digit_words(10), None);
    }

    #[test]
    fn keys_are_said_bare_or_framed_as_the_prompt_put_them() {
        assert_eq!(
            Language::ENGLISH.key_phrases(3),
            Some(["three", "press three", "option three", "number three"].map(String::from).to_vec())
        );
        let zh = Language::from_code("zh").unwrap();
        assert_eq!(zh.key_phrases(2), zh.digit_words(2), "no frames known in Mandarin yet");
        assert_eq!(Language::from_code("de").unwrap().key_phrases(3), None);
    }
}
