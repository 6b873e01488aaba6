//! A fake Asterisk Manager Interface on loopback: speaks the AMI framing,
//! checks the login, records every action it receives and answers
//! Redirect / BlindTransfer / Setvar as configured, and `Status` with the
//! event list Asterisk sends (`Event: Status` per channel with its
//! `Variable: NAME=value` lines, then `Event: StatusComplete`).
#![allow(dead_code)]
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl Default for FakeAmiConfig {
    fn default() -> Self {
        FakeAmiConfig { username: "hotline".into(), secret: "s3cret-ami".into(), transfer: Answer::Success, channels: Vec::new() }
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

pub struct FakeAmi {
    pub addr: SocketAddr,
    actions: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAmi {
    pub async fn start(cfg: FakeAmiConfig) -> FakeAmi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake AMI");
        let addr = listener.local_addr().unwrap();
        let actions = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&actions);
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let rec = Arc::clone(&rec);
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, cfg, rec).await;
                });
            }
        });
        FakeAmi { addr, actions, task }
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

async fn serve(sock: tokio::net::TcpStream, cfg: FakeAmiConfig, rec: Arc<Mutex<Vec<Recorded>>>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"Asterisk Call Manager/9.0.0\r\n").await?;
    let mut logged_in = false;
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
                let ok = block.get("Username") == Some(cfg.username.as_str()) && block.get("Secret") == Some(cfg.secret.as_str());
                logged_in = ok;
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
                w.write_all(reply(true, "Thanks for all the fish.").as_bytes()).await?;
                return Ok(());
            }
            _ if !logged_in => reply(false, "Permission denied"),
            "Status" => status_list(&cfg, &block, &id),
            "Redirect" | "BlindTransfer" | "Setvar" => match &cfg.transfer {
                Answer::Success => reply(
                    true,
                    match block.action() {
                        "Redirect" => "Redirect successful",
                        "BlindTransfer" => "Transfer succeeded",
                        _ => "Variable Set",
                    },
                ),
                Answer::Error(m) => reply(false, m),
                Answer::Silent => continue,
            },
            _ => reply(false, "Invalid/unknown command"),
        };
        w.write_all(answer.as_bytes()).await?;
    }
}

/// Asterisk's answer to `Action: Status` (manager.c `action_status`): the
/// response, one `Event: Status` per channel carrying the requested
/// variables as `Variable: NAME=value` lines, then `Event: StatusComplete`.
fn status_list(cfg: &FakeAmiConfig, block: &Recorded, id: &str) -> String {
    let wanted: Vec<&str> = block.get("Variables").map(|v| v.split(',').map(str::trim).collect()).unwrap_or_default();
    let mut out = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channel status will follow\r\n\r\n");
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
    out.push_str(&format!("Event: StatusComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {n}\r\nItems: {n}\r\n\r\n"));
    out
}
