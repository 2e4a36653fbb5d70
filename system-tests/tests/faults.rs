//! Faults on a bad day, with the real `origin` program: the process killed with SIGKILL in the
//! middle of sending an email, and PostgreSQL (a private cluster of this test) stopped and
//! started again under load.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::keys::Ed25519PrivateKey;
use shared::signing::{Identity, RequestSigner};
use testkit::cluster::PrivateCluster;
use testkit::{free_port, read, signed_request, Reply, SmtpSink, TestDb};
use tokio::net::TcpListener;

const SIGNING: &str = "faults-origin-signing-secret-0123456789abc";
const RESET: &str = "faults-reset-token-secret-0123456789abcdef";

/// The origin binary, killed (SIGKILL) when dropped.
struct Origin {
    child: Child,
    base: String,
}

impl Origin {
    async fn start(database_url: &str, port: u16, smtp_port: Option<u16>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin-under-test"));
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("DATABASE_POOL_SIZE", "4")
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("METRICS_BIND", "127.0.0.1:0")
            .env("ORIGIN_SIGNING_SECRET", SIGNING)
            .env("RESET_TOKEN_SECRET", RESET)
            .env(
                "JWT_PRIVATE_KEY",
                Ed25519PrivateKey::from_seed([9; 32]).to_pem(),
            )
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(smtp) = smtp_port {
            cmd.env("EMAIL_BACKEND", "smtp")
                .env("SMTP_URL", format!("smtp://127.0.0.1:{smtp}"))
                .env("EMAIL_FROM", "Auth API <no-reply@example.com>");
        }
        let origin = Self {
            child: cmd.spawn().expect("origin starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        origin.wait_ready(Duration::from_secs(30)).await;
        origin
    }

    async fn readyz(&self) -> Option<StatusCode> {
        reqwest::Client::new()
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()
            .map(|r| r.status())
    }

    async fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.readyz().await != Some(StatusCode::OK) {
            assert!(
                Instant::now() < deadline,
                "origin not ready at {}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A request signed as the edge signs it.
async fn signed(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    identity: Identity,
    body: Option<Value>,
) -> Reply {
    let signer = RequestSigner::new(SIGNING.as_bytes()).unwrap();
    let request = signed_request(http, &signer, base, method, path, identity, body.as_ref())
        .timeout(Duration::from_secs(10));
    match request.send().await {
        Ok(response) => read(response).await,
        Err(e) => Reply {
            status: if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            },
            headers: Default::default(),
            body: Value::Null,
        },
    }
}

async fn register(http: &reqwest::Client, base: &str, email: &str) -> i64 {
    let username = email.split('@').next().unwrap();
    let reply = signed(
        http,
        base,
        Method::POST,
        "/internal/users",
        Identity::Anonymous,
        Some(json!({"email": email, "username": username, "password": "73926481"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn origin_killed_mid_send_delivers_the_email_once_after_restart() {
    let db = TestDb::create().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = listener.local_addr().unwrap().port();
    let sink = SmtpSink::serve(listener);
    sink.hold(true);
    let http = reqwest::Client::new();
    let port = free_port();
    let mut origin = Origin::start(&db.url, port, Some(smtp_port)).await;
    register(&http, &origin.base, "kim@example.com").await;
    let queued = signed(
        &http,
        &origin.base,
        Method::POST,
        "/internal/password-reset/code",
        Identity::Anonymous,
        Some(json!({"email": "kim@example.com", "code": "314159"})),
    )
    .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);

    // The sender reached DATA; the SMTP server holds it there. Kill the origin now.
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.data_commands() == 0 {
        assert!(Instant::now() < deadline, "the sender never reached DATA");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    origin.kill();
    sink.hold(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().len(),
        0,
        "an unfinished SMTP transaction delivers nothing"
    );

    // Restarted, it sends the row it had not committed as sent: exactly once.
    let _origin = Origin::start(&db.url, port, Some(smtp_port)).await;
    let messages = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(messages.len(), 1, "delivered after the restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "delivered once, not twice");
    assert_eq!(testkit::code_in(&messages[0]), "314159");
    let row = db
        .client()
        .await
        .query_one(
            "SELECT message_id::text, sent_at IS NOT NULL, attempts FROM email_outbox",
            &[],
        )
        .await
        .unwrap();
    let (message_id, sent, attempts): (String, bool, i32) = (row.get(0), row.get(1), row.get(2));
    assert!(sent);
    assert_eq!(
        attempts, 1,
        "the killed attempt was rolled back with its transaction"
    );
    assert!(
        messages[0].contains(&format!("Message-ID: <{message_id}@example.com>")),
        "the Message-ID is the row's, the same on any retry: {}",
        messages[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_is_survived() {
    let cluster = PrivateCluster::create();
    let origin = Origin::start(&cluster.url(), free_port(), None).await;
    let http = reqwest::Client::new();
    register(&http, &origin.base, "load@example.com").await;
    // A real login's identity: an access token is bound to its session.
    let login = signed(
        &http,
        &origin.base,
        Method::POST,
        "/internal/tokens",
        Identity::Anonymous,
        Some(json!({"email": "load@example.com", "password": "73926481"})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let jwks = serde_json::to_string(&shared::keys::Jwks {
        keys: vec![Ed25519PrivateKey::from_seed([9; 32]).public_jwk()],
    })
    .unwrap();
    let identity = testkit::identity_for(&jwks, login.body["access"].as_str().unwrap());

    // Four clients reading /internal/me in a loop, each answer timestamped.
    let answers: Arc<Mutex<Vec<(Instant, StatusCode)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (http, base, answers, stop) = (
            http.clone(),
            origin.base.clone(),
            answers.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let reply = signed(&http, &base, Method::GET, "/internal/me", identity, None).await;
                answers.lock().unwrap().push((Instant::now(), reply.status));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stopping = Instant::now();
    tokio::task::block_in_place(|| cluster.stop());
    let mut saw_unready = false;
    for _ in 0..50 {
        if origin.readyz().await == Some(StatusCode::SERVICE_UNAVAILABLE) {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_unready, "/readyz says 503 while PostgreSQL is down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cluster.start());
    let back = Instant::now();
    origin.wait_ready(Duration::from_secs(10)).await;
    let ready_after = back.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let answers = answers.lock().unwrap();
    let before: Vec<_> = answers.iter().filter(|(t, _)| *t < stopping).collect();
    let during: Vec<_> = answers
        .iter()
        .filter(|(t, _)| *t >= stopping && *t < back + Duration::from_secs(5))
        .collect();
    let after: Vec<_> = answers
        .iter()
        .filter(|(t, _)| *t >= back + Duration::from_secs(5))
        .collect();
    assert!(before.iter().all(|(_, s)| *s == StatusCode::OK));
    let failed_during = during.iter().filter(|(_, s)| *s != StatusCode::OK).count();
    let errors_during: Vec<_> = during
        .iter()
        .filter(|(_, s)| *s != StatusCode::OK && *s != StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        errors_during.is_empty(),
        "during the outage the origin answers 200 or 503, got {:?}",
        errors_during.iter().take(5).collect::<Vec<_>>()
    );
    assert!(!after.is_empty(), "load continued after the restart");
    let bad_after: Vec<_> = after.iter().filter(|(_, s)| *s != StatusCode::OK).collect();
    assert!(
        bad_after.is_empty(),
        "{} of {} answers not 200 from 5 s after PostgreSQL was back: {:?}",
        bad_after.len(),
        after.len(),
        bad_after.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "PostgreSQL down ~2 s: {} answers before (all 200), {} during the outage and the 5 s after \
         ({} answered 503, none 500), {} after (all 200); /readyz 200 again {:.1} s after the restart",
        before.len(),
        during.len(),
        failed_during,
        after.len(),
        ready_after.as_secs_f64()
    );
}
