//! What operators deploy agrees with what the origin reads: compose.yaml sets only variables the
//! origin reads (and every required one), the README's configuration table lists exactly the
//! variables `origin serve` reads, the Dockerfile builds the binary CI tests with the Rust CI
//! uses, and its HEALTHCHECK command works.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_origin");

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (every variable, the required ones) of an `origin` subcommand, from its clap definition.
fn reads(subcommand: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let cli = origin::cli::Cli::command();
    let command = cli
        .find_subcommand(subcommand)
        .unwrap_or_else(|| panic!("origin {subcommand}"));
    let mut all = BTreeSet::new();
    let mut required = BTreeSet::new();
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            let name = env.to_string_lossy().into_owned();
            if arg.is_required_set() {
                required.insert(name.clone());
            }
            all.insert(name);
        }
    }
    (all, required)
}

fn compose_environment(service: &str) -> (BTreeSet<String>, Vec<String>) {
    let docs = YamlLoader::load_from_str(&repo_file("compose.yaml")).expect("compose.yaml is YAML");
    let services = &docs[0]["services"];
    let svc = &services[service];
    assert!(!svc.is_badvalue(), "service {service} in compose.yaml");
    let command: Vec<String> = svc["command"]
        .as_vec()
        .unwrap_or_else(|| panic!("{service}: command as a list"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let env = match &svc["environment"] {
        Yaml::Hash(map) => map.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
        other => panic!("{service}: environment as a map, got {other:?}"),
    };
    (env, command)
}

/// Set by the runtime, not read through clap.
const PROCESS_ENV: &[&str] = &["RUST_LOG"];

#[test]
fn compose_sets_only_variables_the_origin_reads_and_every_required_one() {
    for (service, subcommand) in [("origin", "serve"), ("migrate", "migrate")] {
        let (set, command) = compose_environment(service);
        assert_eq!(
            command[0], subcommand,
            "{service} runs `origin {subcommand}`"
        );
        let (reads, required) = reads(subcommand);
        let unknown: Vec<_> = set
            .iter()
            .filter(|v| !reads.contains(*v) && !PROCESS_ENV.contains(&v.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{service} sets variables origin {subcommand} does not read: {unknown:?}"
        );
        let missing: Vec<_> = required.difference(&set).collect();
        assert!(missing.is_empty(), "{service} misses required {missing:?}");
    }
    // The services the origin needs are there, with PostgreSQL's data on a volume.
    let docs = YamlLoader::load_from_str(&repo_file("compose.yaml")).unwrap();
    let db = &docs[0]["services"]["db"];
    assert!(db["volumes"][0]
        .as_str()
        .unwrap()
        .ends_with(":/var/lib/postgresql/data"));
    assert!(!docs[0]["services"]["mailpit"].is_badvalue());
    assert_eq!(
        docs[0]["services"]["origin"]["depends_on"]["migrate"]["condition"].as_str(),
        Some("service_completed_successfully"),
        "migrations run before serve"
    );
}

#[test]
fn configuration_table_lists_exactly_what_serve_reads() {
    let doc = repo_file("docs/configuration.md");
    let start = doc.find("## Origin (`origin serve`)").expect("section");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut documented = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap();
        for name in cell.split('`').skip(1).step_by(2) {
            documented.insert(name.to_owned());
        }
    }
    let (reads, _) = reads("serve");
    let undocumented: Vec<_> = reads.difference(&documented).collect();
    let stale: Vec<_> = documented
        .difference(&reads)
        .filter(|v| !PROCESS_ENV.contains(&v.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/configuration.md: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/configuration.md but not read: {stale:?}"
    );
}

#[test]
fn dockerfile_builds_the_tested_binary_with_ci_rust_and_checks_health() {
    let dockerfile = repo_file("Dockerfile");
    let rustc = Command::new("rustc").arg("--version").output().unwrap();
    let version = String::from_utf8(rustc.stdout).unwrap();
    let minor: String = version
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert!(
        dockerfile.contains(&format!("ARG RUST_VERSION={minor}\n")),
        "Dockerfile RUST_VERSION should be {minor} ({version})"
    );
    assert!(dockerfile.contains("cargo build --release --locked -p origin --bin origin"));
    // Every COPY source is let through by .dockerignore.
    let ignore = repo_file(".dockerignore");
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(
                ignore
                    .lines()
                    .any(|l| l == format!("!{source}") || l == format!("!{source}/")),
                "{source} is excluded by .dockerignore"
            );
        }
    }
    // The image's defaults are variables the origin reads; its HEALTHCHECK is a subcommand.
    let (reads, _) = reads("serve");
    for name in ["BIND", "LOG_FORMAT"] {
        assert!(dockerfile.contains(&format!("{name}=")) && reads.contains(name));
    }
    assert!(dockerfile.contains(r#"CMD ["/usr/local/bin/origin", "healthcheck"]"#));
    assert!(dockerfile.contains("USER nonroot"), "not root in the image");
    assert!(origin::cli::Cli::command()
        .find_subcommand("healthcheck")
        .is_some());
}

#[tokio::test]
async fn healthcheck_command_passes_against_a_live_origin_and_fails_without_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(origin::http::health::healthz),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let check = |bind: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .arg("healthcheck")
                .env_clear()
                .env("BIND", bind)
                .output()
                .unwrap()
        })
    };
    let ok = check(format!("0.0.0.0:{port}")).await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "healthy");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = check(format!("127.0.0.1:{closed}")).await.unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

#[test]
fn the_wasm_bindgen_cli_the_tasks_install_is_the_crate_the_worker_links() {
    let cli = xtask::versions::WASM_BINDGEN;
    let manifest = repo_file("edge/Cargo.toml");
    let pin = manifest
        .lines()
        .find_map(|line| line.strip_prefix("wasm-bindgen = \"="))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("edge/Cargo.toml pins wasm-bindgen with =");
    assert_eq!(pin, cli, "edge/Cargo.toml vs xtask/src/versions.rs");
    let lock = repo_file("Cargo.lock");
    let locked = lock
        .split("[[package]]")
        .find(|package| package.contains("\nname = \"wasm-bindgen\"\n"))
        .and_then(|package| package.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .expect("wasm-bindgen in Cargo.lock");
    assert_eq!(locked, cli, "Cargo.lock vs xtask/src/versions.rs");
    // The deploy guide installs the same tools.
    let guide = repo_file("docs/deploy.md");
    for install in [
        format!(
            "cargo install worker-build --version {}",
            xtask::versions::WORKER_BUILD
        ),
        format!("cargo install wasm-bindgen-cli --version {cli}"),
    ] {
        assert!(guide.contains(&install), "docs/deploy.md lacks `{install}`");
    }
}

/// Every task takes its tool versions from xtask/src/versions.rs: no other file of xtask names
/// one (a version number in a string literal).
#[test]
fn tool_versions_are_pinned_in_one_place() {
    let mut sources = vec![std::path::PathBuf::from("xtask/src")];
    let mut checked = 0;
    while let Some(path) = sources.pop() {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(&path);
        if full.is_dir() {
            for entry in std::fs::read_dir(&full).unwrap() {
                sources.push(path.join(entry.unwrap().file_name()));
            }
            continue;
        }
        if path.ends_with("versions.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&full).unwrap();
        let pinned = text.split('"').skip(1).step_by(2).find(|literal| {
            let parts: Vec<&str> = literal
                .trim_start_matches(['=', '@', 'v'])
                .split('.')
                .collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        assert!(
            pinned.is_none(),
            "{} pins {pinned:?} outside xtask/src/versions.rs",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} files of xtask/src were checked"
    );
}
