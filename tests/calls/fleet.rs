//! A fleet on one machine: a real PostgreSQL server, three `hotline
//! serve` instances writing their call records to it, and Debian's HAProxy
//! with `deploy/haproxy/haproxy.cfg` in front, serving `bench load`'s
//! dialplan. The load generator first drives speech calls through HAProxy
//! (real recorded words, recognised by every instance); then calls from
//! the same Asterisk emulator follow a script: while they run, one instance is told to stop (SIGTERM: it drains, its
//! calls finish, HAProxy takes it out), another is killed (SIGKILL: its
//! calls are cut at the PBX side, which sends the callers to a human), and
//! both start again and rejoin. Then every call that started has exactly
//! one record in PostgreSQL (the killed ones marked `interrupted` by the
//! restarted instance), no call reached an instance that was not ready,
//! the calls were spread evenly, and any instance's dashboard sees the
//! whole fleet's calls. `scripts/fleet` runs it and prints its figures.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::balancer::{active_calls, haproxy_binary, Balancer};
use crate::dashboard::api;
use crate::operations::wait_marks;
use crate::postgres_server::PgServer;
use crate::service::{free_port, warm_prompt_cache, ChildServer};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};

/// How far from an even share an instance's calls may be.
const BALANCE_TOLERANCE: u32 = 1;

/// Speech calls the load generator makes at once, and for how long.
const LOAD_CALLS: usize = 6;
const LOAD_SECS: u64 = 10;
/// Its call numbers start past the scripted calls' (1..=22).
const LOAD_FIRST_CALL: u32 = 1000;

/// A folder with `bench load`'s dialplan and a config recording into `records`.
fn folder(records: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    std::fs::write(dir.path().join("dialplans/hotline.toml"), hotline_bench::load::BENCH_DIALPLAN).unwrap();
    let config = dir.path().join("hotline.toml");
    let toml = format!(
        "listen = \"127.0.0.1:{}\"\nprompt_cache_dir = \"{}\"\nshutdown_grace_secs = 30\ncall_records = \"{records}\"\n",
        free_port(),
        warm_prompt_cache().display()
    );
    std::fs::write(&config, toml).unwrap();
    (dir, config)
}

/// Calls each instance has now, as its `/metrics` says.
async fn spread(servers: &[ChildServer]) -> Vec<u32> {
    let mut n = Vec::new();
    for s in servers {
        n.push(active_calls(s.addr).await);
    }
    n
}

fn balanced(counts: &[u32], total: u32) -> bool {
    let fair = total / counts.len() as u32;
    counts.iter().all(|&c| c.abs_diff(fair) <= BALANCE_TOLERANCE)
}

/// Opens calls `numbers` through the balancer one after the other (so
/// HAProxy counts each before the next), then waits for their greetings,
/// which play side by side.
async fn open_calls(balancer: &Balancer, numbers: std::ops::RangeInclusive<u32>) -> Vec<AsteriskCall> {
    let mut calls = Vec::new();
    for n in numbers {
        let cfg = AsteriskConfig::new(balancer.calls, n);
        calls.push(AsteriskCall::connect(cfg).await.expect("a call through HAProxy"));
    }
    for c in &calls {
        wait_marks(c, 1, "greeting through HAProxy").await;
    }
    calls
}

/// Each call presses 1, hears the second menu's prompt, and hangs up.
async fn finish<'a>(calls: impl Iterator<Item = &'a AsteriskCall> + Clone) {
    for c in calls.clone() {
        c.dtmf('1').await;
    }
    for c in calls.clone() {
        wait_marks(c, 2, "the second menu's prompt after pressing 1").await;
    }
    for c in calls {
        c.hangup().await;
    }
}

