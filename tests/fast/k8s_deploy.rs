//! The Kubernetes manifests (deploy/k8s): valid against the Kubernetes
//! API's schema (`kubernetes-validate --strict`, from PyPI; there is no
//! cluster here), and consistent with hotline: the config they mount is
//! one `hotline serve` accepts, the probes are its routes, the pod outlives
//! its drain, and the autoscaler watches a metric hotline exports.
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use hotline::config::ServerConfig;

fn k8s(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s").join(file)
}

fn manifest(file: &str) -> Yaml {
    let text = std::fs::read_to_string(k8s(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file}: one object");
    docs.remove(0)
}

/// `kubernetes-validate`: `HOTLINE_K8S_VALIDATE`, else where `scripts/test`
/// installs it.
fn validator() -> PathBuf {
    let path = std::env::var_os("HOTLINE_K8S_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/k8s/bin/kubernetes-validate"));
    assert!(
        path.exists(),
        "KUBERNETES-VALIDATE IS NOT INSTALLED at {}: scripts/test installs it (pip, into target/tools/k8s), \
         or set HOTLINE_K8S_VALIDATE",
        path.display()
    );
    path
}

const FILES: [&str; 5] = ["configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml", "hpa.yaml"];

#[test]
fn the_manifests_are_valid_kubernetes_objects() {
    let out = Command::new(validator()).arg("--strict").args(FILES.map(k8s)).output().expect("run kubernetes-validate");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches(" passed ").count(), FILES.len(), "{said}");
    let listed: Vec<String> = std::fs::read_dir(k8s(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(listed.len(), FILES.len(), "every manifest is validated: {listed:?}");
}

#[test]
fn the_validator_rejects_a_broken_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(k8s("deployment.yaml")).unwrap().replace("replicas: 2", "replicas: two");
    std::fs::write(&broken, text).unwrap();
    let out = Command::new(validator()).arg("--strict").arg(&broken).output().unwrap();
    assert!(!out.status.success(), "a string for replicas must not pass");
}

#[test]
fn the_pods_serve_the_mounted_config_drain_in_time_and_scale_on_calls() {
    let config = manifest("configmap.yaml");
    let toml = config["data"]["hotline.toml"].as_str().expect("data.hotline.toml");
    let env = |var: &str| match var {
        "HOTLINE_AUTH_PASSWORD" | "HOTLINE_AMI_SECRET" => Some("from-the-secret".to_string()),
        _ => None,
    };
    let cfg = ServerConfig::from_toml_str(toml, Some(Path::new("configmap.yaml")), &env)
        .unwrap_or_else(|e| panic!("the ConfigMap's hotline.toml: {e}"));
    assert!(!cfg.general.listen.ip().is_loopback(), "a pod must listen beyond loopback");
    assert!(cfg.auth.is_some(), "off loopback, the dashboard and /metrics need [auth]");

    let deployment = manifest("deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    let env_names: Vec<&str> = container["env"].as_vec().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    for secret in ["HOTLINE_AUTH_PASSWORD", "HOTLINE_AMI_SECRET"] {
        assert!(env_names.contains(&secret), "{secret} from the Secret: {env_names:?}");
    }
    let pre_stop: i64 = container["lifecycle"]["preStop"]["exec"]["command"][1].as_str().unwrap().parse().unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(
        grace > pre_stop + cfg.general.shutdown_grace.as_secs() as i64,
        "the pod is killed only after its calls had shutdown_grace_secs to end: {grace} s"
    );
    let mounts: Vec<&str> =
        container["volumeMounts"].as_vec().unwrap().iter().filter_map(|m| m["mountPath"].as_str()).collect();
    assert!(mounts.contains(&cfg.general.dialplan_dir.to_str().unwrap()), "{mounts:?}");
    assert!(mounts.contains(&"/opt/hotline/models"), "the models where the image looks: {mounts:?}");

    let hpa = manifest("hpa.yaml");
    let metric = &hpa["spec"]["metrics"][0]["pods"];
    assert_eq!(metric["metric"]["name"].as_str(), Some(hotline::metrics::CALLS_ACTIVE));
    let target: usize = metric["target"]["averageValue"].as_str().unwrap().parse().unwrap();
    assert!(
        target < cfg.general.max_calls,
        "scale out before a pod refuses calls ({target} vs max_calls {})",
        cfg.general.max_calls
    );
}
