//! The previous release (`RELEASES`, built from this repository's history by `cargo xtask
//! upgrade`) upgraded to this checkout and rolled back, under load through the Worker, as
//! docs/deploy.md §6 says an operator does it: two origins behind HAProxy, the Worker under
//! `wrangler dev` in front.
//!
//! 1. N-1 everywhere;
//! 2. origin N: `origin migrate` with the new binary while N-1 serves, then each replica in turn
//!    taken out of the balancer, stopped (SIGTERM), started on N and put back;
//! 3. edge N: the new Worker started, traffic moved to it (a deploy swaps Workers between two
//!    requests), the old one stopped;
//! 4. rollback: each origin replica back to N-1, on the schema N migrated.
//!
//! Clients sign up, sign in, read their profile, refresh one long-lived session (minted by
//! N-1, rotated by every version since) and ask for a reset code throughout. Every request must
//! succeed, not one 5xx nor 4xx, and every reset email is delivered exactly once.
//!
//! Ignored by `cargo test`: `cargo xtask upgrade` builds the previous release and runs it (and
//! `cargo xtask test` does when `migrations/` or the request signature changed since).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::balancer::{Balancer, CHECK_INTERVAL};
use testkit::process::{prebuilt_worker_config, spawn, wait_until_serving, wrangler_dev, Group};
use testkit::{free_port, read, SmtpSink, TestDb, PASSWORD};
use tokio::net::TcpListener;

const SIGNING: &str = "upgrade-origin-signing-secret-0123456789ab";
const RESET: &str = "upgrade-reset-token-secret-0123456789abcdef";
const OTP: &str = "upgrade-otp-secret-0123456789abcdefghijklmn";
const CLIENTS: usize = 6;
const REPLICAS: usize = 2;
/// How long each phase runs on its own, after its change.
const SETTLE: Duration = Duration::from_secs(4);
const PHASES: [&str; 4] = ["N-1", "origin N", "edge N", "origin N-1"];

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test is run by `cargo xtask upgrade`, which builds the previous release")
    })
}

/// The origins, their binaries and what they share.
struct Origins {
    dir: PathBuf,
    env: Vec<(String, String)>,
    ports: [u16; REPLICAS],
    running: [Option<Group>; REPLICAS],
    starts: usize,
}

impl Origins {
    fn command(&mut self, binary: &Path, args: &[&str]) -> (Command, PathBuf) {
        self.starts += 1;
        let log = self.dir.join(format!("origin-{:02}.log", self.starts));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        (cmd, log)
    }

    /// `binary` with `args`, to its end; its output.
    fn run(&mut self, binary: &Path, args: &[&str]) -> String {
        let (mut cmd, log) = self.command(binary, args);
        let status = cmd.status().unwrap();
        let output = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{} {args:?}: {output}", binary.display());
        output
    }

    async fn start(&mut self, i: usize, binary: &Path) {
        let (mut cmd, log) = self.command(binary, &["serve"]);
        cmd.env("BIND", format!("127.0.0.1:{}", self.ports[i]));
        let mut group = spawn(&mut cmd);
        let readyz = format!("http://127.0.0.1:{}/readyz", self.ports[i]);
        let http = reqwest::Client::new();
        wait_until_serving(&http, &readyz, Duration::from_secs(60), &mut group, &log).await;
        self.running[i] = Some(group);
    }

    /// Each replica in turn: out of the balancer, stopped once its requests in flight are done,
    /// started on `binary`, back in.
    async fn roll(&mut self, balancer: &Balancer, binary: &Path) {
        for i in 0..REPLICAS {
            balancer.set_state(i, "maint");
            tokio::time::sleep(CHECK_INTERVAL).await;
            if let Some(mut group) = self.running[i].take() {
                group.stop();
            }
            let address = format!("127.0.0.1:{}", self.ports[i]);
            while std::net::TcpStream::connect(&address).is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.start(i, binary).await;
            balancer.set_state(i, "ready");
            tokio::time::sleep(CHECK_INTERVAL * 2).await;
        }
    }
}

/// The Worker the clients reach: which one, changed by a deploy.
struct Edge {
    url: RwLock<String>,
    phase: AtomicUsize,
}

