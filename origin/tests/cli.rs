//! The `origin` binary as an operator runs it: configuration errors, keygen, create-superuser,
//! and `serve` logging a refused unsigned request without leaking secrets.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::keys::{Ed25519PrivateKey, Jwks};
use testkit::{free_port, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_origin");
const SIGNING: &str = "cli-test-origin-signing-secret-0123456789";
const RESET: &str = "cli-test-reset-token-secret-0123456789abc";

fn origin(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("origin runs")
}

/// Parses `keygen --with-secrets` output into (name, value) pairs.
fn keygen() -> Vec<(String, String)> {
    let out = origin(&["keygen", "--with-secrets"], &[]);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.trim_matches(|c| c == '"' || c == '\'').to_owned(),
            )
        })
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    &pairs
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} in keygen output"))
        .1
}

/// `origin --version`: the release and the commit of the checkout it was built from.
#[test]
fn the_version_names_the_release_and_the_commit() {
    let out = origin(&["--version"], &[]);
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let commit = line
        .strip_prefix(&format!("origin {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        // In a checkout (CI's clone too): the commit it was built from.
        Ok(head) if head.status.success() => {
            assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim())
        }
        _ => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn keygen_prints_a_working_key_pair_and_secrets() {
    let pairs = keygen();
    let private = Ed25519PrivateKey::from_pem(value(&pairs, "JWT_PRIVATE_KEY")).unwrap();
    let jwks: Jwks = serde_json::from_str(value(&pairs, "JWT_PUBLIC_KEYS")).unwrap();
    assert_eq!(jwks.keys, vec![private.public_jwk()]);
    for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "OTP_SECRET"] {
        assert!(value(&pairs, name).len() >= 43, "{name} is 32 random bytes");
    }
    assert_ne!(
        value(&keygen(), "JWT_PRIVATE_KEY"),
        value(&pairs, "JWT_PRIVATE_KEY")
    );
}

#[test]
fn missing_or_invalid_configuration_names_the_variable() {
    let out = origin(&["serve"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "DATABASE_URL",
        "ORIGIN_SIGNING_SECRET",
        "RESET_TOKEN_SECRET",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }

    let base = [
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        ("RESET_TOKEN_SECRET", RESET),
    ];
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("ORIGIN_SIGNING_SECRET", "short-secret-value")],
            "invalid ORIGIN_SIGNING_SECRET",
        ),
        (
            &[("ORIGIN_SIGNING_SECRET", SIGNING)],
            "JWT_PRIVATE_KEY is required",
        ),
        (
            &[
                ("ORIGIN_SIGNING_SECRET", SIGNING),
                ("JWT_PRIVATE_KEY", "not-a-key-value"),
            ],
            "invalid JWT_PRIVATE_KEY",
        ),
        (
            &[
                ("ORIGIN_SIGNING_SECRET", SIGNING),
                ("JWT_ALGORITHM", "none"),
            ],
            "invalid JWT_ALGORITHM",
        ),
        (
            &[
                ("ORIGIN_SIGNING_SECRET", SIGNING),
                ("JWT_ALGORITHM", "HS256"),
                ("JWT_SECRET", "x"),
                ("PASSWORD_POLICY", "seed"),
            ],
            "invalid JWT_SECRET",
        ),
    ];
    for (extra, expected) in cases {
        let env: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
        let out = origin(&["serve"], &env);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{expected:?} not in {err}");
        // The offending secret value is never echoed.
        for (_, v) in extra {
            if v.len() > 8 {
                assert!(!err.contains(v), "{v:?} leaked in {err}");
            }
        }
    }
}

