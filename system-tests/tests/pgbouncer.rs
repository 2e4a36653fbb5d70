//! The origin behind a real PgBouncer in transaction pooling (`pool_mode = transaction`, two
//! server connections, no `max_prepared_statements`: what PgBouncer before 1.21 can do). With
//! DATABASE_STATEMENTS=unnamed, concurrent sign-ups, logins, refreshes, `me` and reset requests
//! all get their usual answers. The control: the same load with named statements through the
//! same PgBouncer fails, because a statement prepared on one server connection is executed on
//! another (or its name is already taken there).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::keys::{Ed25519PrivateKey, Jwks, VerifyingKeys};
use shared::signing::{Identity, RequestSigner};
use shared::token::TokenVerifier;
use testkit::process::Group;
use testkit::{free_port, TestDb, PASSWORD};

const SIGNING: &str = "pgbouncer-test-signing-secret-0123456789abc";
const RESET: &str = "pgbouncer-test-reset-secret-0123456789abcdef";
/// Users signing up at once: several times PgBouncer's two server connections.
const USERS: usize = 12;
/// `me` and refresh rounds per user after the login.
const ROUNDS: usize = 3;

/// The `pgbouncer` program: on PATH, or in Debian's `/usr/sbin` (not on every user's PATH).
fn pgbouncer_program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("pgbouncer"))
        .find(|program| program.is_file())
        .unwrap_or_else(|| {
            panic!("pgbouncer is not installed: `apt-get install pgbouncer` (Debian's package)")
        })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The last lines of a log, for failure messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// PgBouncer on a free loopback port in front of `db`, stopped (its process group) on drop.
struct PgBouncer {
    group: Group,
    port: u16,
    log: PathBuf,
}

impl PgBouncer {
    async fn start(dir: &Path, db: &TestDb) -> Self {
        let program = pgbouncer_program();
        let server = reqwest::Url::parse(&db.url).unwrap();
        let port = free_port();
        // `trust` for clients; the file still lists the user PgBouncer logs in as.
        std::fs::write(
            dir.join("userlist.txt"),
            format!(
                "\"{}\" \"{}\"\n",
                server.username(),
                server.password().unwrap_or_default()
            ),
        )
        .unwrap();
        let config = dir.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 {name} = host={host} port={server_port} dbname={name}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {auth_file}\n\
                 pool_mode = transaction\n\
                 default_pool_size = 2\n\
                 max_client_conn = 200\n",
                name = db.name,
                host = server.host_str().unwrap(),
                server_port = server.port().unwrap_or(5432),
                auth_file = dir.join("userlist.txt").display(),
            ),
        )
        .unwrap();
        let log = dir.join("pgbouncer.log");
        let output = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(program);
        if running_as_root() {
            // PgBouncer refuses to run as root.
            let _ = Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(dir)
                .status();
            command.args(["-u", "postgres"]);
        }
        let mut group = testkit::process::spawn(
            command
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::from(output.try_clone().unwrap()))
                .stderr(Stdio::from(output)),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = group.exit_status() {
                panic!("pgbouncer exited ({status}):\n{}", tail(&log));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer not listening within 15 s:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { group, port, log }
    }

    fn url(&self, db: &TestDb) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, db.name
        )
    }
}

/// An `origin serve` process and how to talk to it as the edge does.
struct Origin {
    group: Group,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
    signer: RequestSigner,
    verifier: TokenVerifier,
}

