//! The test kit of the repository's integration, system and benchmark code (dev-only, never
//! shipped): a PostgreSQL database per test, a real SMTP listener, the origin application on
//! port 0 (`spawn_app()`), requests signed the way the edge signs them, free ports, and child
//! processes in their own process groups (`process`).

pub mod balancer;
pub mod certs;
pub mod cluster;
pub mod guide;
pub mod process;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use origin::config::{DatabaseArgs, EmailBackend, EmailSettings, Settings, TokenConfig};
use origin::startup::Application;
use rand_core::{OsRng, RngCore};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::keys::{Ed25519PrivateKey, Jwks, SigningKey, VerifyingKeys};
use shared::signing::{
    Identity, RequestSigner, SignedParts, HEADER_CLIENT_AGENT, HEADER_CLIENT_NETWORK,
    HEADER_IDENTITY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use shared::token::{Audience, Claims, ResetTokens, TokenIssuer, TokenVerifier};
use shared::validate::PasswordPolicy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const SIGNING_SECRET: &[u8] = b"test-origin-signing-secret-0123456789abcdef";
pub const RESET_SECRET: &[u8] = b"test-reset-token-secret-0123456789abcdefgh";
pub const PASSWORD: &str = "73926481";

pub fn audience() -> Audience {
    Audience {
        issuer: "auth-api".into(),
        audience: "auth-api".into(),
    }
}

/// A database of its own, dropped (with its connections) when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at DATABASE_URL ({url}): {e}"));
    tokio::spawn(conn);
    client
}

