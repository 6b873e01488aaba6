//! The AMI client against a fake Manager Interface on loopback.

use std::time::Duration;

use crate::support::ami::{Answer, FakeAmi, FakeAmiConfig, Fate};
use hotline::pbx::ami::{
    run_actions, transfer, AmiAction, AmiConfig, AmiError, AmiSession, Landing, Secret, TargetStatus, TransferLeg,
    TransferRequest,
};

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
        &[
            AmiAction::setvar("Local/s@caller-sim-00000003;1", "HOTLINE_ACCOUNT", "4512"),
            AmiAction::redirect("Local/s@caller-sim-00000003;1", "agents", "101"),
        ],
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
    let err =
        run_actions(&cfg(&ami, "wrong-secret-xyz", 2000), &[AmiAction::redirect("c", "x", "1")]).await.unwrap_err();
    assert!(matches!(err, AmiError::LoginRefused { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-secret-xyz"));
    assert!(ami.transfer_actions().is_empty(), "nothing after a failed login");
}

#[tokio::test]
async fn error_response_and_silence_become_errors() {
    let ami =
        FakeAmi::start(FakeAmiConfig { transfer: Answer::Error("Channel not found".into()), ..Default::default() })
            .await;
    let err =
        run_actions(&cfg(&ami, "s3cret-ami", 2000), &[AmiAction::redirect("gone", "agents", "101")]).await.unwrap_err();
    assert_eq!(err.to_string(), "AMI Redirect failed: Channel not found");

    let ami = FakeAmi::start(FakeAmiConfig { transfer: Answer::Silent, ..Default::default() }).await;
    let t0 = std::time::Instant::now();
    let err =
        run_actions(&cfg(&ami, "s3cret-ami", 300), &[AmiAction::blind_transfer("WebSocket/bot/0x1", "agents", "104")])
            .await
            .unwrap_err();
    assert!(matches!(err, AmiError::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_ami_and_header_injection_fail_cleanly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = AmiConfig {
        host: "127.0.0.1".into(),
        port,
        username: "u".into(),
        secret: Secret::new("p"),
        timeout: Duration::from_millis(500),
    };
    assert!(matches!(run_actions(&c, &[]).await.unwrap_err(), AmiError::Connect { .. }));

    let ami = FakeAmi::start(FakeAmiConfig::default()).await;
    let err = run_actions(&cfg(&ami, "s3cret-ami", 2000), &[AmiAction::redirect("x\r\nAction: Originate", "a", "1")])
        .await
        .unwrap_err();
    assert!(matches!(err, AmiError::BadValue { .. }), "{err}");
    assert!(ami.actions().iter().all(|a| a.action() != "Originate"));
}

#[tokio::test]
async fn show_dialplan_tells_existing_targets_from_missing_ones() {
    let dialplan = vec![("agents".to_string(), vec!["_1XX".to_string(), "200".to_string()])];
    let ami = FakeAmi::start(FakeAmiConfig { dialplan, ..Default::default() }).await;
    let mut session = AmiSession::connect(&cfg(&ami, "s3cret-ami", 2000)).await.unwrap();
    assert_eq!(session.show_dialplan("agents", "101").await.unwrap(), TargetStatus::Exists, "a pattern matches");
    assert_eq!(session.show_dialplan("agents", "200").await.unwrap(), TargetStatus::Exists);
    assert_eq!(
        session.show_dialplan("agents", "300").await.unwrap(),
        TargetStatus::Missing("Did not find extension 300@agents".into())
    );
    assert_eq!(
        session.show_dialplan("sales", "101").await.unwrap(),
        TargetStatus::Missing("Did not find context sales".into())
    );
    session.logoff().await;
    let show = ami.wait_for("ShowDialPlan", Duration::from_secs(1)).await.unwrap();
    assert_eq!((show.get("Context"), show.get("Extension")), (Some("agents"), Some("101")));
}

/// A Redirect of `Local/s@caller-sim-00000003;1` to `context,101`.
async fn redirect_to(ami: &FakeAmi, context: &str) -> Landing {
    let req = TransferRequest {
        leg: TransferLeg::Caller("Local/s@caller-sim-00000003;1".into()),
        context: context.into(),
        exten: "101".into(),
        variables: vec![("HOTLINE_ACCOUNT".into(), "4512".into())],
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    transfer(&cfg(ami, "s3cret-ami", 2000), &req, deadline).await.unwrap().landing
}

#[tokio::test]
async fn a_redirect_is_confirmed_by_the_callers_events_in_either_order() {
    for events_first in [false, true] {
        let ami = FakeAmi::start(FakeAmiConfig { events_first, ..Default::default() }).await;
        assert_eq!(redirect_to(&ami, "agents").await, Landing::Arrived, "events first: {events_first}");
        let names: Vec<String> = ami.actions().iter().map(|a| a.action().to_string()).collect();
        assert_eq!(names, ["Login", "Setvar", "Events", "Redirect", "Logoff"]);
        assert_eq!(ami.actions()[2].get("EventMask"), Some("call,dialplan"));

        let ami = FakeAmi::start(FakeAmiConfig { events_first, ..Default::default() }).await;
        let landing = redirect_to(&ami, "no-such-context").await;
        assert!(matches!(landing, Landing::HungUp { .. }), "events first: {events_first}: {landing:?}");
        assert!(matches!(ami.fate("Local/s@caller-sim-00000003;1"), Some(Fate::HungUp(_))));
    }
}
