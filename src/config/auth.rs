//! `[auth]`: the credentials every websocket listener asks for. The
//! secrets may come from the environment and are never echoed in a
//! problem, only their key and position.
use super::problems::Problems;
use super::raw::RawAuth;
use super::{BasicAuth, Env, ENV_AUTH_PASSWORD, ENV_AUTH_TOKEN, ENV_TWILIO_AUTH_TOKEN, MIN_TOKEN_CHARS};
use crate::pbx::ami::Secret;

#[derive(Default)]
pub(super) struct Auth {
    pub basic: Option<BasicAuth>,
    pub token: Option<Secret>,
    pub twilio_auth_token: Option<Secret>,
}

pub(super) fn validate(raw: Option<&RawAuth>, env: Env, problems: &mut Problems) -> Auth {
    let Some(a) = raw else { return Auth::default() };
    let username = a.username.as_ref().map(|u| u.value.clone()).unwrap_or_default();
    if username.is_empty() || username.contains(':') {
        let span = a.username.as_ref().map_or(&a.span, |u| &u.span);
        problems.field(span, "auth.username", "must be non-empty and contain no ':'");
    }
    let from_env = |var: &str| env(var).filter(|s| !s.is_empty());
    let password =
        from_env(ENV_AUTH_PASSWORD).or_else(|| a.password.as_ref().map(|p| p.value.clone())).unwrap_or_default();
    if password.is_empty() {
        let span = a.password.as_ref().map_or(&a.span, |p| &p.span);
        problems.field(span, "auth.password", format!("is required (or set {ENV_AUTH_PASSWORD})"));
    }
    // A token from the environment is checked too; its problem points at
    // the section, as the file holds no value for it.
    let (token, token_span) = match from_env(ENV_AUTH_TOKEN) {
        Some(t) => (Some(t), &a.span),
        None => (a.token.as_ref().map(|t| t.value.clone()), a.token.as_ref().map_or(&a.span, |t| &t.span)),
    };
    if token.as_deref().is_some_and(|t| !usable_in_a_url(t)) {
        problems.field(
            token_span,
            "auth.token",
            format!(
                "must be at least {MIN_TOKEN_CHARS} characters of A-Z a-z 0-9 - . _ ~ (it goes in a URL unencoded)"
            ),
        );
    }
    let twilio_auth_token = from_env(ENV_TWILIO_AUTH_TOKEN)
        .or_else(|| a.twilio_auth_token.as_ref().map(|t| t.value.clone()))
        .filter(|s| !s.is_empty());
    Auth {
        basic: Some(BasicAuth { username, password: Secret::new(password) }),
        token: token.map(Secret::new),
        twilio_auth_token: twilio_auth_token.map(Secret::new),
    }
}

/// Long enough not to be guessed, and only characters a URL carries as
/// they are (the token goes in `?token=` without encoding).
fn usable_in_a_url(token: &str) -> bool {
    token.chars().count() >= MIN_TOKEN_CHARS && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}