/// (call_id, outcome, instance) of every row, from PostgreSQL.
async fn stored(url: &str) -> Vec<(String, String, String)> {
    let url = url.to_string();
    // The blocking client runs its own runtime: not on this one's threads.
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test PostgreSQL");
        client
            .query("SELECT call_id, COALESCE(outcome, ''), COALESCE(instance, '') FROM calls ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_haproxy_lose_no_call_and_no_record_when_one_drains_and_one_dies() {
    haproxy_binary();
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("fleet: {:>5.1} s {what}", t0.elapsed().as_secs_f64());
    let pg = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let url = pg.url();
    let folders = [folder(&url), folder(&url), folder(&url)];
    let mut servers = Vec::new();
    // One after the other: they share the tests' prompt cache.
    for (_, config) in &folders {
        let mut s = ChildServer::start(config, "");
        s.wait_ready().await;
        servers.push(s);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let instance = |i: usize| format!(":{}", addrs[i].port());
    let balancer = Balancer::start(&addrs);
    balancer.wait_status(&["UP", "UP", "UP"], "three instances ready").await;
    phase("PostgreSQL, three instances and HAProxy up");

    // 0. The load generator's speech calls, through HAProxy.
    let clips = hotline_bench::load::load_clips(None, 16_000).expect("the recorded words of `bench load`");
    let mut call_no = LOAD_FIRST_CALL;
    let load =
        hotline_bench::load::drive(balancer.calls, LOAD_CALLS, Duration::from_secs(LOAD_SECS), &clips, &mut call_no)
            .await;
    assert_eq!(load.calls_failed, 0, "every speech call through HAProxy was served: {load:?}");
    assert!(load.responses >= LOAD_CALLS, "each caller's words got an answer: {load:?}");
    let load_ids: Vec<String> = (LOAD_FIRST_CALL + 1..=call_no).map(|n| format!("1795449971.{n}")).collect();
    phase("speech calls from the load generator served");

    // 1. Nine calls: three each.
    let mut calls = open_calls(&balancer, 1..=9).await;
    let before_stops = spread(&servers).await;
    assert!(balanced(&before_stops, 9), "leastconn spreads the calls: {before_stops:?}");

    phase("nine calls spread");
    // 2. Instance 1 is told to stop: HAProxy takes it out, new calls go elsewhere.
    servers[0].signal("TERM");
    let mark_down = balancer.wait_status(&["DOWN", "UP", "UP"], "the draining instance taken out").await;
    calls.extend(open_calls(&balancer, 10..=13).await);
    let after_term = spread(&servers).await;
    assert_eq!(after_term[0], before_stops[0], "no new call on the draining instance: {after_term:?}");
    assert_eq!(after_term[1] + after_term[2], before_stops[1] + before_stops[2] + 4, "{after_term:?}");

    phase("instance 1 draining, new calls elsewhere");
    // 3. Instance 2 dies: its calls are cut at the PBX side...
    let on_killed = after_term[1];
    servers[1].signal("KILL");
    let t_kill = Instant::now();
    let closed = |calls: &[AsteriskCall]| -> Vec<String> {
        calls.iter().filter(|c| c.is_closed()).map(|c| c.cfg.channel_id.clone()).collect()
    };
    while (closed(&calls).len() as u32) < on_killed && t_kill.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more: no call of another instance is cut with them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut = closed(&calls);
    assert_eq!(cut.len() as u32, on_killed, "exactly the killed instance's calls are cut: {cut:?}");
    // ...and new calls go to the one instance left.
    balancer.wait_status(&["DOWN", "DOWN", "UP"], "the dead instance taken out").await;
    let survivor_before = active_calls(addrs[2]).await;
    calls.extend(open_calls(&balancer, 14..=16).await);
    assert_eq!(active_calls(addrs[2]).await, survivor_before + 3, "new calls on the instance left");
    assert_eq!(active_calls(addrs[0]).await, before_stops[0], "none on the draining one");

    phase("instance 2 killed, its calls cut, new calls on instance 3");
    // 4. Every call not cut runs to its end; the draining instance then exits.
    finish(calls.iter().filter(|c| !cut.contains(&c.cfg.channel_id))).await;
    let drained = servers[0].wait_exit(Duration::from_secs(20)).await.expect("the draining instance exits");
    assert!(drained.success(), "{drained:?}\n{}", servers[0].log());

    phase("calls finished, instance 1 exited");
    // 5. Both start again, rejoin once ready, and take calls.
    for i in [0, 1] {
        servers[i] = ChildServer::start(&folders[i].1, "");
        servers[i].wait_ready().await;
    }
    let rejoin = balancer.wait_status(&["UP", "UP", "UP"], "the restarted instances rejoin").await;
    let rejoined = open_calls(&balancer, 17..=22).await;
    let after_restart = spread(&servers).await;
    assert!(balanced(&after_restart, 6), "calls spread over the rejoined fleet: {after_restart:?}");
    finish(rejoined.iter()).await;
    calls.extend(rejoined);

    phase("instances 1 and 2 rejoined and served calls");
    // 6. One record per call, in PostgreSQL; the cut ones marked by the restarted instance.
    let mut started: Vec<String> = calls.iter().map(|c| c.cfg.channel_id.clone()).collect();
    started.extend(load_ids.iter().cloned());
    let t_wait = Instant::now();
    let rows = loop {
        let rows = stored(&pg.url()).await;
        let open = rows.iter().filter(|r| r.1 == "in_progress").count();
        if (rows.len() >= started.len() && open == 0) || t_wait.elapsed() > Duration::from_secs(20) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_call: HashMap<&str, Vec<&(String, String, String)>> = HashMap::new();
    for r in &rows {
        per_call.entry(r.0.as_str()).or_default().push(r);
    }
    for id in &started {
        let found = per_call.get(id.as_str()).map_or(0, Vec::len);
        assert_eq!(found, 1, "call {id}: {found} records\n{rows:#?}");
    }
    assert_eq!(rows.len(), started.len(), "no record of a call that did not start: {rows:#?}");
    for id in &cut {
        let (_, outcome, on) = per_call[id.as_str()][0];
        assert_eq!(outcome, "interrupted", "call {id} was cut");
        assert!(on.ends_with(&instance(1)), "call {id} was on the killed instance: {on}");
    }
    // Calls 10..=16 started while instance 1 drained: none was routed to it.
    for r in rows.iter().filter(|r| (10..=16).any(|n| r.0.ends_with(&format!(".{n}")))) {
        assert!(!r.2.ends_with(&instance(0)), "call {} reached the draining instance", r.0);
    }
    let load_spread: Vec<u32> = (0..3)
        .map(|i| rows.iter().filter(|r| load_ids.contains(&r.0) && r.2.ends_with(&instance(i))).count() as u32)
        .collect();
    assert!(balanced(&load_spread, LOAD_CALLS as u32), "the speech calls were spread: {load_spread:?}");
    let served: Vec<usize> = (0..3).map(|i| rows.iter().filter(|r| r.2.ends_with(&instance(i))).count()).collect();

    // 7. Any instance's dashboard reads the whole fleet's calls.
    let recent = api(addrs[2], "/api/calls/recent?limit=200").await;
    let listed: Vec<&str> = recent["calls"].as_array().unwrap().iter().filter_map(|c| c["call_id"].as_str()).collect();
    for id in &started {
        assert!(listed.contains(&id.as_str()), "the dashboard of instance 3 lists call {id}: {listed:?}");
    }

    let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v} ms"));
    let figures = [
        ("calls started", started.len().to_string()),
        ("speech calls from the load generator, per instance", format!("{LOAD_CALLS}: {load_spread:?}")),
        (
            "their end of speech → answer, p50 / p95 (through HAProxy)",
            format!("{} / {} ({} answers)", ms(load.p50_ms), ms(load.p95_ms), load.responses),
        ),
        ("records in PostgreSQL", rows.len().to_string()),
        ("calls per instance (before the stops)", format!("{before_stops:?}")),
        ("calls served per instance (all phases)", format!("{served:?}")),
        ("interrupted (killed instance)", cut.len().to_string()),
        ("time for HAProxy to mark a stopping instance down", format!("{:.1} s", mark_down.as_secs_f64())),
        ("time for the restarted instances to rejoin (after ready)", format!("{:.1} s", rejoin.as_secs_f64())),
        ("test duration", format!("{:.0} s", t0.elapsed().as_secs_f64())),
    ];
    eprintln!("\n| figure | value |\n|---|---|");
    for (what, value) in figures {
        eprintln!("| {what} | {value} |");
    }
}
