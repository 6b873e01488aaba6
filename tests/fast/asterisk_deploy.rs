//! The deployment files: docker-compose.yml validated by Compose itself
//! (`config` needs no Docker engine) and checked for what a deployment
//! relies on, and the Asterisk configs it mounts checked against what
//! hotline expects.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("docker-compose.yml is not valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.into_iter().next().unwrap()
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {y:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

const KNOWN_SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "restart",
    "depends_on",
    "ports",
    "volumes",
    "networks",
    "environment",
    "command",
    "expose",
    "stop_grace_period",
    "healthcheck",
    "entrypoint",
    "user",
    "working_dir",
];

#[test]
fn compose_has_asterisk_from_an_image_and_hotline_from_our_dockerfile() {
    let doc = compose();
    let top: Vec<&str> = doc.as_hash().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    for k in &top {
        assert!(["services", "networks", "volumes"].contains(k), "unknown top-level key {k}");
    }
    let services = &doc["services"];
    assert_eq!(services.as_hash().unwrap().len(), 2, "asterisk and hotline");
    for (name, svc) in services.as_hash().unwrap() {
        for k in svc.as_hash().unwrap().keys() {
            let k = k.as_str().unwrap();
            assert!(KNOWN_SERVICE_KEYS.contains(&k), "service {name:?}: unknown key {k}");
        }
    }

    let asterisk = &services["asterisk"];
    let image = asterisk["image"].as_str().expect("asterisk runs a published image");
    assert!(asterisk["build"].is_badvalue(), "Asterisk must not be built here");
    let tag = image.rsplit(':').next().unwrap();
    let version: Vec<u32> = tag.split(['_', '-']).next().unwrap().split('.').map(|p| p.parse().unwrap()).collect();
    assert!(version >= vec![22, 8], "Asterisk {tag} is older than 22.8 (JSON control messages)");

    let hotline = &services["hotline"];
    assert_eq!(hotline["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert!(repo("Dockerfile").is_file());
    assert!(hotline["ports"].is_badvalue(), "hotline's websocket must not be published to the host");
    assert_eq!(strings(&hotline["expose"]), ["8088"]);
    let env = hotline["environment"].as_hash().unwrap();
    let secret = env.get(&Yaml::String("HOTLINE_AMI_SECRET".into())).and_then(|v| v.as_str()).unwrap();
    assert!(secret.starts_with("${HOTLINE_AMI_SECRET"), "the AMI secret comes from the environment, not the file");

    // Every bind-mounted file exists; named volumes are declared.
    let declared_volumes: Vec<&str> = doc["volumes"].as_hash().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    for svc in ["asterisk", "hotline"] {
        for v in strings(&services[svc]["volumes"]) {
            let src = v.split(':').next().unwrap();
            if src.starts_with("./") {
                if src == "./models" {
                    continue; // filled by scripts/setup, git-ignored
                }
                assert!(repo(src).exists(), "{svc}: mounted {src} does not exist");
            } else {
                assert!(declared_volumes.contains(&src), "{svc}: volume {src} not declared");
            }
        }
        if let Some(ports) = services[svc]["ports"].as_vec() {
            for port in ports.iter().map(|p| p.as_str().unwrap()) {
                assert!(port.contains(':'), "{svc}: port {port} must be HOST:CONTAINER");
            }
        }
    }
    let nets = doc["networks"]["voice"]["ipam"]["config"][0]["subnet"].as_str().unwrap();
    assert_eq!(nets, "172.28.5.0/24");
}

#[test]
fn asterisk_configs_point_at_hotline_as_it_is_configured() {
    let doc = compose();
    let hotline_ip = doc["services"]["hotline"]["networks"]["voice"]["ipv4_address"].as_str().unwrap();
    let asterisk_ip = doc["services"]["asterisk"]["networks"]["voice"]["ipv4_address"].as_str().unwrap();

    let ws = read("deploy/asterisk/websocket_client.conf");
    assert!(ws.contains(&format!("uri = ws://{hotline_ip}:8088/")), "{ws}");
    assert!(ws.contains("protocols = media"));
    assert!(ws.contains("type = websocket_client"));

    let ext = read("deploy/asterisk/extensions.conf");
    assert!(ext.contains("Dial(WebSocket/hotline/"), "entry extension dials the websocket_client section");
    assert!(ext.contains("Set(__CALLER_CHANNEL=${CHANNEL})"), "AMI Redirect target is passed on");
    assert!(ext.contains(&format!("http://{hotline_ip}:8088/transfer?uid=${{UNIQUEID}}")));
    assert!(ext.contains("caller_uid=${UNIQUEID}"));

    let mgr = read("deploy/asterisk/manager.conf");
    assert!(mgr.contains("[hotline]") && mgr.contains("write = call"));
    assert!(mgr.contains(&format!("permit = {hotline_ip}/255.255.255.255")));

    // hotline's own config parses and agrees with the Asterisk side.
    let path = repo("deploy/hotline/hotline.toml");
    let cfg = hotline::config::ServerConfig::from_toml_str(&read("deploy/hotline/hotline.toml"), Some(&path), &|k| {
        (k == hotline::config::ENV_AMI_SECRET).then(|| "from-env".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.general.listen.port(), 8088);
    let ami = cfg.ami.expect("AMI configured");
    assert_eq!(ami.host, asterisk_ip);
    assert_eq!(ami.username, "hotline");

    // Every context the shipped dialplan transfers to exists in Asterisk.
    let plan = read("dialplans/hotline.toml");
    for line in plan.lines().filter(|l| l.trim_start().starts_with("context =")) {
        let ctx = line.split('"').nth(1).unwrap();
        assert!(
            ext.contains(&format!("[{ctx}]")),
            "extensions.conf lacks context [{ctx}] used by dialplans/hotline.toml"
        );
    }
    assert!(ext.contains(&format!("[{}]", cfg.transfer.default_context)));
}

/// The Compose on this machine: the `docker compose` plugin, or the
/// standalone `docker-compose`.
fn compose_command() -> Option<Vec<&'static str>> {
    let works = |cmd: &[&'static str]| {
        Command::new(cmd[0]).args(&cmd[1..]).arg("version").output().is_ok_and(|o| o.status.success())
    };
    [&["docker", "compose"][..], &["docker-compose"][..]].into_iter().find(|c| works(c)).map(|c| c.to_vec())
}

/// `compose config --quiet` on the repository's file, with the AMI secret
/// set to `secret` or unset.
fn compose_config(cmd: &[&str], secret: Option<&str>) -> Output {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]).args(["-f", "docker-compose.yml", "config", "--quiet"]).current_dir(repo("."));
    c.env_remove("HOTLINE_AMI_SECRET").env_remove("COMPOSE_FILE");
    if let Some(s) = secret {
        c.env("HOTLINE_AMI_SECRET", s);
    }
    c.output().unwrap_or_else(|e| panic!("{}: {e}", cmd.join(" ")))
}

#[test]
fn compose_accepts_the_file_and_refuses_to_run_without_an_ami_secret() {
    let Some(cmd) = compose_command() else {
        // CI must validate the file: scripts/test installs Compose there.
        assert!(std::env::var_os("CI").is_none(), "neither `docker compose` nor `docker-compose` is installed");
        eprintln!("skipped: neither `docker compose` nor `docker-compose` is installed");
        return;
    };
    let ok = compose_config(&cmd, Some("not-a-real-secret"));
    assert!(
        ok.status.success(),
        "{} rejects docker-compose.yml:\n{}",
        cmd.join(" "),
        String::from_utf8_lossy(&ok.stderr)
    );

    // Without the secret nothing starts, and the error says what to set.
    let missing = compose_config(&cmd, None);
    assert!(!missing.status.success(), "docker-compose.yml must require HOTLINE_AMI_SECRET");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("HOTLINE_AMI_SECRET"), "{err}");
}

