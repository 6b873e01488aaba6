//! The AMI client against a fake Manager Interface on loopback.
mod support;

use std::time::Duration;

use hotline::pbx::ami::{run_actions, AmiAction, AmiConfig, AmiError, Secret};
use support::ami::{Answer, FakeAmi, FakeAmiConfig};

fn cfg(ami: &FakeAmi, secret: &str, timeout_ms: u64) -> AmiConfig {
    AmiConfig {
        host: "127.0.0.1".into(),
        port: ami.addr.port(),
        username: "hotline".into(),
        secret: Secret::new(secret),
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test]
async fn redirect_sends_the_verified_action_after_login() {
    let ami = FakeAmi::start(FakeAmiConfig::default()).await;
    let out = run_actions(
        &cfg(&ami, "s3cret-ami", 2000),
        &[AmiAction::setvar("Local/s@caller-sim-00000003;1", "HOTLINE_ACCOUNT", "4512"), AmiAction::redirect("Local/s@caller-sim-00000003;1", "agents", "101")],
    )
    .await
    .unwrap();
    assert_eq!(out[1].message(), "Redirect successful");
    let actions = ami.actions();
    let names: Vec<&str> = actions.iter().map(|a| a.action()).collect();
    assert_eq!(names, ["Login", "Setvar", "Redirect", "Logoff"]);
    let login = &actions[0];
    assert_eq!(login.get("Events"), Some("off"));
    let r = &actions[2];
    assert_eq!(r.get("Channel"), Some("Local/s@caller-sim-00000003;1"));
    assert_eq!(r.get("Context"), Some("agents"));
    assert_eq!(r.get("Exten"), Some("101"));
    assert_eq!(r.get("Priority"), Some("1"));
    assert!(r.get("ActionID").is_some_and(|id| !id.is_empty()));
    assert_eq!(actions[1].get("Variable"), Some("HOTLINE_ACCOUNT"));
}

#[tokio::test]
async fn wrong_secret_is_refused_without_showing_it() {
    let ami = FakeAmi::start(FakeAmiConfig::default()).await;
    let err = run_actions(&cfg(&ami, "wrong-secret-xyz", 2000), &[AmiAction::redirect("c", "x", "1")]).await.unwrap_err();
    assert!(matches!(err, AmiError::LoginRefused { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-secret-xyz"));
    assert!(ami.transfer_actions().is_empty(), "nothing after a failed login");
}

#[tokio::test]
async fn error_response_and_silence_become_errors() {
    let ami = FakeAmi::start(FakeAmiConfig { transfer: Answer::Error("Channel not found".into()), ..Default::default() }).await;
    let err = run_actions(&cfg(&ami, "s3cret-ami", 2000), &[AmiAction::redirect("gone", "agents", "101")]).await.unwrap_err();
    assert_eq!(err.to_string(), "AMI Redirect failed: Channel not found");

    let ami = FakeAmi::start(FakeAmiConfig { transfer: Answer::Silent, ..Default::default() }).await;
    let t0 = std::time::Instant::now();
    let err = run_actions(&cfg(&ami, "s3cret-ami", 300), &[AmiAction::blind_transfer("WebSocket/bot/0x1", "agents", "104")]).await.unwrap_err();
    assert!(matches!(err, AmiError::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_ami_and_header_injection_fail_cleanly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = AmiConfig { host: "127.0.0.1".into(), port, username: "u".into(), secret: Secret::new("p"), timeout: Duration::from_millis(500) };
    assert!(matches!(run_actions(&c, &[]).await.unwrap_err(), AmiError::Connect { .. }));

    let ami = FakeAmi::start(FakeAmiConfig::default()).await;
    let err = run_actions(&cfg(&ami, "s3cret-ami", 2000), &[AmiAction::redirect("x\r\nAction: Originate", "a", "1")]).await.unwrap_err();
    assert!(matches!(err, AmiError::BadValue { .. }), "{err}");
    assert!(ami.actions().iter().all(|a| a.action() != "Originate"));
}
