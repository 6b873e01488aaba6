//! A fake Asterisk Manager Interface on loopback: speaks the AMI framing,
//! checks the login, records every action it receives and answers as
//! Asterisk 22 does:
//!
//! - `Redirect` / `BlindTransfer` / `Setvar` as configured ([`Answer`]);
//! - `Status` with the event list Asterisk sends (`Event: Status` per
//!   channel with its `Variable: NAME=value` lines, then `Event:
//!   StatusComplete`);
//! - `ShowDialPlan` against the configured Asterisk dialplan
//!   ([`FakeAmiConfig::dialplan`]);
//! - `Events` (the session's event mask), and the events a transfer causes.
//!
//! A transfer moves the caller the way Asterisk does: the media connection
//! of the call ([`FakeAmi::attach`]) is closed first — Asterisk hangs up
//! the WebSocket / AudioSocket leg and closes its socket within ~1 ms,
//! *before* the AMI response arrives (PROTOCOLS.md §1.9, verified) — then
//! the response, then the caller's fate as events: `Newexten` at the target
//! when the extension exists, at `i` when only the context's invalid
//! handler does, otherwise `Hangup` ("sent to invalid extension but no
//! invalid handler"). Each caller's fate is kept for assertions.
//!
//! Facts taken from Asterisk 22.10.1's source, not from a live capture:
//! the ShowDialPlan answer and errors (pbx.c `manager_show_dialplan`,
//! manager.c `astman_send_listack` / `astman_send_list_complete_start`),
//! the Events response (manager.c `action_events`), the Newexten and
//! Hangup event fields (manager_channels.c `channel_newexten`,
//! `channel_state_change`, `ast_manager_build_channel_state_string`), the
//! invalid-extension handling (pbx.c `__ast_pbx_run`) and the event
//! classes (`Newexten` is `dialplan`, `Hangup` and `BlindTransfer` are
//! `call`). The order of the landing events relative to the Redirect
//! response is not fixed in Asterisk (they come from another thread); the
//! fake sends them after it, and the client must accept either order. The
//! hangup cause of a caller sent to an invalid extension is whatever the
//! channel had; the fake says 16.
#![allow(dead_code)]
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the fake answers transfer actions.
#[derive(Debug, Clone)]
pub enum Answer {
    Success,
    /// `Response: Error` with this message.
    Error(String),
    /// Never answers (to exercise timeouts).
    Silent,
}

#[derive(Debug, Clone)]
pub struct FakeAmiConfig {
    pub username: String,
    pub secret: String,
    pub transfer: Answer,
    /// Channels `Status` lists: name and channel variables.
    pub channels: Vec<(String, Vec<(String, String)>)>,
    /// The Asterisk dialplan: each context with its extensions (names or
    /// `_` patterns, as in extensions.conf).
    pub dialplan: Vec<(String, Vec<String>)>,
    /// Time between closing the call's media connection and the transfer's
    /// AMI response. About 1 ms on a real Asterisk; longer here so the close
    /// always reaches hotline first.
    pub close_lead: Duration,
    /// Send the events a transfer causes before its response (Asterisk
    /// raises them on another thread, so either order can happen).
    pub events_first: bool,
}

/// The contexts the tests' dialplans transfer to.
pub fn default_dialplan() -> Vec<(String, Vec<String>)> {
    ["operators", "tech", "payments", "agents", "hotline-operators"]
        .into_iter()
        .map(|c| (c.to_string(), vec!["_X.".to_string()]))
        .collect()
}

impl Default for FakeAmiConfig {
    fn default() -> Self {
        FakeAmiConfig {
            username: "hotline".into(),
            secret: "s3cret-ami".into(),
            transfer: Answer::Success,
            channels: Vec::new(),
            dialplan: default_dialplan(),
            close_lead: Duration::from_millis(100),
            events_first: false,
        }
    }
}

/// One action block as received, headers in order.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
    pub fn action(&self) -> &str {
        self.get("Action").unwrap_or("")
    }
}

/// Closes a call's media connection, as Asterisk does when the channel
/// leaves (the caller is transferred away).
pub type CloseMedia = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Where a transferred channel ended up.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// It runs the dialplan at context,extension (`i` = the invalid handler).
    Landed { context: String, exten: String },
    /// Hung up: the target did not exist.
    HungUp(String),
}

/// A call as the fake PBX knows it: the caller's channel, hotline's own
/// channel (BlindTransfer names it), and how to close the media leg.
struct Leg {
    caller: String,
    own: Option<String>,
    close: CloseMedia,
}

#[derive(Default)]
struct Pbx {
    legs: Vec<Leg>,
    fates: HashMap<String, Fate>,
}