type Tally = BTreeMap<(usize, &'static str, u16), usize>;

/// One client until `stop`: a new account per round, and one session kept across every version.
async fn client(n: usize, edge: Arc<Edge>, stop: Arc<AtomicBool>) -> (Tally, Vec<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ip = format!("198.51.100.{}", 20 + n);
    let mut tally = Tally::new();
    let mut reset_for = Vec::new();
    let mut session: Option<String> = None;
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let email = format!("u{n}r{round}@example.com");
        let call = |route: &'static str,
                    method: reqwest::Method,
                    body: Option<Value>,
                    bearer: Option<String>| {
            let (http, edge, ip) = (http.clone(), edge.clone(), ip.clone());
            async move {
                let phase = edge.phase.load(Ordering::SeqCst);
                let url = format!("{}{route}", edge.url.read().unwrap());
                let mut request = http.request(method, url).header("CF-Connecting-IP", ip);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                let reply = read(request.send().await.expect("the edge answers")).await;
                (phase, reply)
            }
        };
        let count = |tally: &mut Tally, (phase, reply): &(usize, testkit::Reply), what| {
            *tally
                .entry((*phase, what, reply.status.as_u16()))
                .or_default() += 1;
        };
        let post = reqwest::Method::POST;
        let signed_up = call(
            "/api/auth/users/",
            post.clone(),
            Some(
                json!({"email": email, "username": format!("u{n}r{round}"), "password": PASSWORD}),
            ),
            None,
        )
        .await;
        count(&mut tally, &signed_up, "sign-up");
        let login = call(
            "/api/auth/jwt/create/",
            post.clone(),
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
        count(&mut tally, &login, "login");
        if login.1.status != StatusCode::OK {
            continue;
        }
        let access = login.1.body["access"].as_str().unwrap().to_owned();
        let refresh = login.1.body["refresh"].as_str().unwrap().to_owned();
        let me = call("/api/auth/me/", reqwest::Method::GET, None, Some(access)).await;
        count(&mut tally, &me, "me");
        // The long-lived session: minted in the first round, rotated in every one since.
        let kept = session.get_or_insert(refresh).clone();
        let rotated = call(
            "/api/auth/jwt/refresh/",
            post.clone(),
            Some(json!({ "refresh": kept })),
            None,
        )
        .await;
        count(&mut tally, &rotated, "refresh");
        if let Some(next) = rotated.1.body["refresh"].as_str() {
            session = Some(next.to_owned());
        }
        let reset = call(
            "/api/auth/password/reset/",
            post,
            Some(json!({ "email": email })),
            None,
        )
        .await;
        count(&mut tally, &reset, "reset");
        if reset.1.status == StatusCode::OK {
            reset_for.push(email);
        }
    }
    (tally, reset_for)
}

async fn start_edge(dir: &Path, name: &str, config: &Path, vars: &[String]) -> (Group, String) {
    let port = free_port();
    let state = dir.join(format!("state-{name}"));
    std::fs::create_dir_all(&state).unwrap();
    let log = dir.join(format!("wrangler-{name}.log"));
    let mut group = wrangler_dev(Some(config), port, &state, &log, vars);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_until_serving(
        &http,
        &format!("{url}/.well-known/jwks.json"),
        Duration::from_secs(300),
        &mut group,
        &log,
    )
    .await;
    (group, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "builds the previous release: run by `cargo xtask upgrade` (docs/testing.md)"]
async fn upgrading_and_rolling_back_under_load_fails_no_request() {
    let previous_version = required("PREVIOUS_VERSION");
    let previous = PathBuf::from(required("PREVIOUS_ORIGIN"));
    let previous_worker = PathBuf::from(required("PREVIOUS_WORKER_CONFIG"));
    let current = PathBuf::from(env!("CARGO_BIN_EXE_origin-under-test"));
    let current_worker = prebuilt_worker_config("upgrade", true);
    let dir = std::env::temp_dir().join(format!("upgrade-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();

    let db = TestDb::create().await;
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    let sink = SmtpSink::serve(smtp);
    let (key, jwks) = testkit::signing_key();
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.url.clone()),
        ("ORIGIN_SIGNING_SECRET", SIGNING.into()),
        ("RESET_TOKEN_SECRET", RESET.into()),
        ("JWT_PRIVATE_KEY", key.to_pem()),
        ("EMAIL_BACKEND", "smtp".into()),
        ("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("METRICS_BIND", "off".into()),
        ("JANITOR_INTERVAL", "0".into()),
        ("LOG_FORMAT", "json".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut origins = Origins {
        dir: dir.clone(),
        env,
        ports: [free_port(), free_port()],
        running: [None, None],
        starts: 0,
    };
    println!(
        "{previous_version}: {}",
        origins.run(&previous, &["--version"]).trim()
    );
    println!(
        "this checkout: {}",
        origins.run(&current, &["--version"]).trim()
    );
    for i in 0..REPLICAS {
        origins.start(i, &previous).await;
    }
    let balancer = Balancer::start(&dir, &origins.ports).await;
    let vars = vec![
        format!("ORIGIN_URL:{}", balancer.url()),
        format!("JWT_PUBLIC_KEYS:{jwks}"),
        format!("ORIGIN_SIGNING_SECRET:{SIGNING}"),
        format!("RESET_TOKEN_SECRET:{RESET}"),
        format!("OTP_SECRET:{OTP}"),
        // A few client addresses make all the load; the throttles are not under test.
        "THROTTLE_RATES:anon=100000/day,user=100000/day,auth=100000/min,password_reset=100000/hour,\
         password_reset_site=100000/hour,password_reset_provider=100000/hour,password_reset_all=100000/hour"
            .to_owned(),
    ];
    let (mut old_edge, old_url) = start_edge(&dir, "previous", &previous_worker, &vars).await;

    let edge = Arc::new(Edge {
        url: RwLock::new(old_url),
        phase: AtomicUsize::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(n, edge.clone(), stop.clone())))
        .collect();
    let started = Instant::now();
    let mark = |phase: usize| {
        edge.phase.store(phase, Ordering::SeqCst);
        println!(
            "{:>5.1} s: {}",
            started.elapsed().as_secs_f64(),
            PHASES[phase]
        );
    };
    mark(0);
    tokio::time::sleep(SETTLE).await;

    // Origin N: the schema first (N-1 serves on it), then the replicas one by one.
    println!(
        "migrate --status on the N-1 schema:\n{}",
        origins.run(&current, &["migrate", "--status"])
    );
    println!("{}", origins.run(&current, &["migrate"]).trim());
    origins.roll(&balancer, &current).await;
    mark(1);
    tokio::time::sleep(SETTLE).await;

    // Edge N: started beside the old one; new requests go to it, then the old one stops.
    let (_new_edge, new_url) = start_edge(&dir, "current", &current_worker, &vars).await;
    *edge.url.write().unwrap() = new_url.clone();
    mark(2);
    let health = reqwest::get(format!("{new_url}/healthz")).await.unwrap();
    assert_eq!(
        health.headers()["x-auth-api-version"],
        format!("{}+{}", origin::VERSION, origin::COMMIT).as_str(),
        "this checkout's Worker serves"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    old_edge.stop();
    tokio::time::sleep(SETTLE).await;

    // Rollback: the origins back to N-1, on the schema N migrated.
    println!(
        "migrate --status on the N schema, by N-1:\n{}",
        origins.run(&previous, &["migrate", "--status"])
    );
    origins.roll(&balancer, &previous).await;
    mark(3);
    tokio::time::sleep(SETTLE).await;
    stop.store(true, Ordering::SeqCst);

    let mut total = Tally::new();
    let mut reset_for = Vec::new();
    for client in clients {
        let (tally, emails) = client.await.unwrap();
        for (k, v) in tally {
            *total.entry(k).or_default() += v;
        }
        reset_for.extend(emails);
    }
    let requests: usize = total.values().sum();
    for (phase, name) in PHASES.iter().enumerate() {
        let of_phase: Vec<String> = total
            .iter()
            .filter(|((p, _, _), _)| *p == phase)
            .map(|((_, what, status), n)| format!("{what} {status}: {n}"))
            .collect();
        println!("{name}: {}", of_phase.join(", "));
    }
    let failed: usize = total
        .iter()
        .filter(|((_, _, status), _)| *status >= 500)
        .map(|(_, n)| n)
        .sum();
    let unexpected: Vec<_> = total
        .iter()
        .filter(|((_, what, status), _)| {
            !matches!(
                (*what, *status),
                ("sign-up", 201) | ("login" | "me" | "refresh" | "reset", 200)
            )
        })
        .collect();
    println!(
        "{requests} requests in {:.1} s: {failed} answered 5xx",
        started.elapsed().as_secs_f64()
    );
    assert!(
        unexpected.is_empty(),
        "every request succeeded: {unexpected:?}"
    );
    for phase in 0..PHASES.len() {
        assert!(
            total.get(&(phase, "reset", 200)).copied().unwrap_or(0) > 0,
            "the load ran in every phase: {total:?}"
        );
    }

    // Every reset answered 200 queued one email, delivered once.
    db.outbox_drained(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = sink.recipients();
    let expected: BTreeMap<String, usize> = reset_for.iter().map(|e| (e.clone(), 1)).collect();
    println!(
        "{} reset emails queued, {} delivered",
        reset_for.len(),
        delivered.values().sum::<usize>()
    );
    assert_eq!(
        delivered, expected,
        "each reset email delivered exactly once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
