//! Whether the server should be given calls yet: `GET /readyz` and the
//! "ready" log line.
//!
//! A server that takes calls before its voice is loaded and its prompts are
//! rendered gives its first callers seconds of silence; one that is
//! stopping should get no new calls. Each start-up step sets its own field;
//! a new condition is a new field plus a line in [`Readiness::blocker`].
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Readiness {
    /// Speech models (voice detector, recogniser) loaded.
    pub models_loaded: bool,
    /// Dialplans in service.
    pub dialplans: usize,
    /// The recogniser readied for every grammar of the dialplans in service.
    pub recognizer_ready: bool,
    /// The TTS voice loaded (when it can be) and every static prompt
    /// rendered at the listeners' rates.
    pub prompts_rendered: bool,
    /// Prompts that could not be rendered at the last pass (each logged);
    /// callers hear nothing where they play.
    pub prompts_failed: usize,
    /// Stopping after SIGTERM: calls in progress finish, new ones are refused.
    pub draining: bool,
}

/// A PBX control connection (FreeSWITCH's event socket) as `/readyz`
/// shows it. There is one only when a listener needs it, and while it is
/// down that listener's calls cannot be greeted (prompts go over it), so
/// the server answers "not ready" and a balancer sends calls elsewhere;
/// the other listeners keep serving the calls they are sent.
#[derive(Debug, Clone, Serialize)]
pub struct ControlState {
    pub name: &'static str,
    pub addr: String,
    pub connected: bool,
}

impl Readiness {
    /// Why the server should not get calls now; `None` when it should.
    pub fn blocker(&self) -> Option<&'static str> {
        if self.draining {
            Some("draining: the server is stopping")
        } else if !self.models_loaded {
            Some("loading the speech models")
        } else if self.dialplans == 0 {
            Some("no dialplan in service")
        } else if !self.recognizer_ready {
            Some("readying the recogniser")
        } else if !self.prompts_rendered {
            Some("loading the voice and rendering prompts")
        } else {
            None
        }
    }

    /// The answer to `GET /readyz`: its status line and a small JSON body,
    /// `{"ready":true,...}` or `{"ready":false,"reason":"...",...}`.
    pub fn http_answer(&self, controls: &[ControlState]) -> (&'static str, String) {
        let reason = self.blocker().map(str::to_string).or_else(|| control_down(controls));
        let status = if reason.is_some() { "503 Service Unavailable" } else { "200 OK" };
        let body =
            serde_json::json!({ "ready": reason.is_none(), "reason": reason, "checks": self, "control": controls });
        (status, format!("{body}\n"))
    }
}

/// Why the calls of a listener cannot be served: its control connection is down.
fn control_down(controls: &[ControlState]) -> Option<String> {
    let down = controls.iter().find(|c| !c.connected)?;
    let what = match down.name {
        "esl" => "the FreeSWITCH event socket",
        other => other,
    };
    Some(format!("{what} ({} at {}) is not connected: FreeSWITCH calls cannot be greeted", down.name, down.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_step_is_done_and_not_while_draining() {
        let mut r = Readiness { models_loaded: true, dialplans: 1, recognizer_ready: true, ..Readiness::default() };
        let (status, body) = r.http_answer(&[]);
        assert!(status.starts_with("503") && body.contains("rendering prompts"), "{status} {body}");
        r.prompts_rendered = true;
        let (status, body) = r.http_answer(&[]);
        assert_eq!(status, "200 OK");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["ready"], true);
        let esl = ControlState { name: "esl", addr: "127.0.0.1:8021".into(), connected: false };
        let (status, body) = r.http_answer(std::slice::from_ref(&esl));
        assert!(status.starts_with("503"), "a listener's event socket down: its calls cannot be greeted");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["control"][0]["connected"], false, "{body}");
        assert!(body["reason"].as_str().unwrap().contains("event socket (esl at 127.0.0.1:8021)"), "{body}");
        let up = ControlState { connected: true, ..esl };
        assert_eq!(r.http_answer(std::slice::from_ref(&up)).0, "200 OK", "event socket up: ready");
        r.draining = true;
        assert!(r.http_answer(&[]).0.starts_with("503") && r.http_answer(&[]).1.contains("draining"));
    }
}
