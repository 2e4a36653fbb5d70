//! docs/deploy.md §4, the signing-key rotation, on three origins behind a real load balancer
//! (HAProxy, Debian's package) under load. The section's `bash replicas` blocks run as the
//! guide's runbook blocks do (`bash -euo pipefail` in one scratch directory, the built `origin`
//! first on `PATH`); a `bash replicas serve` block is what each replica runs, restarted one at a
//! time as an orchestrator rolls a deployment: SIGTERM, out of the balancer, started again,
//! back in once `/readyz` answers. Its `bash cloudflare` blocks change the edge's
//! `JWT_PUBLIC_KEYS`: here the clients play the edge (as `runbook.rs` does), verifying each
//! access token with the keys the edge holds at that moment and signing each call to the origin
//! with `ORIGIN_SIGNING_SECRET`.
//!
//! Throughout, clients keep refreshing their sessions (each on whichever replica the balancer
//! picks) and reading their profile with the new access token. The guide's promise: not one
//! 401 and not one 5xx, from the first restart to the last; a refresh token signed by the old
//! key still rotates after the switch and is refused once the key is retired.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::keys::VerifyingKeys;
use shared::signing::{Identity, RequestSigner};
use shared::token::TokenVerifier;
use testkit::balancer::{Balancer, CHECK_INTERVAL};
use testkit::guide::{
    blocks_path, fenced_blocks, guide, jwks_kids, kid, mark, shell_values, Block,
};
use testkit::process::{spawn, wait_until_serving, Group};
use testkit::{free_port, read, Reply, TestDb, PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_origin-under-test");
const REPLICAS: usize = 3;
const CLIENTS: usize = 6;
const BLOCK_LIMIT: Duration = Duration::from_secs(60);

/// §4's blocks, in order: (mark, a command the block runs, the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    StageKeys,
    EdgeBoth,
    StagedServe,
    Switch,
    SwitchedServe,
    EdgeNew,
    Retire,
    RetiredServe,
}

const STEPS: [(&str, &str, Step); 8] = [
    ("replicas", "jq", Step::StageKeys),
    ("cloudflare", "< both.jwks", Step::EdgeBoth),
    ("replicas serve", "origin serve", Step::StagedServe),
    ("replicas", "JWT_PREVIOUS_PUBLIC_KEYS=", Step::Switch),
    ("replicas serve", "origin serve", Step::SwitchedServe),
    ("cloudflare", "< b.jwks", Step::EdgeNew),
    ("replicas", "sed -i", Step::Retire),
    ("replicas serve", "origin serve", Step::RetiredServe),
];

/// The blocks' world: a scratch directory, their environment, the replicas.
struct Deployment {
    root: PathBuf,
    work: PathBuf,
    env: BTreeMap<&'static str, String>,
    ports: [u16; REPLICAS],
    replicas: [Option<Group>; REPLICAS],
    http: reqwest::Client,
    scripts: usize,
}