pub struct FakeAmi {
    pub addr: SocketAddr,
    actions: Arc<Mutex<Vec<Recorded>>>,
    pbx: Arc<Mutex<Pbx>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAmi {
    pub async fn start(cfg: FakeAmiConfig) -> FakeAmi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake AMI");
        let addr = listener.local_addr().unwrap();
        let actions = Arc::new(Mutex::new(Vec::new()));
        let pbx = Arc::new(Mutex::new(Pbx::default()));
        let (rec, shared) = (Arc::clone(&actions), Arc::clone(&pbx));
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (rec, pbx) = (Arc::clone(&rec), Arc::clone(&shared));
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, cfg, rec, pbx).await;
                });
            }
        });
        FakeAmi { addr, actions, pbx, task }
    }

    /// Makes a call known: `caller` is the channel a Redirect moves, `own`
    /// hotline's channel (BlindTransfer moves its peer, the caller);
    /// `close` ends the media connection when the caller leaves.
    pub fn attach(&self, caller: &str, own: Option<&str>, close: CloseMedia) {
        let leg = Leg { caller: caller.to_string(), own: own.map(str::to_string), close };
        self.pbx.lock().unwrap().legs.push(leg);
    }

    /// What became of a transferred channel.
    pub fn fate(&self, channel: &str) -> Option<Fate> {
        self.pbx.lock().unwrap().fates.get(channel).cloned()
    }

    /// Waits until `channel` has a fate (or the timeout passed).
    pub async fn wait_fate(&self, channel: &str, timeout: Duration) -> Option<Fate> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.fate(channel) {
                return Some(f);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn actions(&self) -> Vec<Recorded> {
        self.actions.lock().unwrap().clone()
    }

    /// Actions other than Login/Logoff.
    pub fn transfer_actions(&self) -> Vec<Recorded> {
        self.actions().into_iter().filter(|a| !matches!(a.action(), "Login" | "Logoff")).collect()
    }

    /// Waits until an action named `name` arrived (or the timeout passed).
    pub async fn wait_for(&self, name: &str, timeout: Duration) -> Option<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(a) = self.actions().into_iter().find(|a| a.action().eq_ignore_ascii_case(name)) {
                return Some(a);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FakeAmi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Event classes a session receives (manager.c `set_eventmask`): Login's
/// `Events:` header and the `Events` action's `EventMask:`.
fn event_mask(value: Option<&str>) -> Vec<String> {
    match value.map(str::trim) {
        None => Vec::new(),
        Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("no") => Vec::new(),
        Some(v) if v.eq_ignore_ascii_case("on") || v.eq_ignore_ascii_case("yes") => vec!["all".into()],
        Some(v) => v.split(',').map(|c| c.trim().to_ascii_lowercase()).collect(),
    }
}

async fn serve(
    sock: tokio::net::TcpStream,
    cfg: FakeAmiConfig,
    rec: Arc<Mutex<Vec<Recorded>>>,
    pbx: Arc<Mutex<Pbx>>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"Asterisk Call Manager/9.0.0\r\n").await?;
    let mut logged_in = false;
    let mut mask: Vec<String> = Vec::new();
    loop {
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if headers.is_empty() {
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let block = Recorded { headers };
        rec.lock().unwrap().push(block.clone());
        let id = block.get("ActionID").unwrap_or("").to_string();
        let reply = |ok: bool, msg: &str| {
            format!("Response: {}\r\nActionID: {id}\r\nMessage: {msg}\r\n\r\n", if ok { "Success" } else { "Error" })
        };
        let answer = match block.action() {
            "Login" => {
                let ok = block.get("Username") == Some(cfg.username.as_str())
                    && block.get("Secret") == Some(cfg.secret.as_str());
                logged_in = ok;
                mask = event_mask(block.get("Events").or(Some("on")));
                // A real Asterisk sends an unsolicited event right after
                // login when events are on; send one anyway to prove the
                // client skips what is not its response.
                let mut s = reply(ok, if ok { "Authentication accepted" } else { "Authentication failed" });
                if ok {
                    s.push_str("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n");
                }
                s
            }
            "Logoff" => {
                w.write_all(
                    format!("Response: Goodbye\r\nActionID: {id}\r\nMessage: Thanks for all the fish.\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
                return Ok(());
            }
            _ if !logged_in => reply(false, "Permission denied"),
            "Events" => {
                mask = event_mask(block.get("EventMask"));
                format!(
                    "Response: Success\r\nActionID: {id}\r\nEvents: {}\r\n\r\n",
                    if mask.is_empty() { "Off" } else { "On" }
                )
            }
            "Status" => status_list(&cfg, &block, &id),
            "ShowDialPlan" => show_dialplan(&cfg, &block, &id),
            "Redirect" | "BlindTransfer" | "Setvar" => match &cfg.transfer {
                Answer::Success if block.action() == "Setvar" => reply(true, "Variable Set"),
                Answer::Success => {
                    let moved = move_caller(&cfg, &block, &pbx).await;
                    let ok = reply(
                        true,
                        if block.action() == "Redirect" { "Redirect successful" } else { "Transfer succeeded" },
                    );
                    let events: String = moved
                        .into_iter()
                        .filter(|(class, _)| mask.iter().any(|m| m == "all" || m == class))
                        .map(|(_, event)| event)
                        .collect();
                    let both = if cfg.events_first { events + &ok } else { ok + &events };
                    w.write_all(both.as_bytes()).await?;
                    continue;
                }
                Answer::Error(m) => reply(false, m),
                Answer::Silent => continue,
            },
            _ => reply(false, "Invalid/unknown command"),
        };
        w.write_all(answer.as_bytes()).await?;
    }
}

/// Moves the caller as a transfer does: closes the media leg, waits
/// `close_lead`, records where the caller went, and returns the events
/// (class, text) that tell it.
async fn move_caller(cfg: &FakeAmiConfig, block: &Recorded, pbx: &Arc<Mutex<Pbx>>) -> Vec<(String, String)> {
    let named = block.get("Channel").unwrap_or("").to_string();
    let (context, exten) =
        (block.get("Context").unwrap_or("").to_string(), block.get("Exten").unwrap_or("").to_string());
    let blind = block.action() == "BlindTransfer";
    let (caller, close) = {
        let p = pbx.lock().unwrap();
        let leg =
            p.legs.iter().find(|l| if blind { l.own.as_deref() == Some(named.as_str()) } else { l.caller == named });
        match leg {
            Some(l) => (l.caller.clone(), Some(Arc::clone(&l.close))),
            // Not attached: Redirect moves the channel named; a
            // BlindTransfer's peer is unknown, so nothing moves.
            None if blind => return Vec::new(),
            None => (named.clone(), None),
        }
    };
    if let Some(close) = close {
        close().await;
        tokio::time::sleep(cfg.close_lead).await;
    }
    let mut events = Vec::new();
    if blind {
        events.push((
            "call".to_string(),
            format!(
                "Event: BlindTransfer\r\nPrivilege: call,all\r\nResult: Success\r\nTransfererChannel: {named}\r\n\
                 TransfereeChannel: {caller}\r\nIsExternal: Yes\r\nContext: {context}\r\nExtension: {exten}\r\n\r\n"
            ),
        ));
    }
    let fate = match lookup(&cfg.dialplan, &context, &exten) {
        Lookup::Found => Fate::Landed { context: context.clone(), exten: exten.clone() },
        Lookup::InvalidHandler => Fate::Landed { context: context.clone(), exten: "i".into() },
        Lookup::Missing(_) => Fate::HungUp(format!(
            "Channel '{caller}' sent to invalid extension but no invalid handler: context,exten,priority={context},{exten},1"
        )),
    };
    events.push(match &fate {
        Fate::Landed { context, exten } => (
            "dialplan".to_string(),
            channel_event(
                "Newexten",
                &caller,
                context,
                exten,
                &format!("Extension: {exten}\r\nApplication: Dial\r\nAppData: PJSIP/6100,60\r\n"),
            ),
        ),
        Fate::HungUp(_) => (
            "call".to_string(),
            channel_event("Hangup", &caller, &context, &exten, "Cause: 16\r\nCause-txt: Normal Clearing\r\n"),
        ),
    });
    pbx.lock().unwrap().fates.insert(caller, fate);
    events
}

/// An event about a channel: its state lines (manager_channels.c
/// `ast_manager_build_channel_state_string`), then `extra`.
fn channel_event(name: &str, channel: &str, context: &str, exten: &str, extra: &str) -> String {
    let class = if name == "Newexten" { "dialplan" } else { "call" };
    format!(
        "Event: {name}\r\nPrivilege: {class},all\r\nChannel: {channel}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n\
         CallerIDNum: 6001\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n\
         Language: en\r\nAccountCode: \r\nContext: {context}\r\nExten: {exten}\r\nPriority: 1\r\n\
         Uniqueid: 1795449971.3\r\nLinkedid: 1795449971.3\r\n{extra}\r\n"
    )
}

enum Lookup {
    Found,
    /// The extension is missing but the context has `i`.
    InvalidHandler,
    /// ShowDialPlan's error message.
    Missing(String),
}

fn lookup(dialplan: &[(String, Vec<String>)], context: &str, exten: &str) -> Lookup {
    let Some((_, extens)) = dialplan.iter().find(|(c, _)| c == context) else {
        return Lookup::Missing(format!("Did not find context {context}"));
    };
    if extens.iter().any(|e| exten_matches(e, exten)) {
        Lookup::Found
    } else if extens.iter().any(|e| e == "i") {
        Lookup::InvalidHandler
    } else {
        Lookup::Missing(format!("Did not find extension {exten}@{context}"))
    }
}

/// Asterisk's extension matching, the part dialplans use: a name matches
/// itself; `_` patterns have `X` (0-9), `Z` (1-9), `N` (2-9), `[..]`, `.`
/// (one or more) and `!` (zero or more). `-` is ignored on both sides.
fn exten_matches(pattern: &str, exten: &str) -> bool {
    let exten: Vec<char> = exten.chars().filter(|&c| c != '-').collect();
    let Some(pat) = pattern.strip_prefix('_') else {
        return pattern.chars().filter(|&c| c != '-').collect::<Vec<_>>() == exten;
    };
    let pat: Vec<char> = pat.chars().filter(|&c| c != '-').collect();
    let (mut i, mut j) = (0, 0);
    while i < pat.len() {
        let c = pat[i].to_ascii_uppercase();
        match c {
            '.' => return j < exten.len(),
            '!' => return true,
            _ if j >= exten.len() => return false,
            'X' if exten[j].is_ascii_digit() => {}
            'Z' if ('1'..='9').contains(&exten[j]) => {}
            'N' if ('2'..='9').contains(&exten[j]) => {}
            '[' => {
                let end = pat[i..].iter().position(|&x| x == ']').map_or(pat.len(), |p| i + p);
                let set = &pat[i + 1..end];
                let hit = set.iter().enumerate().any(|(k, &x)| {
                    x == exten[j]
                        || (set.get(k + 1) == Some(&'-')
                            && set.get(k + 2).is_some_and(|&hi| (x..=hi).contains(&exten[j])))
                });
                if !hit {
                    return false;
                }
                i = end;
            }
            _ if c == exten[j].to_ascii_uppercase() && !"XZN".contains(c) => {}
            _ => return false,
        }
        i += 1;
        j += 1;
    }
    j == exten.len()
}

/// Asterisk's answer to `ShowDialPlan` with `Context` and `Extension`
/// (pbx.c `manager_show_dialplan`): an error naming what is missing, or
/// the list ack, one `Event: ListDialplan` per priority, and
/// `Event: ShowDialPlanComplete` with the counters.
fn show_dialplan(cfg: &FakeAmiConfig, block: &Recorded, id: &str) -> String {
    let (context, exten) = (block.get("Context").unwrap_or(""), block.get("Extension").unwrap_or(""));
    let error = |m: &str| format!("Response: Error\r\nActionID: {id}\r\nMessage: {m}\r\n\r\n");
    match lookup(&cfg.dialplan, context, exten) {
        Lookup::Missing(m) => return error(&m),
        Lookup::InvalidHandler => return error(&format!("Did not find extension {exten}@{context}")),
        Lookup::Found => {}
    }
    let (_, extens) = cfg.dialplan.iter().find(|(c, _)| c == context).unwrap();
    let matching: Vec<&String> = extens.iter().filter(|e| exten_matches(e, exten)).collect();
    let mut out = format!(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: DialPlan list will follow\r\n\r\n"
    );
    for e in &matching {
        for (prio, app, data) in [(1, "Dial", "PJSIP/6100,60"), (2, "Hangup", "")] {
            out.push_str(&format!(
                "Event: ListDialplan\r\nActionID: {id}\r\nContext: {context}\r\nExtension: {e}\r\nPriority: {prio}\r\n\
                 Application: {app}\r\nAppData: {data}\r\nRegistrar: pbx_config\r\n\r\n"
            ));
        }
    }
    let n = matching.len();
    out.push_str(&format!(
        "Event: ShowDialPlanComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\nListExtensions: {n}\r\n\
         ListPriorities: {}\r\nListContexts: 1\r\n\r\n",
        n * 2,
        n * 2
    ));
    out
}

/// Asterisk's answer to `Action: Status` (manager.c `action_status`): the
/// response, one `Event: Status` per channel carrying the requested
/// variables as `Variable: NAME=value` lines, then `Event: StatusComplete`.
fn status_list(cfg: &FakeAmiConfig, block: &Recorded, id: &str) -> String {
    let wanted: Vec<&str> = block.get("Variables").map(|v| v.split(',').map(str::trim).collect()).unwrap_or_default();
    let mut out = format!(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channel status will follow\r\n\r\n"
    );
    for (channel, vars) in &cfg.channels {
        out.push_str(&format!(
            "Event: Status\r\nPrivilege: Call\r\nChannel: {channel}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\nContext: hotline\r\nExten: 5000\r\nPriority: 4\r\n"
        ));
        for name in &wanted {
            let value = vars.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
            out.push_str(&format!("Variable: {name}={value}\r\n"));
        }
        out.push_str(&format!("Application: AudioSocket\r\nActionID: {id}\r\n\r\n"));
    }
    let n = cfg.channels.len();
    out.push_str(&format!(
        "Event: StatusComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {n}\r\nItems: {n}\r\n\r\n"
    ));
    out
}