/// Numbers and policies are refused as they are read (clap's value parsers), before any
/// connection: the message names the variable and the range, and the exit code is clap's 2.
#[test]
fn out_of_range_numbers_are_refused_naming_the_variable() {
    let base = [
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        ("RESET_TOKEN_SECRET", RESET),
        ("ORIGIN_SIGNING_SECRET", SIGNING),
    ];
    for (name, value) in [
        ("ACCESS_TOKEN_TTL", "0"),
        ("REFRESH_TOKEN_TTL", "-5"),
        ("REFRESH_REUSE_GRACE", "-1"),
        ("LOCKOUT_THRESHOLD", "0"),
        ("LOCKOUT_ACCOUNT_THRESHOLD", "0"),
        ("LOCKOUT_WINDOW", "0"),
        ("DATABASE_POOL_SIZE", "0"),
        ("ARGON2_MAX_CONCURRENCY", "0"),
        ("ARGON2_QUEUE_DEPTH", "0"),
        ("PASSWORD_POLICY", "weak"),
    ] {
        let env: Vec<(&str, &str)> = base.iter().copied().chain([(name, value)]).collect();
        let out = origin(&["serve"], &env);
        assert_eq!(out.status.code(), Some(2), "{name}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{name} not in {err}");
        assert!(err.contains(&format!("'{value}'")), "{value} not in {err}");
    }
}

#[tokio::test]
async fn create_superuser_creates_then_updates_an_admin() {
    let db = TestDb::create().await;
    let args = [
        "create-superuser",
        "--email",
        "Root@Example.com",
        "--username",
        "root",
        "--password",
        "97531864",
    ];
    let out = origin(&args, &[("DATABASE_URL", &db.url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("created superuser Root@example.com"));
    let again = origin(&args, &[("DATABASE_URL", &db.url)]);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("updated superuser"));
    let row = db
        .client()
        .await
        .query_one("SELECT role, username, password_hash FROM users", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "admin");
    assert_eq!(row.get::<_, String>(1), "root");
    assert!(row.get::<_, String>(2).starts_with("$argon2id$"));

    let bad = origin(
        &[
            "create-superuser",
            "--email",
            "nope",
            "--username",
            "root",
            "--password",
            "x",
        ],
        &[("DATABASE_URL", &db.url)],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email: Enter a valid email address."));
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::create().await;
    let first = origin(&["migrate"], &[("DATABASE_URL", &db.url)]);
    // Every file of migrations/, each applied once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        format!("migrations applied: {files}")
    );
    let second = origin(&["migrate"], &[("DATABASE_URL", &db.url)]);
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "migrations applied: 0"
    );
}

/// Rollback: the binary of the previous release runs on a schema one release newer. It lists
/// the newer release's migration, leaves it alone, and is ready; a schema from another line of
/// history (one of its own migrations missing below the newest) is refused, naming it.
#[tokio::test]
async fn a_schema_one_release_newer_is_run_on_and_a_conflicting_one_refused() {
    let db = TestDb::create().await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let stdout = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let fresh = origin(&["migrate", "--status"], &env);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    assert!(
        stdout(&fresh).contains("pending      V1__initial"),
        "{}",
        stdout(&fresh)
    );
    assert!(stdout(&fresh).contains("0 applied, "), "{}", stdout(&fresh));
    assert!(origin(&["migrate"], &env).status.success());

    // What the next release's migration leaves: its table and its history row.
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE next_release (id int); \
             INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (1000, 'next_release', '2026-12-07T00:00:00Z', '1')",
        )
        .await
        .unwrap();
    let status = origin(&["migrate", "--status"], &env);
    let listed = stdout(&status);
    assert!(listed.contains("applied      V1__initial"), "{listed}");
    assert!(
        listed.contains("newer        V1000__next_release"),
        "{listed}"
    );
    assert!(
        listed.contains(", 0 pending, 1 newer, 0 conflicting"),
        "{listed}"
    );
    let again = origin(&["migrate"], &env);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(stdout(&again).trim(), "migrations applied: 0");
    let args = origin::config::DatabaseArgs {
        database_url: db.url.clone().into(),
        database_pool_size: 1,
        database_statements: origin::config::Statements::Named,
        migration_lock_timeout: 5,
    };
    let pool = origin::db::pool(&args).unwrap();
    origin::db::ready(&pool)
        .await
        .expect("ready on the newer schema");
    // A pool of one: migrating holds its only connection and reads the status through it.
    assert_eq!(origin::db::migrate(&pool).await.unwrap(), 0);

    client
        .batch_execute("DELETE FROM refinery_schema_history WHERE version = 5")
        .await
        .unwrap();
    let refused = origin(&["migrate"], &env);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("conflict") && err.contains("V5__"), "{err}");
    assert!(origin::db::ready(&pool).await.is_err());
}

