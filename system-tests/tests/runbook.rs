//! docs/deploy.md is a runbook: its `bash runbook` blocks run here in document order, as an
//! operator without a Docker engine or a Cloudflare account runs them (each with `bash -euo
//! pipefail` in one scratch directory, the built `origin` first on `PATH`, a fresh database in
//! `DATABASE_URL`, free ports in `BIND` and `METRICS_BIND`), and between blocks the test checks
//! what the guide promises: keys that work, a healthy origin, the janitor, a
//! `pg_dump`/`pg_restore` round trip that loses no user and keeps tokens valid, an upgrade, a
//! rollback's status, the Django import and the observing commands. Every shell block carries a
//! mark, so a new one is either run here (or by `rotation.rs`) or says why it cannot be.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::signing::{Identity, RequestSigner};
use testkit::guide::{blocks_path, fenced_blocks, guide, jwks_kids, mark, shell_values, Block};
use testkit::process::{repo_root, spawn, wait_until_serving, Group};
use testkit::{free_port, Reply, TestDb, PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_origin-under-test");

/// Any one block; a serve block's origin must answer /readyz within `SERVE_LIMIT`.
const BLOCK_LIMIT: Duration = Duration::from_secs(120);
const SERVE_LIMIT: Duration = Duration::from_secs(60);

/// Typed at the guide's password prompt of `create-superuser`.
const ADMIN_PASSWORD: &str = "runbook-admin-52817";

#[test]
fn every_shell_block_is_marked() {
    let blocks = fenced_blocks(&guide());
    let errors: Vec<String> = blocks.iter().filter_map(|b| mark(b).err()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let marks: Vec<(&str, bool)> = blocks.iter().filter_map(|b| mark(b).unwrap()).collect();
    assert!(
        marks.contains(&("runbook", false)) && marks.contains(&("runbook", true)),
        "no runbook block found: is the parser still reading the guide? {marks:?}"
    );
    assert!(
        mark(&Block {
            section: "test".into(),
            info: "bash".into(),
            text: String::new(),
            line: 0,
        })
        .is_err(),
        "an unmarked block is refused"
    );
}

/// The guide's `runbook` blocks, in order: what the test checks around each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    KeygenEnv,
    KeygenShell,
    Migrate,
    Serve,
    Health,
    Superuser,
    Janitor,
    Backup,
    Restore,
    RestoredServe,
    UpgradeMigrate,
    UpgradeServe,
    RollbackStatus,
    ImportDatabase,
    ImportJson,
    Observe,
}

/// (the block's section heading starts with, a command the block runs, the step).
const STEPS: [(&str, &str, Step); 16] = [
    (
        "1.",
        "--worker-secrets worker-secrets.json > .env",
        Step::KeygenEnv,
    ),
    ("1.", "--format shell", Step::KeygenShell),
    ("2.", "origin migrate", Step::Migrate),
    ("2.", "origin serve", Step::Serve),
    ("2.", "origin healthcheck", Step::Health),
    ("2.", "origin create-superuser", Step::Superuser),
    ("Retention", "origin janitor", Step::Janitor),
    ("5.", "pg_dump -Fc", Step::Backup),
    ("5.", "pg_restore", Step::Restore),
    ("5.", "origin serve", Step::RestoredServe),
    ("6.", "origin migrate", Step::UpgradeMigrate),
    ("6.", "origin serve", Step::UpgradeServe),
    ("6.", "origin migrate --status", Step::RollbackStatus),
    ("7.", "origin import-django --dry-run", Step::ImportDatabase),
    ("7.", "--from-json users.json", Step::ImportJson),
    ("8.", "/metrics", Step::Observe),
];

/// The blocks' world: a scratch directory, their environment, the origin they serve.
struct Runbook {
    /// Block scripts and their output; `work` (below it) is the blocks' directory.
    root: PathBuf,
    work: PathBuf,
    env: BTreeMap<&'static str, String>,
    bind: String,
    metrics_bind: String,
    base: String,
    http: reqwest::Client,
    serving: Option<Group>,
    blocks_run: usize,
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

impl Runbook {
    fn new(database_url: &str) -> Self {
        let root = std::env::temp_dir().join(format!("runbook-{}", uuid::Uuid::new_v4().simple()));
        let work = root.join("work");
        let origin_dir = root.join("bin");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&origin_dir).unwrap();
        // The binary cargo built for the tests, under the name the guide uses.
        std::os::unix::fs::symlink(BIN, origin_dir.join("origin")).unwrap();
        let bind = format!("127.0.0.1:{}", free_port());
        let metrics_bind = format!("127.0.0.1:{}", free_port());
        let mut env = BTreeMap::new();
        env.insert("PATH", blocks_path(&origin_dir));
        env.insert("HOME", std::env::var("HOME").unwrap_or_else(|_| "/".into()));
        env.insert("DATABASE_URL", database_url.to_owned());
        env.insert("BIND", bind.clone());
        env.insert("METRICS_BIND", metrics_bind.clone());
        Self {
            root,
            work,
            env,
            base: format!("http://{bind}"),
            bind,
            metrics_bind,
            http: reqwest::Client::new(),
            serving: None,
            blocks_run: 0,
        }
    }

    /// `bash -euo pipefail <the block>` in the scratch directory, only with the blocks'
    /// environment (no variable of the test's own leaks in); output to files under `root`.
    fn bash(&mut self, block: &Block, stdin: bool) -> (Command, PathBuf, PathBuf) {
        self.blocks_run += 1;
        let name = format!("{:02}", self.blocks_run);
        let script = self.root.join(format!("{name}.sh"));
        std::fs::write(&script, &block.text).unwrap();
        let (out, err) = (
            self.root.join(format!("{name}.out")),
            self.root.join(format!("{name}.err")),
        );
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail"])
            .arg(&script)
            .current_dir(&self.work)
            .env_clear()
            .envs(&self.env)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        (cmd, out, err)
    }

    /// Runs a block to its end (bounded), `input` typed at its prompts; its stdout.
    fn run(&mut self, block: &Block, input: Option<&str>) -> String {
        let (mut cmd, out, err) = self.bash(block, input.is_some());
        let mut group = spawn(&mut cmd);
        if let Some(input) = input {
            let mut stdin = group.child().stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        let deadline = Instant::now() + BLOCK_LIMIT;
        let status = loop {
            if let Some(status) = group.exit_status() {
                break status;
            }
            if Instant::now() > deadline {
                group.stop();
                panic!(
                    "docs/deploy.md:{}: not done within {BLOCK_LIMIT:?}",
                    block.line
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&out).unwrap();
        let stderr = std::fs::read_to_string(&err).unwrap();
        assert!(
            status.success(),
            "docs/deploy.md:{} ({}) failed ({status}):\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            block.line,
            block.section,
            block.text
        );
        stdout
    }

    /// Starts a `runbook serve` block as a service manager would (after stopping the one
    /// running, a restart) and waits until its origin is ready.
    async fn serve(&mut self, block: &Block) {
        self.stop_serving().await;
        let (mut cmd, _, err) = self.bash(block, false);
        let mut group = spawn(&mut cmd);
        // Panics (with the end of the origin's log, its stderr) when it exits or is not ready.
        let readyz = format!("{}/readyz", self.base);
        wait_until_serving(&self.http, &readyz, SERVE_LIMIT, &mut group, &err).await;
        self.serving = Some(group);
    }

    /// SIGTERM to the serving block's process group; then, since its shell ends at once while
    /// the origin drains (up to 5 s), waits until nothing listens on BIND and METRICS_BIND any
    /// more, so the next `origin serve` can take them.
    async fn stop_serving(&mut self) {
        let Some(mut group) = self.serving.take() else {
            return;
        };
        let group_id = i32::try_from(group.child().id()).unwrap();
        group.stop();
        let deadline = Instant::now() + Duration::from_secs(15);
        while [&self.bind, &self.metrics_bind]
            .iter()
            .any(|address| std::net::TcpStream::connect(address.as_str()).is_ok())
        {
            if Instant::now() > deadline {
                // Still listening: the origin is alive, so its process group is still ours.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(group_id),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("the origin still listens 15 s after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.work.join(name))
            .unwrap_or_else(|e| panic!("{name} in the runbook's directory: {e}"))
    }

    fn origin_env(&self) -> BTreeMap<String, String> {
        shell_values(&self.file("origin.env"))
    }

    /// Requests signed as the edge signs them, with the secret in `origin.env`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        let secret = self.origin_env()["ORIGIN_SIGNING_SECRET"].clone();
        let signer = RequestSigner::new(secret.as_bytes()).unwrap();
        let request = testkit::signed_request(
            &self.http, &signer, &self.base, method, path, identity, body,
        );
        testkit::read(request.send().await.expect("request sent")).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Identity::Anonymous, Some(&body))
            .await
    }

    async fn register(&self, email: &str, username: &str) {
        let reply = self
            .post(
                "/internal/users",
                json!({"email": email, "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{email}: {}", reply.body);
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/internal/tokens",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// (access, refresh) of a login that must succeed.
    async fn tokens(&self, email: &str, password: &str) -> (String, String) {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, StatusCode::OK, "{email}: {}", reply.body);
        pair(&reply)
    }

    async fn refresh(&self, refresh: &str) -> Reply {
        self.post("/internal/tokens/refresh", json!({ "refresh": refresh }))
            .await
    }

    /// `GET /internal/me` as the edge forwards it, after verifying `access` with the public
    /// keys in `origin.env` (what the edge is given).
    async fn me(&self, access: &str) -> Reply {
        let identity = testkit::identity_for(&self.origin_env()["JWT_PUBLIC_KEYS"], access);
        self.send(Method::GET, "/internal/me", identity, None).await
    }
}

fn pair(reply: &Reply) -> (String, String) {
    (
        reply.body["access"].as_str().unwrap().to_owned(),
        reply.body["refresh"].as_str().unwrap().to_owned(),
    )
}

async fn count(db: &TestDb, query: &str) -> i64 {
    db.client()
        .await
        .query_one(query, &[])
        .await
        .unwrap()
        .get(0)
}

async fn user_id(db: &TestDb, email: &str) -> i64 {
    db.client()
        .await
        .query_one("SELECT id FROM users WHERE email = $1", &[&email])
        .await
        .unwrap()
        .get(0)
}

/// The Django original's users table (accounts/migrations/0001_initial.py), filled with the
/// users of origin/tests/fixtures/django_users.json (hashes made by Django itself).
async fn django_database(fixture: &str) -> TestDb {
    let django = TestDb::create().await;
    let client = django.client().await;
    client
        .batch_execute(
            "CREATE TABLE accounts_user (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                password varchar(128) NOT NULL,
                last_login timestamptz NULL,
                is_superuser boolean NOT NULL,
                username varchar(150) NOT NULL UNIQUE,
                first_name varchar(150) NOT NULL,
                last_name varchar(150) NOT NULL,
                is_staff boolean NOT NULL,
                is_active boolean NOT NULL,
                date_joined timestamptz NOT NULL,
                email varchar(254) NOT NULL UNIQUE,
                role varchar(16) NOT NULL,
                is_email_verified boolean NOT NULL)",
        )
        .await
        .unwrap();
    let records: Value = serde_json::from_str(fixture).unwrap();
    for record in records.as_array().unwrap() {
        let mut fields = record["fields"].clone();
        fields["id"] = record["pk"].clone();
        client
            .execute(
                "INSERT INTO accounts_user \
                 SELECT * FROM json_populate_record(NULL::accounts_user, $1::text::json)",
                &[&fields.to_string()],
            )
            .await
            .unwrap();
    }
    django
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_guide_runs_as_written() {
    let blocks = fenced_blocks(&guide());
    let runbook_blocks: Vec<&Block> = blocks
        .iter()
        .filter(|b| matches!(mark(b), Ok(Some(("runbook", _)))))
        .collect();
    let listed: Vec<String> = runbook_blocks
        .iter()
        .map(|b| format!("docs/deploy.md:{} ({})", b.line, b.section))
        .collect();
    assert_eq!(
        runbook_blocks.len(),
        STEPS.len(),
        "the guide's runbook blocks are not the {} this test checks: {listed:#?}",
        STEPS.len()
    );
    for (block, (section, command, step)) in runbook_blocks.iter().zip(STEPS) {
        let serve_step = matches!(step, Step::Serve | Step::RestoredServe | Step::UpgradeServe);
        assert!(
            block.section.starts_with(section)
                && block.text.contains(command)
                && (block.info == "bash runbook serve") == serve_step,
            "docs/deploy.md:{} ({}) is not the block this test expects for {step:?} (§{section}, \
             running `{command}`): update the test's STEPS and checks with the guide",
            block.line,
            block.section
        );
    }

    let fixture_path = repo_root().join("origin/tests/fixtures/django_users.json");
    let fixture = std::fs::read_to_string(&fixture_path).unwrap();
    let db = TestDb::create().await;
    let django = django_database(&fixture).await;
    let mut restored: Option<TestDb> = None;
    let mut rb = Runbook::new(&db.url);

    // What the steps carry to later ones.
    let (mut backup_refresh, mut users_at_backup) = (String::new(), 0);

    for (block, (_, _, step)) in runbook_blocks.iter().zip(STEPS) {
        // Before the block: what the operator has done by then outside the guide's commands.
        let mut input = None;
        match step {
            Step::Superuser => input = Some(format!("{ADMIN_PASSWORD}\n")),
            Step::Janitor => {
                // Used reset-token ids: one two days old (to delete), one of today (to keep).
                let admin = user_id(&db, "admin@example.com").await;
                db.client()
                    .await
                    .execute(
                        "INSERT INTO password_resets (jti, user_id, used_at) VALUES \
                         ($1, $3, now() - interval '2 days'), ($2, $3, now())",
                        &[&"runbook-old-reset", &"runbook-new-reset", &admin],
                    )
                    .await
                    .unwrap();
            }
            Step::Backup => {
                rb.register("someone@example.com", "someone").await;
                rb.register("grace@example.com", "grace").await;
                (_, backup_refresh) = rb.tokens("someone@example.com", PASSWORD).await;
                users_at_backup = count(&db, "SELECT count(*) FROM users").await;
            }
            Step::Restore => {
                // The guide: an empty database, DATABASE_URL pointed at it.
                let target = TestDb::create().await;
                rb.env.insert("DATABASE_URL", target.url.clone());
                restored = Some(target);
            }
            Step::ImportDatabase => input = Some(format!("{}\n", django.url)),
            Step::ImportJson => {
                // What `manage.py dumpdata accounts.User` printed where Django runs.
                std::fs::copy(&fixture_path, rb.work.join("users.json")).unwrap();
            }
            _ => {}
        }

        let stdout = if block.info.ends_with("serve") {
            rb.serve(block).await;
            String::new()
        } else {
            rb.run(block, input.as_deref())
        };

        // After it: what the guide says it did.
        match step {
            Step::KeygenEnv => {
                let env = rb.file(".env");
                for name in [
                    "JWT_PRIVATE_KEY",
                    "JWT_PUBLIC_KEYS",
                    "ORIGIN_SIGNING_SECRET",
                    "RESET_TOKEN_SECRET",
                    "OTP_SECRET",
                ] {
                    assert!(
                        env.lines().any(|l| l.starts_with(&format!("{name}="))),
                        ".env lacks {name}"
                    );
                }
                assert!(
                    !env.contains("='") && !env.contains("=\""),
                    ".env values are unquoted"
                );
                for secret in [".env", "worker-secrets.json"] {
                    assert_eq!(mode(&rb.work.join(secret)), 0o600, "{secret}");
                }
            }
            Step::KeygenShell => {
                let values = rb.origin_env();
                let worker: BTreeMap<String, String> =
                    serde_json::from_str(&rb.file("worker-secrets.json")).unwrap();
                assert_eq!(worker.len(), 4, "the Worker's four values");
                for (name, value) in &worker {
                    assert!(
                        values.get(name) == Some(value),
                        "worker-secrets.json's {name} is not origin.env's"
                    );
                }
                assert!(values.contains_key("JWT_PRIVATE_KEY"));
                assert_eq!(mode(&rb.work.join("origin.env")), 0o600);
                assert_eq!(jwks_kids(&values["JWT_PUBLIC_KEYS"]).len(), 1, "one key");
            }
            Step::Migrate => {
                let applied: u32 = stdout
                    .trim()
                    .strip_prefix("migrations applied: ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("origin migrate printed {stdout:?}"));
                assert!(applied > 0, "a fresh database gets every migration");
                assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);
            }
            Step::Health => {
                assert!(stdout.contains("healthy\n"), "{stdout}");
                assert!(stdout.contains(r#"{"status":"ready"}"#), "{stdout}");
            }
            Step::Superuser => {
                assert!(
                    stdout.contains("created superuser admin@example.com"),
                    "{stdout}"
                );
                let (access, _) = rb.tokens("admin@example.com", ADMIN_PASSWORD).await;
                let me = rb.me(&access).await;
                assert_eq!(me.status, StatusCode::OK, "{}", me.body);
                assert_eq!(me.body["email"], "admin@example.com");
                assert_eq!(me.body["role"], "admin", "{}", me.body);
            }
            Step::Janitor => {
                for (what, _) in origin::janitor::Purged::default().counts() {
                    assert!(stdout.contains(&format!("{what}: ")), "{what} in {stdout}");
                }
                assert!(stdout.contains("password_resets: 1 deleted"), "{stdout}");
                let left: Vec<String> = db
                    .client()
                    .await
                    .query("SELECT jti FROM password_resets", &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                assert_eq!(left, ["runbook-new-reset"]);
            }
            Step::Backup => {
                let dumps: Vec<PathBuf> = std::fs::read_dir(&rb.work)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| {
                        let name = p.file_name().unwrap().to_string_lossy();
                        name.starts_with("auth-") && name.ends_with(".dump")
                    })
                    .collect();
                assert_eq!(dumps.len(), 1, "{dumps:?}");
                assert!(std::fs::metadata(&dumps[0]).unwrap().len() > 0);
                assert_eq!(mode(&dumps[0]), 0o600, "the dump holds password hashes");
                // After the backup: not in it, so not in the restored database.
                rb.register("late@example.com", "late").await;
            }
            Step::Restore => {
                let target = restored.as_ref().unwrap();
                assert_eq!(
                    count(target, "SELECT count(*) FROM users").await,
                    users_at_backup
                );
            }
            Step::RestoredServe => {
                let target = restored.as_ref().unwrap();
                assert_eq!(
                    count(target, "SELECT count(*) FROM users").await,
                    users_at_backup,
                    "no user lost"
                );
                let (access, _) = rb.tokens("someone@example.com", PASSWORD).await;
                assert_eq!(rb.me(&access).await.body["email"], "someone@example.com");
                let reply = rb.refresh(&backup_refresh).await;
                assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "a refresh token issued before the backup: {}",
                    reply.body
                );
                let me = rb.me(&pair(&reply).0).await;
                assert_eq!(me.body["email"], "someone@example.com", "{}", me.body);
                let late = rb.login("late@example.com", PASSWORD).await;
                assert_eq!(
                    late.status,
                    StatusCode::UNAUTHORIZED,
                    "the origin serves the restored database"
                );
            }
            Step::UpgradeMigrate => {
                assert_eq!(stdout.trim(), "migrations applied: 0");
            }
            Step::RollbackStatus => {
                assert!(stdout.contains("applied      V1__initial"), "{stdout}");
                assert!(
                    stdout.contains(", 0 pending, 0 newer, 0 conflicting"),
                    "{stdout}"
                );
            }
            Step::UpgradeServe => {
                assert_eq!(
                    rb.login("someone@example.com", PASSWORD).await.status,
                    StatusCode::OK
                );
            }
            Step::ImportDatabase => {
                assert_eq!(
                    stdout.matches("read 6 users; imported").count(),
                    2,
                    "the dry run and the import: {stdout}"
                );
                assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
                let target = restored.as_ref().unwrap();
                assert!(count(target, "SELECT count(*) FROM users").await > users_at_backup);
                // Bob's hash is Django's argon2: he logs in with his Django password.
                let (access, _) = rb.tokens("bob@example.com", "58203941").await;
                let me = rb.me(&access).await;
                assert_eq!(me.body["id"], 5, "the Django id is kept: {}", me.body);
            }
            Step::ImportJson => {
                assert!(
                    stdout.contains("read 6 users; imported 0"),
                    "nothing new to import: {stdout}"
                );
            }
            Step::Observe => {
                assert!(
                    stdout.contains("origin_logins_total{"),
                    "the origin's metrics: {stdout}"
                );
                let audit = stdout
                    .lines()
                    .filter(|l| l.contains("someone@example.com"))
                    .collect::<Vec<_>>();
                assert!(
                    audit.iter().any(|l| l.contains("register")),
                    "the restored audit log: {stdout}"
                );
                assert!(audit.iter().any(|l| l.contains("login_ok")), "{stdout}");
            }
            Step::Serve => {}
        }
    }

    rb.stop_serving().await;
    std::fs::remove_dir_all(&rb.root).unwrap();
}
