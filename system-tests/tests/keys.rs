//! `origin keygen`'s values reach the programs unchanged by every path an operator takes: a
//! compose `.env` (docker-compose resolving compose.yaml), `docker run --env-file`, a shell
//! (`eval`), and `wrangler secret bulk` (the `--worker-secrets` JSON).

use std::collections::BTreeMap;
use std::process::Command;

use shared::keys::{Ed25519PrivateKey, Jwks};
use testkit::process::repo_root;

const BIN: &str = env!("CARGO_BIN_EXE_origin-under-test");

fn keygen(args: &[&str]) -> String {
    let out = Command::new(BIN).arg("keygen").args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The values as the origin needs them: the private key parses (its `\n` escapes included),
/// its public key is the JWKS's, and each secret is 32 random bytes in base64url.
fn assert_usable(values: &BTreeMap<String, String>, path: &str) {
    let get = |name: &str| {
        values
            .get(name)
            .unwrap_or_else(|| panic!("{path}: {name} missing from {values:?}"))
    };
    let private = Ed25519PrivateKey::from_pem(get("JWT_PRIVATE_KEY"))
        .unwrap_or_else(|e| panic!("{path}: JWT_PRIVATE_KEY {:?}: {e}", get("JWT_PRIVATE_KEY")));
    let jwks: Jwks = serde_json::from_str(get("JWT_PUBLIC_KEYS"))
        .unwrap_or_else(|e| panic!("{path}: JWT_PUBLIC_KEYS {:?}: {e}", get("JWT_PUBLIC_KEYS")));
    assert_eq!(jwks.keys, vec![private.public_jwk()], "{path}");
    assert_eq!(get("JWT_ALGORITHM"), "EdDSA", "{path}");
    for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "OTP_SECRET"] {
        let secret = get(name);
        assert!(
            secret.len() == 43
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{path}: {name} = {secret:?}"
        );
    }
}

/// `docker run --env-file`, by Docker's documented rules (no engine runs here): a line is
/// `NAME=value`, the value taken literally up to the end of the line (quotes included);
/// blank lines and lines starting with `#` are skipped.
fn docker_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn env_format_survives_docker_env_file_and_compose_env() {
    let dir = std::env::temp_dir().join(format!("keygen-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = keygen(&["--with-secrets"]);
    assert!(
        !env.lines()
            .filter_map(|line| line.split_once('='))
            .any(|(_, value)| value.starts_with(['"', '\''])),
        "no value is quoted: {env}"
    );

    let docker = docker_env_file(&env);
    assert_usable(&docker, "docker run --env-file");

    // compose.yaml resolved with this .env by docker-compose (as `docker compose up` would).
    std::fs::write(dir.join(".env"), &env).unwrap();
    std::fs::copy(repo_root().join("compose.yaml"), dir.join("compose.yaml")).unwrap();
    let mut compose = xtask::toolchain::compose(&repo_root()).unwrap();
    let out = compose
        .current_dir(&dir)
        .args(["-f", "compose.yaml", "config"])
        // Variables of the shell would win over .env.
        .env_remove("JWT_PRIVATE_KEY")
        .env_remove("ORIGIN_SIGNING_SECRET")
        .env_remove("RESET_TOKEN_SECRET")
        .env_remove("JWT_ALGORITHM")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let resolved = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8(out.stdout).unwrap())
        .unwrap()
        .remove(0);
    let environment = &resolved["services"]["origin"]["environment"];
    let mut values: BTreeMap<String, String> = environment
        .as_hash()
        .expect("origin's environment")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // compose passes the origin's own values; the Worker's come from the same file.
    values.insert("JWT_PUBLIC_KEYS".into(), docker["JWT_PUBLIC_KEYS"].clone());
    values.insert("OTP_SECRET".into(), docker["OTP_SECRET"].clone());
    assert_usable(&values, "compose .env");
    for name in [
        "JWT_PRIVATE_KEY",
        "ORIGIN_SIGNING_SECRET",
        "RESET_TOKEN_SECRET",
    ] {
        assert_eq!(values[name], docker[name], "compose changed {name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shell_format_survives_eval() {
    let shell = keygen(&["--with-secrets", "--format", "shell"]);
    let names = [
        "JWT_ALGORITHM",
        "JWT_PRIVATE_KEY",
        "JWT_PUBLIC_KEYS",
        "ORIGIN_SIGNING_SECRET",
        "RESET_TOKEN_SECRET",
        "OTP_SECRET",
    ];
    let script = format!(
        "eval \"$KEYS\" && printf '%s\\0' {}",
        names.map(|n| format!("\"${n}\"")).join(" ")
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("KEYS", &shell)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let values: BTreeMap<String, String> = names
        .iter()
        .map(|n| (*n).to_owned())
        .zip(printed.split('\0').map(str::to_owned))
        .collect();
    assert_usable(&values, "sh eval");
}

#[test]
fn worker_secrets_are_the_same_values_without_the_private_key() {
    let file = std::env::temp_dir().join(format!("worker-secrets-{}.json", std::process::id()));
    let env = docker_env_file(&keygen(&[
        "--with-secrets",
        "--worker-secrets",
        file.to_str().unwrap(),
    ]));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "only its owner reads it: {mode:o}");
    // What `wrangler secret bulk` reads: one JSON object of strings.
    let worker: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        worker.keys().collect::<Vec<_>>(),
        [
            "JWT_PUBLIC_KEYS",
            "ORIGIN_SIGNING_SECRET",
            "OTP_SECRET",
            "RESET_TOKEN_SECRET"
        ]
    );
    for (name, value) in &worker {
        assert_eq!(value, &env[name], "{name} differs from the origin's");
    }
    let json: BTreeMap<String, String> =
        serde_json::from_str(&keygen(&["--with-secrets", "--format", "json"])).unwrap();
    assert_usable(&json, "--format json");
}