#[tokio::test]
async fn serve_logs_refused_requests_without_secrets_and_drains_on_sigterm() {
    let db = TestDb::create().await;
    let keys = keygen();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("BIND", "127.0.0.1:0")
        .env("METRICS_BIND", "127.0.0.1:0")
        .env("ORIGIN_SIGNING_SECRET", SIGNING)
        .env("RESET_TOKEN_SECRET", RESET)
        .env("JWT_PRIVATE_KEY", value(&keys, "JWT_PRIVATE_KEY"))
        .env("LOG_FORMAT", "json")
        .env("SHUTDOWN_DELAY", "2")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("origin starts");
        log.push(line.clone());
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
            if event["message"] == "origin listening" {
                break event["port"].as_u64().unwrap();
            }
        }
    };
    let reply = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/internal/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let ok = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // SIGTERM: not ready at once, still serving for SHUTDOWN_DELAY, then a graceful stop.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let signalled = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let stopping = loop {
        let reply = reqwest::get(&readyz).await.expect("still listening");
        if reply.status() == 503 {
            break reply.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "/readyz still 200"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stopping["status"], "stopping");
    let me = reqwest::get(format!("http://127.0.0.1:{port}/internal/me"))
        .await
        .expect("requests are still served during the delay");
    assert_eq!(me.status(), 401);
    let status = child.wait().unwrap();
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "the listener stayed open for SHUTDOWN_DELAY"
    );
    assert!(status.success(), "exit after SIGTERM: {status}");
    log.extend(rx.try_iter());
    let all = log.join("\n");
    assert!(
        all.contains("refused unsigned or badly signed internal request"),
        "{all}"
    );
    assert!(all.contains("/internal/me"), "{all}");
    for secret in [SIGNING, RESET, value(&keys, "JWT_PRIVATE_KEY"), &db.url] {
        assert!(!all.contains(secret), "secret leaked to the log: {all}");
    }
    // Every line is JSON in this mode.
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{all}"
    );
}