impl Origin {
    async fn serve(database_url: &str, statements: &str, log: PathBuf) -> Self {
        let key = Ed25519PrivateKey::from_seed([7; 32]);
        let jwks = Jwks {
            keys: vec![key.public_jwk()],
        };
        let port = free_port();
        let output = std::fs::File::create(&log).unwrap();
        let group = testkit::process::spawn(
            Command::new(env!("CARGO_BIN_EXE_origin-under-test"))
                .arg("serve")
                .env_clear()
                .env("DATABASE_URL", database_url)
                .env("DATABASE_STATEMENTS", statements)
                // More connections than PgBouncer has server connections: they share them.
                .env("DATABASE_POOL_SIZE", "8")
                .env("BIND", format!("127.0.0.1:{port}"))
                .env("METRICS_BIND", "off")
                // The janitor's session-level lock is not for transaction pooling (docs/deploy.md).
                .env("JANITOR_INTERVAL", "0")
                .env("ORIGIN_SIGNING_SECRET", SIGNING)
                .env("RESET_TOKEN_SECRET", RESET)
                .env("JWT_PRIVATE_KEY", key.to_pem())
                .stdin(Stdio::null())
                .stdout(Stdio::from(output.try_clone().unwrap()))
                .stderr(Stdio::from(output)),
        );
        let mut origin = Self {
            group,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::new(),
            signer: RequestSigner::new(SIGNING.as_bytes()).unwrap(),
            verifier: TokenVerifier::new(
                VerifyingKeys::from_jwks(&jwks).unwrap(),
                testkit::audience(),
            ),
        };
        let url = format!("{}/readyz", origin.base);
        testkit::process::wait_until_serving(
            &origin.http,
            &url,
            Duration::from_secs(60),
            &mut origin.group,
            &origin.log,
        )
        .await;
        origin
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let request = testkit::signed_request(
            &self.http,
            &self.signer,
            &self.base,
            method,
            path,
            identity,
            body,
        );
        let reply = testkit::read(request.send().await.expect("request sent")).await;
        (reply.status, reply.body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Identity::Anonymous, Some(&body))
            .await
    }