impl TestDb {
    /// Waits (at most `limit`) until the outbox holds no email left to send; panics after.
    pub async fn outbox_drained(&self, limit: Duration) {
        let client = self.client().await;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let pending: i64 = client
                .query_one(
                    "SELECT count(*) FROM email_outbox WHERE sent_at IS NULL",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pending} emails never sent"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = format!("test_origin_{}", uuid::Uuid::new_v4().simple());
        admin_client(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let mut url = reqwest::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
            admin_url,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        admin_client(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async context: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = admin_client(&admin_url).await;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// A real SMTP listener speaking enough of RFC 5321 for lettre: it records each message.
#[derive(Clone, Default)]
pub struct SmtpSink {
    messages: Arc<Mutex<Vec<String>>>,
    /// While set, a DATA command waits before its 354 answer (a send in progress).
    hold: Arc<std::sync::atomic::AtomicBool>,
    data_commands: Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpSink {
    /// Listens on `listener` until the test process ends.
    pub fn serve(listener: TcpListener) -> Self {
        let sink = Self::default();
        let messages = sink.messages.clone();
        let (hold, data_commands) = (sink.hold.clone(), sink.data_commands.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let messages = messages.clone();
                let (hold, data_commands) = (hold.clone(), data_commands.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP ready\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                messages
                                    .lock()
                                    .unwrap()
                                    .push(data.take().unwrap_or_default());
                                let _ = write.write_all(b"250 OK queued\r\n").await;
                            } else {
                                body.push_str(line.strip_prefix('.').unwrap_or(&line));
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                            "DATA" => {
                                data_commands.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                while hold.load(std::sync::atomic::Ordering::SeqCst) {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                data = Some(String::new());
                                b"354 End data with <CR><LF>.<CR><LF>\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 Bye\r\n").await;
                                break;
                            }
                            _ => b"502 Command not implemented\r\n",
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        sink
    }

    /// Holds (or releases) every DATA command before its 354 answer.
    pub fn hold(&self, on: bool) {
        self.hold.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// DATA commands received so far (sends that got as far as the message body).
    pub fn data_commands(&self) -> usize {
        self.data_commands.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// How many messages each recipient (`To:`) got.
    pub fn recipients(&self) -> std::collections::BTreeMap<String, usize> {
        let mut delivered = std::collections::BTreeMap::new();
        for message in self.messages() {
            let to = message
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap_or_else(|| panic!("no To: in {message}"))
                .trim()
                .to_owned();
            *delivered.entry(to).or_default() += 1;
        }
        delivered
    }

    /// Waits (bounded) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The 6-digit code in a reset email's plain-text part.
pub fn code_in(message: &str) -> String {
    let at = message
        .find("code is: ")
        .expect("the email states the code")
        + "code is: ".len();
    let code: String = message[at..].chars().take(6).collect();
    assert!(
        code.chars().all(|c| c.is_ascii_digit()),
        "code {code:?} in {message}"
    );
    code
}

pub struct Options {
    pub lockout_threshold: i32,
    pub lockout_account_threshold: i32,
    pub lockout_window: Duration,
    pub reuse_grace: i64,
    pub access_ttl: i64,
    pub policy: PasswordPolicy,
    /// `Some(port)`: EMAIL_BACKEND=smtp to 127.0.0.1:port.
    pub smtp_port: Option<u16>,
    /// METRICS_TOKEN.
    pub metrics_token: Option<&'static str>,
    /// DATABASE_POOL_SIZE.
    pub pool_size: usize,
    /// ARGON2_MAX_CONCURRENCY.
    pub argon2_threads: usize,
    /// ARGON2_QUEUE_DEPTH.
    pub argon2_queue_depth: usize,
    /// `Some(url)`: SEND_ACTIVATION_EMAIL=true with this ACTIVATION_URL.
    pub activation_url: Option<&'static str>,
    /// `Some(old)`: ORIGIN_SIGNING_SECRET lists `SIGNING_SECRET` then `old` (a rotation).
    pub previous_signing_secret: Option<&'static [u8]>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // The production defaults (LOCKOUT_THRESHOLD, LOCKOUT_ACCOUNT_THRESHOLD).
            lockout_threshold: 5,
            lockout_account_threshold: 100,
            lockout_window: Duration::from_secs(3600),
            // The production default: no grace, a replayed refresh token revokes its family.
            reuse_grace: 0,
            access_ttl: 300,
            policy: PasswordPolicy::Seed,
            smtp_port: None,
            metrics_token: None,
            pool_size: 8,
            argon2_threads: 2,
            argon2_queue_depth: 2 * origin::config::ARGON2_QUEUE_PER_THREAD,
            activation_url: None,
            previous_signing_secret: None,
        }
    }
}

pub struct TestApp {
    pub address: String,
    /// The METRICS_BIND listener (`/metrics`), a port of its own.
    pub metrics_address: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    pub signer: RequestSigner,
    pub verifier: TokenVerifier,
    pub resets: ResetTokens,
    /// Signs tokens with the app's own key (to forge edge cases the app would not issue).
    pub issuer: TokenIssuer,
    /// The app's public key as a JWKS document (what the edge would be given).
    pub public_jwks: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A fresh Ed25519 signing key and the JWKS (as JSON) holding its public half, for an origin
/// and the edge of one test.
pub fn signing_key() -> (Ed25519PrivateKey, String) {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let key = Ed25519PrivateKey::from_seed(seed);
    let jwks = serde_json::to_string(&Jwks {
        keys: vec![key.public_jwk()],
    })
    .expect("a JWKS serializes");
    (key, jwks)
}

/// An app that mails over SMTP (EMAIL_BACKEND=smtp) to a fresh [`SmtpSink`]: `options` with the
/// sink's port as `smtp_port`.
pub async fn spawn_app_mailing(options: Options) -> (TestApp, SmtpSink) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the SMTP sink");
    let port = listener.local_addr().expect("a bound listener").port();
    let sink = SmtpSink::serve(listener);
    let app = spawn_app_with(Options {
        smtp_port: Some(port),
        ..options
    })
    .await;
    (app, sink)
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let db = TestDb::create().await;
    let (key, _) = signing_key();
    let jwks = Jwks {
        keys: vec![key.public_jwk()],
    };
    let settings = Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseArgs {
            database_url: SecretString::from(db.url.clone()),
            database_pool_size: options.pool_size,
            database_statements: origin::config::Statements::Named,
            migration_lock_timeout: 5,
        },
        signer: match options.previous_signing_secret {
            None => RequestSigner::new(SIGNING_SECRET).unwrap(),
            Some(old) => RequestSigner::with_secrets(&[SIGNING_SECRET, old]).unwrap(),
        },
        tokens: TokenConfig {
            issuer: TokenIssuer::new(SigningKey::ed25519(&key), audience()),
            verifier: TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience()),
            resets: ResetTokens::new(RESET_SECRET, audience()).unwrap(),
            access_ttl: options.access_ttl,
            refresh_ttl: 86_400,
            reuse_grace: options.reuse_grace,
        },
        password_policy: options.policy,
        argon2_permits: options.argon2_threads,
        argon2_queue_depth: options.argon2_queue_depth,
        lockout_threshold: options.lockout_threshold,
        lockout_account_threshold: options.lockout_account_threshold,
        lockout_window: options.lockout_window,
        email: EmailSettings {
            backend: if options.smtp_port.is_some() {
                EmailBackend::Smtp
            } else {
                EmailBackend::Console
            },
            smtp_url: options
                .smtp_port
                .map(|p| SecretString::from(format!("smtp://127.0.0.1:{p}"))),
            from: "Auth API <no-reply@example.com>".into(),
        },
        metrics_token: options.metrics_token.map(SecretString::from),
        metrics_bind: Some("127.0.0.1:0".parse().unwrap()),
        audit_retention_days: origin::config::DEFAULT_AUDIT_RETENTION_DAYS,
        pending_account_days: origin::config::DEFAULT_PENDING_ACCOUNT_DAYS,
        tls: None,
        // Tests run the janitor themselves (origin::janitor::run_once).
        janitor_interval: None,
        shutdown_delay: std::time::Duration::ZERO,
        activation: options.activation_url.map(|url| {
            origin::config::Activation::new(
                url,
                &[RESET_SECRET],
                origin::config::DEFAULT_PENDING_ACCOUNT_DAYS,
            )
            .expect("a valid ACTIVATION_URL")
        }),
    };
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("METRICS_BIND is on")
    );
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        http: reqwest::Client::new(),
        db,
        signer: RequestSigner::new(SIGNING_SECRET).unwrap(),
        verifier: TokenVerifier::new(VerifyingKeys::from_jwks(&jwks).unwrap(), audience()),
        resets: ResetTokens::new(RESET_SECRET, audience()).unwrap(),
        issuer: TokenIssuer::new(SigningKey::ed25519(&key), audience()),
        public_jwks: serde_json::to_string(&jwks).unwrap(),
    }
}

/// Runs an `origin` binary (`bin`) as an operator would, against `db_url`: (success, stdout,
/// stderr).
pub fn run_origin(bin: &str, db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin)
        .args(args)
        .env_clear()
        .env("DATABASE_URL", db_url)
        .output()
        .expect("origin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A request to `{base}{path}` signed as the edge signs it, from an unknown client network.
pub fn signed_request(
    http: &reqwest::Client,
    signer: &RequestSigner,
    base: &str,
    method: Method,
    path: &str,
    identity: Identity,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let unknown = SeenClient::default();
    signed_request_from(http, signer, base, method, path, identity, body, unknown)
}

/// The client of a public request as the edge vouches for it (`""`: unknown).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeenClient<'a> {
    pub network: &'a str,
    pub agent: &'a str,
}

/// `signed_request` with the client the edge vouches for.
#[allow(clippy::too_many_arguments)]
pub fn signed_request_from(
    http: &reqwest::Client,
    signer: &RequestSigner,
    base: &str,
    method: Method,
    path: &str,
    identity: Identity,
    body: Option<&Value>,
    client: SeenClient<'_>,
) -> reqwest::RequestBuilder {
    let SeenClient {
        network: client_network,
        agent: client_agent,
    } = client;
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let timestamp = now();
    let signature = signer.sign(&SignedParts {
        method: method.as_str(),
        path_and_query: path,
        timestamp,
        identity,
        body: &bytes,
        client_network,
        client_agent,
    });
    let request = http
        .request(method, format!("{base}{path}"))
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_IDENTITY, identity.to_header())
        .header(HEADER_SIGNATURE, signature)
        .header(HEADER_CLIENT_NETWORK, client_network)
        .header(HEADER_CLIENT_AGENT, client_agent);
    if body.is_some() {
        request
            .header("content-type", "application/json")
            .body(bytes)
    } else {
        request
    }
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The identity the edge would forward for `access`, verified with the published `jwks` (JSON).
pub fn identity_for(jwks: &str, access: &str) -> Identity {
    let keys = VerifyingKeys::from_jwks_json(jwks).expect("a published JWKS");
    let claims = TokenVerifier::new(keys, audience())
        .access(access, now())
        .expect("an access token the published keys verify");
    Identity::from(&claims)
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A response read whole: status, headers and JSON body (`Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    /// Sends a request signed as the edge would, as `identity`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        self.send_at(&self.address, method, path, identity, body)
            .await
    }

    /// `send` to another origin instance (same secrets) at `base`.
    pub async fn send_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        let request = signed_request(&self.http, &self.signer, base, method, path, identity, body);
        read(request.send().await.expect("request sent")).await
    }

    /// `send` as a client on `network` (signed, as the edge forwards it).
    pub async fn send_from(
        &self,
        network: &str,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        let client = SeenClient { network, agent: "" };
        self.send_seen(client, method, path, identity, body).await
    }

    /// `send` as `client` (signed, as the edge forwards it).
    pub async fn send_seen(
        &self,
        client: SeenClient<'_>,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        let request = signed_request_from(
            &self.http,
            &self.signer,
            &self.address,
            method,
            path,
            identity,
            body,
            client,
        );
        read(request.send().await.expect("request sent")).await
    }

    /// A login from a client on `network`.
    pub async fn login_from(&self, network: &str, email: &str, password: &str) -> Reply {
        self.send_from(
            network,
            Method::POST,
            "/internal/tokens",
            Identity::Anonymous,
            Some(&json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Identity::Anonymous, Some(&body))
            .await
    }

    pub async fn register(&self, email: &str, username: &str, password: &str) -> Reply {
        self.post(
            "/internal/users",
            json!({"email": email, "username": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/internal/tokens",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh: &str) -> Reply {
        self.post("/internal/tokens/refresh", json!({ "refresh": refresh }))
            .await
    }

    /// Registers and logs in; returns (user id, access, refresh).
    pub async fn signed_up(&self, email: &str, username: &str) -> (i64, String, String) {
        let reply = self.register(email, username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let tokens = self.login(email, PASSWORD).await;
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
        (
            reply.body["id"].as_i64().unwrap(),
            tokens.body["access"].as_str().unwrap().to_owned(),
            tokens.body["refresh"].as_str().unwrap().to_owned(),
        )
    }

    /// The identity the edge forwards for a verified access token.
    pub fn identity(&self, access: &str) -> Identity {
        let claims: Claims = self
            .verifier
            .access(access, now())
            .expect("a valid access token");
        Identity::from(&claims)
    }

    /// An unsigned GET, as a probe or a stranger would send it.
    pub async fn get_unsigned(&self, path: &str) -> Reply {
        read(
            self.http
                .get(format!("{}{path}", self.address))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// `GET /metrics` on the METRICS_BIND listener, as a scraper would (no token).
    pub async fn metrics(&self) -> Reply {
        read(
            self.http
                .get(format!("{}/metrics", self.metrics_address))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    pub async fn me_as(&self, identity: Identity) -> Reply {
        self.send(Method::GET, "/internal/me", identity, None).await
    }

    pub async fn me(&self, access: &str) -> Reply {
        self.send(Method::GET, "/internal/me", self.identity(access), None)
            .await
    }

    /// A reset token for `email`, as the edge mints one after a correct code.
    pub fn reset_token(&self, email: &str) -> String {
        self.resets
            .issue(email, uuid::Uuid::new_v4().simple().to_string(), now(), 900)
            .unwrap()
    }

    pub async fn sql(&self, statement: &str) {
        self.db
            .client()
            .await
            .batch_execute(statement)
            .await
            .unwrap();
    }

    pub async fn count(&self, query: &str) -> i64 {
        self.db
            .client()
            .await
            .query_one(query, &[])
            .await
            .unwrap()
            .get(0)
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}
