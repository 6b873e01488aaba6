//! The workspace as the build outside cargo's own commands sees it.

/// Cargo loads every workspace member's manifest even to build one
/// package, so the Docker build must copy them all.
#[test]
fn the_docker_build_copies_every_workspace_member() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml")).unwrap().parse().unwrap();
    let members = manifest["workspace"]["members"].as_array().expect("workspace members");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            words[..words.len().saturating_sub(1)].to_vec()
        })
        .collect();
    for member in members.iter().filter_map(|m| m.as_str()).filter(|m| *m != ".") {
        assert!(
            copied.iter().any(|c| member.starts_with(c.trim_end_matches('/'))),
            "Dockerfile copies {copied:?}, not workspace member {member}"
        );
    }
}