impl Deployment {
    fn new(database_url: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rotation-{}", uuid::Uuid::new_v4().simple()));
        let work = root.join("work");
        let bin = root.join("bin");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("origin")).unwrap();
        let env = BTreeMap::from([
            ("PATH", blocks_path(&bin)),
            ("HOME", std::env::var("HOME").unwrap_or_else(|_| "/".into())),
            ("DATABASE_URL", database_url.to_owned()),
            ("METRICS_BIND", "off".to_owned()),
            ("JANITOR_INTERVAL", "0".to_owned()),
            // The guide's setting behind a balancer: two of its check intervals, and a margin.
            ("SHUTDOWN_DELAY", "2".to_owned()),
        ]);
        Self {
            root,
            work,
            env,
            ports: [free_port(), free_port(), free_port()],
            replicas: [None, None, None],
            http: reqwest::Client::new(),
            scripts: 0,
        }
    }

    /// `bash -euo pipefail <text>` in the scratch directory with the blocks' environment only,
    /// output to `<n>.log`.
    fn bash(&mut self, text: &str, bind: Option<u16>) -> (Command, PathBuf) {
        self.scripts += 1;
        let script = self.root.join(format!("{:02}.sh", self.scripts));
        let log = self.root.join(format!("{:02}.log", self.scripts));
        std::fs::write(&script, text).unwrap();
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail"])
            .arg(&script)
            .current_dir(&self.work)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(port) = bind {
            cmd.env("BIND", format!("127.0.0.1:{port}"));
        }
        (cmd, log)
    }

    /// Runs a block to its end (bounded); panics with its output if it fails.
    fn run(&mut self, block: &Block) {
        let (mut cmd, log) = self.bash(&block.text, None);
        let mut group = spawn(&mut cmd);
        let deadline = Instant::now() + BLOCK_LIMIT;
        let status = loop {
            if let Some(status) = group.exit_status() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "docs/deploy.md:{}: not done within {BLOCK_LIMIT:?}",
                block.line
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "docs/deploy.md:{} failed ({status}):\n{}\n{}",
            block.line,
            block.text,
            std::fs::read_to_string(&log).unwrap()
        );
    }

    /// Replica `i` runs `block` on its port; returns once it is ready.
    async fn start(&mut self, i: usize, block: &Block) {
        let (mut cmd, log) = self.bash(&block.text, Some(self.ports[i]));
        let mut group = spawn(&mut cmd);
        let readyz = format!("http://127.0.0.1:{}/readyz", self.ports[i]);
        wait_until_serving(&self.http, &readyz, BLOCK_LIMIT, &mut group, &log).await;
        self.replicas[i] = Some(group);
    }

    /// SIGTERM to replica `i`, as an orchestrator stops a container, and waits until its port
    /// is free (its shell ends at once, while the origin drains in-flight requests).
    async fn stop(&mut self, i: usize) {
        let Some(mut group) = self.replicas[i].take() else {
            return;
        };
        group.stop();
        let address = format!("127.0.0.1:{}", self.ports[i]);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&address).is_ok() {
            assert!(Instant::now() < deadline, "replica {i} still listens");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A rolling restart: one replica at a time, each out of the balancer before it starts
    /// again and back in (its first check passed) before the next one stops.
    async fn roll(&mut self, block: &Block) {
        for i in 0..REPLICAS {
            self.stop(i).await;
            // The balancer has seen two failed checks: no request goes to the port any more.
            tokio::time::sleep(CHECK_INTERVAL * 3).await;
            self.start(i, block).await;
            tokio::time::sleep(CHECK_INTERVAL * 2).await;
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.work.join(name))
            .unwrap_or_else(|e| panic!("{name} in the guide's directory: {e}"))
    }

    fn origin_env(&self) -> BTreeMap<String, String> {
        shell_values(&self.file("origin.env"))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for group in self.replicas.iter_mut().flatten() {
            group.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What the clients play: the edge, with its `JWT_PUBLIC_KEYS` and `ORIGIN_SIGNING_SECRET`.
struct Edge {
    http: reqwest::Client,
    base: String,
    signer: RequestSigner,
    jwks: RwLock<String>,
}

impl Edge {
    async fn call(
        &self,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> Reply {
        let request = testkit::signed_request(
            &self.http,
            &self.signer,
            &self.base,
            method,
            path,
            identity,
            body,
        );
        read(request.send().await.expect("the balancer answers")).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Identity::Anonymous, Some(&body))
            .await
    }

    /// The identity the edge forwards for `access`, or `None` where it would answer 401.
    fn verify(&self, access: &str) -> Option<Identity> {
        let keys = VerifyingKeys::from_jwks_json(&self.jwks.read().unwrap()).unwrap();
        let claims = TokenVerifier::new(keys, testkit::audience())
            .access(access, testkit::now())
            .ok()?;
        Some(Identity::from(&claims))
    }

    async fn login(&self, email: &str) -> (String, String) {
        let reply = self
            .post(
                "/internal/tokens",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{email}: {}", reply.body);
        pair(&reply)
    }

    async fn refresh(&self, refresh: &str) -> Reply {
        self.post("/internal/tokens/refresh", json!({ "refresh": refresh }))
            .await
    }
}

fn pair(reply: &Reply) -> (String, String) {
    (
        reply.body["access"].as_str().unwrap().to_owned(),
        reply.body["refresh"].as_str().unwrap().to_owned(),
    )
}

/// One client's session, refreshed and used until `stop`: (what, status) counts.
async fn client(
    edge: Arc<Edge>,
    email: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
) -> BTreeMap<(&'static str, u16), usize> {
    let mut tally = BTreeMap::new();
    let (_, mut refresh) = edge.login(&email).await;
    while !stop.load(Ordering::SeqCst) {
        let reply = edge.refresh(&refresh).await;
        *tally.entry(("refresh", reply.status.as_u16())).or_default() += 1;
        if reply.status != StatusCode::OK {
            // A refused session signs in again, so the load goes on (and is counted).
            (_, refresh) = edge.login(&email).await;
            continue;
        }
        let access;
        (access, refresh) = pair(&reply);
        let Some(identity) = edge.verify(&access) else {
            *tally.entry(("edge verify", 401)).or_default() += 1;
            continue;
        };
        let me = edge.call(Method::GET, "/internal/me", identity, None).await;
        *tally.entry(("me", me.status.as_u16())).or_default() += 1;
        rounds.fetch_add(1, Ordering::SeqCst);
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_key_rotation_across_replicas_refuses_nothing() {
    let blocks = fenced_blocks(&guide());
    let section: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.section.starts_with("4."))
        .filter(|b| matches!(mark(b), Ok(Some(_))))
        .collect();
    let found: Vec<String> = section.iter().map(|b| b.info.clone()).collect();
    assert_eq!(section.len(), STEPS.len(), "§4's shell blocks: {found:?}");
    for (block, (info, command, step)) in section.iter().zip(STEPS) {
        assert!(
            block.info == format!("bash {info}") && block.text.contains(command),
            "docs/deploy.md:{} is not the block this test expects for {step:?} (```bash {info}, \
             running `{command}`): update the test's STEPS with the guide",
            block.line
        );
    }

    let db = TestDb::create().await;
    let mut deployment = Deployment::new(&db.url);
    // §1: the keys and secrets in origin.env, as the guide's reader has them.
    let keygen = blocks
        .iter()
        .find(|b| b.section.starts_with("1.") && b.text.contains("--format shell"))
        .expect("§1's keygen block");
    deployment.run(keygen);
    let serve = blocks
        .iter()
        .find(|b| b.section.starts_with("2.") && b.info == "bash runbook serve")
        .expect("§2's serve block");
    // The first replica migrates the database; the others find it done.
    for i in 0..REPLICAS {
        deployment.start(i, serve).await;
    }
    let balancer = Balancer::start(&deployment.root, &deployment.ports).await;
    let start_env = deployment.origin_env();
    let kid_a = jwks_kids(&start_env["JWT_PUBLIC_KEYS"])[0].clone();
    let edge = Arc::new(Edge {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: balancer.url(),
        signer: RequestSigner::new(start_env["ORIGIN_SIGNING_SECRET"].as_bytes()).unwrap(),
        jwks: RwLock::new(start_env["JWT_PUBLIC_KEYS"].clone()),
    });
    let mut emails = Vec::new();
    for n in 0..=CLIENTS {
        let email = format!("r{n}@example.com");
        let reply = edge
            .post(
                "/internal/users",
                json!({"email": email, "username": format!("r{n}"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        emails.push(email);
    }
    // Two sessions that sleep through the rotation, signed by A: one wakes after the switch,
    // one after the retirement.
    let (_, asleep_switch) = edge.login(&emails[CLIENTS]).await;
    let (_, asleep_retire) = edge.login(&emails[CLIENTS]).await;
    assert_eq!(kid(&asleep_switch), kid_a);

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = emails[..CLIENTS]
        .iter()
        .map(|email| {
            tokio::spawn(client(
                edge.clone(),
                email.clone(),
                stop.clone(),
                rounds.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let mut kid_b = String::new();

    for (block, (_, _, step)) in section.iter().zip(STEPS) {
        let before = rounds.load(Ordering::SeqCst);
        match step {
            Step::EdgeBoth => *edge.jwks.write().unwrap() = deployment.file("both.jwks"),
            Step::EdgeNew => *edge.jwks.write().unwrap() = deployment.file("b.jwks"),
            Step::StagedServe | Step::SwitchedServe | Step::RetiredServe => {
                deployment.roll(block).await
            }
            Step::StageKeys | Step::Switch | Step::Retire => deployment.run(block),
        }
        println!(
            "{step:?}: done after {:.1} s, {} client rounds during it",
            started.elapsed().as_secs_f64(),
            rounds.load(Ordering::SeqCst) - before
        );
        let env = deployment.origin_env();
        match step {
            Step::StageKeys => {
                let new = shell_values(&deployment.file("new.env"));
                kid_b = jwks_kids(&new["JWT_PUBLIC_KEYS"])[0].clone();
                assert_ne!(kid_a, kid_b, "a new key");
                assert_eq!(
                    jwks_kids(&deployment.file("both.jwks")),
                    [kid_a.as_str(), kid_b.as_str()]
                );
                assert_eq!(
                    jwks_kids(&env["JWT_PREVIOUS_PUBLIC_KEYS"]),
                    [kid_b.as_str()]
                );
                assert!(
                    env["JWT_PRIVATE_KEY"] == start_env["JWT_PRIVATE_KEY"],
                    "A signs"
                );
            }
            Step::StagedServe => {
                let (access, _) = edge.login(&emails[CLIENTS]).await;
                assert_eq!(
                    kid(&access),
                    kid_a,
                    "staged: every replica still signs with A"
                );
            }
            Step::Switch => {
                let new = shell_values(&deployment.file("new.env"));
                assert!(env["JWT_PRIVATE_KEY"] == new["JWT_PRIVATE_KEY"], "B's key");
                assert_eq!(
                    jwks_kids(&env["JWT_PREVIOUS_PUBLIC_KEYS"]),
                    [kid_a.as_str()]
                );
                for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "OTP_SECRET"] {
                    assert!(env[name] == start_env[name], "{name} is kept");
                }
            }
            Step::SwitchedServe => {
                let reply = edge.refresh(&asleep_switch).await;
                assert_eq!(reply.status, StatusCode::OK, "A's session: {}", reply.body);
                assert_eq!(kid(&pair(&reply).0), kid_b, "rotated into B's tokens");
                // Every client has rotated its session since (the guide's day, in short): no
                // A-signed token is in use any more.
                let now = rounds.load(Ordering::SeqCst);
                while rounds.load(Ordering::SeqCst) < now + 3 * CLIENTS {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Step::Retire => {
                assert!(!env.contains_key("JWT_PREVIOUS_PUBLIC_KEYS"));
                assert!(!deployment.work.join("new.env").exists());
            }
            Step::RetiredServe => {
                let reply = edge.refresh(&asleep_retire).await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNAUTHORIZED,
                    "A is gone: {}",
                    reply.body
                );
                let (access, _) = edge.login(&emails[CLIENTS]).await;
                assert_eq!(kid(&access), kid_b);
            }
            Step::EdgeBoth | Step::EdgeNew => {}
        }
    }

    stop.store(true, Ordering::SeqCst);
    let mut total: BTreeMap<(&'static str, u16), usize> = BTreeMap::new();
    for client in clients {
        for (k, v) in client.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    let requests: usize = total.values().sum();
    let refused: usize = total
        .iter()
        .filter(|((_, s), _)| *s == 401)
        .map(|(_, n)| n)
        .sum();
    let failed: usize = total
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    println!(
        "{requests} requests in {:.1} s over 9 replica restarts: {refused} refused (401), \
         {failed} failed (5xx); {total:?}",
        started.elapsed().as_secs_f64()
    );
    let unexpected: Vec<_> = total
        .iter()
        .filter(|((_, status), _)| *status != 200)
        .collect();
    assert!(
        unexpected.is_empty(),
        "every request answered 200: {unexpected:?}"
    );
    assert!(
        total.get(&("me", 200)).copied().unwrap_or(0) > 100,
        "the load ran: {total:?}"
    );
}