    async fn me(&self, access: &str) -> (StatusCode, Value) {
        let claims = self
            .verifier
            .access(access, testkit::now())
            .expect("a valid access token");
        self.send(Method::GET, "/internal/me", Identity::from(&claims), None)
            .await
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// An answer other than the expected one, at the first step where it happened.
struct Unexpected {
    step: String,
    status: StatusCode,
    body: Value,
}

fn describe(unexpected: &[Unexpected]) -> String {
    unexpected
        .iter()
        .map(|u| format!("{}: {} {}", u.step, u.status, u.body))
        .collect::<Vec<_>>()
        .join("\n")
}

fn expect(
    step: impl Into<String>,
    (status, body): (StatusCode, Value),
    expected: StatusCode,
) -> Result<Value, Unexpected> {
    if status == expected {
        Ok(body)
    } else {
        Err(Unexpected {
            step: step.into(),
            status,
            body,
        })
    }
}

/// A string field of an answer, or the answer as unexpected.
fn text(step: &str, body: &Value, field: &str) -> Result<String, Unexpected> {
    body[field].as_str().map(str::to_owned).ok_or(Unexpected {
        step: format!("{step}: no {field}"),
        status: StatusCode::OK,
        body: body.clone(),
    })
}

/// One user's session: sign-up, login, `me` and refresh rounds, a password-reset request.
async fn session(origin: &Origin, run: &str, i: usize) -> Result<(), Unexpected> {
    let email = format!("{run}-{i}@example.com");
    let registered = expect(
        "sign-up",
        origin
            .post(
                "/internal/users",
                json!({"email": email, "username": format!("{run}{i}"), "password": PASSWORD}),
            )
            .await,
        StatusCode::CREATED,
    )?;
    let id = registered["id"].as_i64();
    let tokens = expect(
        "login",
        origin
            .post(
                "/internal/tokens",
                json!({"email": email, "password": PASSWORD}),
            )
            .await,
        StatusCode::OK,
    )?;
    let mut access = text("login", &tokens, "access")?;
    let mut refresh = text("login", &tokens, "refresh")?;
    for round in 0..ROUNDS {
        let me = expect(
            format!("me, round {round}"),
            origin.me(&access).await,
            StatusCode::OK,
        )?;
        if me["email"] != email.as_str() || me["id"].as_i64() != id {
            return Err(Unexpected {
                step: format!("me, round {round}: another account"),
                status: StatusCode::OK,
                body: me,
            });
        }
        let rotated = expect(
            format!("refresh, round {round}"),
            origin
                .post("/internal/tokens/refresh", json!({ "refresh": refresh }))
                .await,
            StatusCode::OK,
        )?;
        let next = text("refresh", &rotated, "refresh")?;
        if next == refresh {
            return Err(Unexpected {
                step: format!("refresh, round {round}: not rotated"),
                status: StatusCode::OK,
                body: rotated,
            });
        }
        refresh = next;
        access = text("refresh", &rotated, "access")?;
    }
    let reset = expect(
        "password-reset code",
        origin
            .post(
                "/internal/password-reset/code",
                json!({"email": email, "code": "123456"}),
            )
            .await,
        StatusCode::ACCEPTED,
    )?;
    if reset != json!({}) {
        return Err(Unexpected {
            step: "password-reset code: body".into(),
            status: StatusCode::ACCEPTED,
            body: reset,
        });
    }
    Ok(())
}

/// Every user's session at once; the unexpected answers.
async fn load(origin: &Origin, run: &str) -> Vec<Unexpected> {
    futures::future::join_all((0..USERS).map(|i| session(origin, run, i)))
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

/// `origin serve` with DATABASE_STATEMENTS=unnamed and `env`, which must exit with an error
/// within 30 s: its output.
fn refused_start(database_url: &str, env: &[(&str, &str)]) -> String {
    let key = Ed25519PrivateKey::from_seed([7; 32]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_origin-under-test"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("DATABASE_STATEMENTS", "unnamed")
        .env("BIND", format!("127.0.0.1:{}", free_port()))
        .env("METRICS_BIND", "off")
        .env("ORIGIN_SIGNING_SECRET", SIGNING)
        .env("RESET_TOKEN_SECRET", RESET)
        .env("JWT_PRIVATE_KEY", key.to_pem())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("origin serve {env:?} through PgBouncer started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn unnamed_statements_work_behind_transaction_pooling_and_named_ones_do_not() {
    let dir = std::env::temp_dir().join(format!("pgbouncer-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = TestDb::create().await;
    let bouncer = PgBouncer::start(&dir, &db).await;
    // Through the pooler, serve neither migrates (the migration lock cannot be held) nor runs
    // the janitor (nor its lock): it refuses to start, and says what to do instead.
    let refused = refused_start(&bouncer.url(&db), &[]);
    assert!(
        refused.contains("JANITOR_INTERVAL=0") && refused.contains("origin janitor"),
        "{refused}"
    );
    let refused = refused_start(&bouncer.url(&db), &[("JANITOR_INTERVAL", "0")]);
    assert!(
        refused.contains("serve does not migrate through a pooler")
            && refused.contains("run `origin migrate` against PostgreSQL directly"),
        "{refused}"
    );
    // Migrations go to the server directly, as docs/deploy.md says.
    let (migrated, out, err) = testkit::run_origin(
        env!("CARGO_BIN_EXE_origin-under-test"),
        &db.url,
        &["migrate"],
    );
    assert!(migrated, "origin migrate: {out}{err}");

    let mut origin = Origin::serve(&bouncer.url(&db), "unnamed", dir.join("unnamed.log")).await;
    let unexpected = load(&origin, "unnamed").await;
    assert!(
        unexpected.is_empty(),
        "DATABASE_STATEMENTS=unnamed behind PgBouncer:\n{}\norigin log:\n{}\npgbouncer log:\n{}",
        describe(&unexpected),
        tail(&origin.log),
        tail(&bouncer.log)
    );
    let log = origin.log_text();
    assert!(!log.contains("prepared statement"), "{log}");
    origin.group.stop();
    // Every account was written, through PgBouncer.
    let users: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, USERS as i64);

    // The control: the default, named statements, through the same PgBouncer.
    let mut origin = Origin::serve(&bouncer.url(&db), "named", dir.join("named.log")).await;
    let unexpected = load(&origin, "named").await;
    let server_errors = unexpected
        .iter()
        .filter(|u| u.status.is_server_error())
        .count();
    let log = origin.log_text();
    assert!(
        server_errors > 0 || log.contains("prepared statement"),
        "named statements behind transaction pooling were expected to fail:\n{}\n{log}",
        describe(&unexpected)
    );
    origin.group.stop();
    let mut bouncer = bouncer;
    bouncer.group.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