/// Replicas starting together on an empty database: migrations run under an advisory lock, so
/// every one comes up and the schema is applied once (without the lock, concurrent `CREATE
/// TABLE`s fail and replicas exit).
#[tokio::test]
async fn four_replicas_starting_at_once_migrate_once_and_all_serve() {
    let db = TestDb::create().await;
    let keys = keygen();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    // Process groups: stopped when dropped, also when an assertion below fails.
    let mut replicas: Vec<testkit::process::Group> = ports
        .iter()
        .map(|port| {
            testkit::process::spawn(
                Command::new(BIN)
                    .arg("serve")
                    .env_clear()
                    .env("DATABASE_URL", &db.url)
                    .env("DATABASE_POOL_SIZE", "2")
                    .env("BIND", format!("127.0.0.1:{port}"))
                    .env("METRICS_BIND", "off")
                    .env("ORIGIN_SIGNING_SECRET", SIGNING)
                    .env("RESET_TOKEN_SECRET", RESET)
                    .env("JWT_PRIVATE_KEY", value(&keys, "JWT_PRIVATE_KEY"))
                    .env("LOG_FORMAT", "json")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, port) in ports.iter().enumerate() {
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            if let Some(status) = replicas[i].exit_status() {
                let mut err = String::new();
                use std::io::Read;
                let stderr = replicas[i].child().stderr.take();
                stderr.unwrap().read_to_string(&mut err).unwrap();
                panic!("replica {i} exited ({status}) before it was ready:\n{err}");
            }
            assert!(Instant::now() < deadline, "replica {i} not ready in 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM refinery_schema_history GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .count();
    assert_eq!(rows.len(), migrations, "every migration recorded");
    for row in &rows {
        assert_eq!(
            row.get::<_, i64>(1),
            1,
            "migration {} applied once",
            row.get::<_, i32>(0)
        );
    }
    for replica in &mut replicas {
        replica.stop();
    }
}

#[tokio::test]
async fn janitor_runs_once_and_prints_what_it_deleted() {
    let db = TestDb::create().await;
    assert!(origin(&["migrate"], &[("DATABASE_URL", &db.url)])
        .status
        .success());
    let out = origin(&["janitor"], &[("DATABASE_URL", &db.url)]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    for (kind, _) in origin::janitor::Purged::default().counts() {
        assert!(printed.contains(&format!("{kind}: 0 deleted")), "{printed}");
    }
}

/// A migration that cannot get its table lock (a long transaction holds the table) gives up
/// after MIGRATION_LOCK_TIMEOUT, changing nothing, instead of queueing every query on the table
/// behind it; and `serve` listens while it migrates: `/healthz` 200, `/readyz` 503
/// `migrating`, every other request 503 with `Retry-After`, until the migration is done.
#[tokio::test]
async fn a_blocked_migration_times_out_and_serve_answers_503_while_migrating() {
    let db = TestDb::create().await;
    assert!(origin(&["migrate"], &[("DATABASE_URL", &db.url)])
        .status
        .success());
    // V9 pending again, and its table held by a transaction that stays open.
    let client = db.client().await;
    client
        .batch_execute(
            "DELETE FROM refinery_schema_history WHERE version = 9;
             ALTER TABLE activation_codes DROP COLUMN network, DROP COLUMN other_attempts;",
        )
        .await
        .unwrap();
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE activation_codes IN ACCESS SHARE MODE")
        .await
        .unwrap();

    let started = Instant::now();
    let out = origin(
        &["migrate"],
        &[("DATABASE_URL", &db.url), ("MIGRATION_LOCK_TIMEOUT", "1")],
    );
    assert!(!out.status.success(), "the blocked migration fails");
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MIGRATION_LOCK_TIMEOUT (1 s)"), "{err}");
    let pending: i64 = client
        .query_one(
            "SELECT count(*) FROM refinery_schema_history WHERE version = 9",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0, "nothing applied");

    let keys = keygen();
    let port = free_port();
    let mut serve = testkit::process::spawn(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", &db.url)
            .env("MIGRATION_LOCK_TIMEOUT", "60")
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("METRICS_BIND", "off")
            .env("ORIGIN_SIGNING_SECRET", SIGNING)
            .env("RESET_TOKEN_SECRET", RESET)
            .env("JWT_PRIVATE_KEY", value(&keys, "JWT_PRIVATE_KEY"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let readyz = loop {
        if let Ok(reply) = http.get(format!("{base}/readyz")).send().await {
            break reply;
        }
        assert!(serve.exit_status().is_none(), "serve exited");
        assert!(Instant::now() < deadline, "serve never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(readyz.status(), 503);
    assert_eq!(
        readyz.json::<serde_json::Value>().await.unwrap()["status"],
        "migrating"
    );
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let login = http
        .post(format!("{base}/internal/tokens"))
        .json(&serde_json::json!({"email": "a@example.com", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 503);
    assert_eq!(login.headers()["retry-after"], "1");
    assert_eq!(
        login.json::<serde_json::Value>().await.unwrap(),
        shared::api::detail(shared::api::DETAIL_UNAVAILABLE)
    );

    // The long transaction ends: the migration runs and the replica is ready.
    holder.batch_execute("COMMIT").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = http.get(format!("{base}/readyz")).send().await.unwrap();
        if reply.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready after the lock went");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unsigned = http
        .get(format!("{base}/internal/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401, "the application answers now");
    serve.stop();
}
