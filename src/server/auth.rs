//! Who may use a websocket listener. Without `[auth]` anyone who can reach
//! the port may (listen on loopback then). With `[auth]`, every request to
//! every websocket listener — upgrade or plain HTTP — must carry one of:
//!
//! - basic auth with `[auth] username` / `password` (Asterisk's
//!   `websocket_client.conf`, mod_audio_fork's `MOD_AUDIO_BASIC_AUTH_*`
//!   channel variables, `CURL()` with `user:password@`);
//! - the query parameter `token=` equal to `[auth] token`, for a PBX that
//!   can only be given a URL (mod_audio_stream);
//! - on a listener with a public `url`, Twilio's `X-Twilio-Signature` made
//!   with `[auth] twilio_auth_token`.
//!
//! Secrets are compared in constant time and never logged. AudioSocket
//! carries no credentials; its listener admits only the source addresses of
//! its `allow` list (see `server::accept`).
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::http::{authorized, RequestHead};
use crate::config::ServerConfig;

/// The query parameter that carries `[auth] token`.
pub const TOKEN_PARAMETER: &str = "token";
/// Twilio's request signature header.
pub const TWILIO_SIGNATURE: &str = "X-Twilio-Signature";

/// Whether `head` carries credentials `[auth]` accepts on a listener whose
/// public URL (for Twilio's signature) is `public_url`.
pub fn admitted(cfg: &ServerConfig, public_url: Option<&str>, head: &RequestHead) -> bool {
    let Some(basic) = cfg.auth.as_ref() else { return true };
    if authorized(Some(basic), head.header("Authorization")) {
        return true;
    }
    if let (Some(token), Some(given)) = (cfg.auth_token.as_ref(), head.query(TOKEN_PARAMETER)) {
        if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            return true;
        }
    }
    if let (Some(key), Some(url), Some(signature)) =
        (cfg.twilio_auth_token.as_ref(), public_url, head.header(TWILIO_SIGNATURE))
    {
        return twilio_signature_valid(key.expose(), url, &[], signature);
    }
    false
}

/// Twilio's request signature: base64 of HMAC-SHA1, keyed with the
/// account's auth token, over the URL Twilio requested followed by each
/// POST parameter's name and value, sorted by name (a websocket upgrade
/// has none). Compared in constant time.
pub fn twilio_signature_valid(auth_token: &str, url: &str, params: &[(&str, &str)], signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    twilio_mac(auth_token, url, params).verify_slice(&given).is_ok()
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(&str, &str)]) -> hmac::Hmac<sha1::Sha1> {
    // HMAC takes a key of any length.
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    let mut sorted = params.to_vec();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature Twilio would send (for the tests).
#[cfg(test)]
fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    base64::engine::general_purpose::STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_signature_matches_the_documented_example() {
        // The example of Twilio's request-validation documentation.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        assert_eq!(twilio_signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(twilio_signature_valid("12345", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!twilio_signature_valid("12346", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!twilio_signature_valid(
            "12345",
            "https://mycompany.com/myapp.php",
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!twilio_signature_valid("12345", url, &params, "not base64!"));
    }
}