/// Sections of an Asterisk config file: (name, its lines).
fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().map(|l| l.split(';').next().unwrap().trim()).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name.to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

#[test]
fn the_fleet_example_tries_every_instance_once_then_a_human() {
    let ws = sections(&read("deploy/asterisk/fleet/websocket_client.conf"));
    let ext_text = read("deploy/asterisk/fleet/extensions.conf");
    let ext = sections(&ext_text);
    let context = |name: &str| ext.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone()).unwrap();

    // hotline-N sections, each a media websocket_client, and the same
    // instance's HTTP address in the globals for the no-AMI transfer.
    let globals = context("globals");
    assert!(ws.len() >= 2, "two or more instances");
    for (i, (name, lines)) in ws.iter().enumerate() {
        let n = i + 1;
        assert_eq!(name, &format!("hotline-{n}"));
        for want in ["type = websocket_client", "protocols = media", "connection_type = per_call_config"] {
            assert!(lines.iter().any(|l| l == want), "[{name}] lacks `{want}`");
        }
        let uri = lines.iter().find_map(|l| l.strip_prefix("uri = ws://")).expect("uri");
        let host_port = uri.split('/').next().unwrap();
        assert!(globals.contains(&format!("HOTLINE_{n} = {host_port}")), "HOTLINE_{n} = {host_port}: {globals:?}");
    }

    // One try per instance, each moving on only on CHANUNAVAIL, then the
    // operators; a call an instance took is not offered again.
    let fleet = context("hotline-fleet");
    let tries: Vec<usize> = (0..fleet.len()).filter(|&i| fleet[i].contains("Gosub(hotline-instance,s,1(")).collect();
    assert_eq!(tries.len(), ws.len(), "{fleet:?}");
    for &i in &tries {
        assert!(fleet[i + 1].contains(r#"GotoIf($["${DIALSTATUS}" != "CHANUNAVAIL"]?answered)"#), "{}", fleet[i + 1]);
    }
    let last = *tries.last().unwrap();
    assert!(fleet[last + 2].contains("Goto(hotline-operators,"), "then a human: {}", fleet[last + 2]);
    assert!(fleet.iter().any(|l| l.contains("Set(__CALLER_CHANNEL=${CHANNEL})")), "AMI Redirect target passed on");
    assert!(fleet.iter().any(|l| l.contains("${RAND(1,") && l.contains(&format!(",{})}}", ws.len()))), "{fleet:?}");

    let instance = context("hotline-instance");
    let dial = instance.iter().find(|l| l.contains("Dial(WebSocket/hotline-${ARG1}/")).expect("the Dial");
    for want in ["v(dialplan=", "caller_uid=${UNIQUEID}", "decision_token=${DECISION_TOKEN}", ",,g)"] {
        assert!(dial.contains(want), "{dial} lacks {want}");
    }
    assert!(instance.iter().any(|l| l.contains("${GLOBAL(HOTLINE_${ARG1})}/transfer?uid=${UNIQUEID}")));
    assert!(instance.last().unwrap().ends_with("Return()"));
    // The example's other contexts come from the shipped extensions.conf.
    assert!(read("deploy/asterisk/extensions.conf").contains("[hotline-operators]"));
}
