//! The system benchmark (`./scripts/bench` runs it after the micro-benchmarks): the origin
//! binary on a fresh PostgreSQL database, our Worker on workerd (Miniflare, workerd's own
//! socket) and under `wrangler dev`, the JavaScript `jose` Worker on the same workerd, and the
//! Django original under gunicorn, all loaded from this process over loopback at the same
//! concurrency, with `pgbench -S` and the argon2 ceiling beside them. Folds in the micro
//! results (criterion's estimates, the Wasm run's JSON), prints one table and writes it as
//! JSON and Markdown.
//!
//! Environment: `BENCH_SECONDS` per workload (default 8), `BENCH_SMOKE=1` (a bounded check
//! that every workload runs and answers right; CI), `BENCH_OUT` (default `bench/results`, or
//! `target/bench/smoke` for a smoke run), `BENCH_ONLY` (sections: origin, workerd, wrangler,
//! django; default all), `BENCH_DJANGO_DIR` (the Django reference; default
//! `../shared/reference/django`), `BENCH_JOSE_DIR` (the built jose peer, from scripts/bench).
//! A workload with a wrong answer fails the run.

use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::keys::{Ed25519PrivateKey, Jwks, SigningKey};
use shared::signing::{Identity, RequestSigner};
use shared::token::{Claims, TokenIssuer, TokenKind};
use testkit::process::{
    built_worker, prebuilt_worker_config, repo_root, wait_until_up, wrangler_dev, Group,
};
use testkit::{free_port, signed_request, TestDb, PASSWORD};

const CONCURRENCY: usize = 16;
const SIGNING: &str = "bench-origin-signing-secret-0123456789abcdef";
const RESET: &str = "bench-reset-token-secret-0123456789abcdefghij";
const OTP: &str = "bench-otp-secret-0123456789abcdefghijklmnopq";
const HS_SECRET: &str = "bench-hs256-secret-0123456789abcdefghijklmn";
/// Limits no benchmark reaches (the DO calls still happen on every request).
const RATES: &str = "anon=100000/sec,user=100000/sec,auth=100000/sec,password_reset=100000/sec";
/// The diagnostic rows: `anon` and `user` not throttled, so no limiter call on verify and /me.
const RATES_OFF: &str = "anon=none,user=none,auth=100000/sec,password_reset=100000/sec";
const UNTHROTTLED: &str = "ours (workerd, anon/user=none)";
const COMPATIBILITY_DATE: &str = "2025-09-01";

// ---------------------------------------------------------------------------------------------
// Options, results

struct Opts {
    seconds: f64,
    smoke: bool,
    out: PathBuf,
    target: PathBuf,
}

impl Opts {
    fn from_env() -> Self {
        let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
        let seconds = std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if smoke { 1.5 } else { 8.0 });
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo_root().join("target"), PathBuf::from);
        let out = std::env::var_os("BENCH_OUT").map_or_else(
            || {
                if smoke {
                    target.join("bench/smoke")
                } else {
                    repo_root().join("bench/results")
                }
            },
            // cargo runs benches in the package's directory; a relative path means the
            // repository's, where `./scripts/bench` is run.
            |dir| repo_root().join(dir),
        );
        Self {
            seconds,
            smoke,
            out,
            target,
        }
    }
}

/// One measured HTTP workload.
#[derive(Default, Clone)]
struct Row {
    section: &'static str,
    system: String,
    workload: String,
    requests: u64,
    errors: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the serving process(es) per request, ms.
    cpu_ms: Option<f64>,
    /// Peak RSS of the serving process(es), MiB.
    rss_mib: Option<f64>,
    /// For edge workloads that reach the origin: its CPU per request and peak RSS.
    origin_cpu_ms: Option<f64>,
    origin_rss_mib: Option<f64>,
    note: String,
}

impl Row {
    fn json(&self) -> Value {
        json!({
            "section": self.section, "system": self.system, "workload": self.workload,
            "requests": self.requests, "errors": self.errors,
            "per_sec": round(self.per_sec, 1), "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "cpu_ms_per_request": self.cpu_ms.map(|v| round(v, 4)),
            "rss_mib": self.rss_mib.map(|v| round(v, 1)),
            "origin_cpu_ms_per_request": self.origin_cpu_ms.map(|v| round(v, 4)),
            "origin_rss_mib": self.origin_rss_mib.map(|v| round(v, 1)),
            "note": self.note,
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

struct Micro {
    name: String,
    native_ns: Option<f64>,
    wasm_ns: Option<f64>,
}

struct Target {
    what: &'static str,
    wanted: String,
    measured: String,
    met: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Processes: CPU time and RSS from /proc

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The processes whose cost a row reports: either given pids or a whole process group.
#[derive(Clone)]
enum Watch {
    Pids(Vec<i32>),
    Group(i32),
}

impl Watch {
    fn pids(&self) -> Vec<i32> {
        match self {
            Self::Pids(p) => p.clone(),
            Self::Group(g) => std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| stat_fields(*pid).is_some_and(|f| f.get(2) == Some(&g.to_string())))
                .collect(),
        }
    }

    /// utime + stime of all the processes (all their threads), in seconds.
    fn cpu_seconds(&self, ticks: f64) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(stat_fields)
            .map(|f| {
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // Fields after the command: state is [0]; utime and stime are the 14th and 15th
                // fields of the line, [11] and [12] here.
                t(11) + t(12)
            })
            .sum::<f64>()
            / ticks
    }

    /// Sum of the processes' peak RSS (VmHWM), MiB.
    fn peak_rss_mib(&self) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok()
            })
            .sum::<f64>()
            / 1024.0
    }
}

/// The fields of /proc/<pid>/stat after `(comm)`.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

// ---------------------------------------------------------------------------------------------
// Load

struct Figures {
    requests: u64,
    errors: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}

/// `concurrency` loops of `one(worker)` for `seconds`; `one` says whether the answer was the
/// expected one.
async fn load<F, Fut>(seconds: f64, concurrency: usize, one: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !one(w).await {
                        errors += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("load worker");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Figures {
        requests: all.len() as u64,
        errors,
        per_sec: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

/// Runs a workload and reads the watched processes' CPU time and peak RSS around it.
struct Bench {
    opts: Opts,
    ticks: f64,
    rows: Vec<Row>,
    /// Load loops per workload (CONCURRENCY unless a row says otherwise).
    concurrency: usize,
}

impl Bench {
    #[allow(clippy::too_many_arguments)]
    async fn run<F, Fut>(
        &mut self,
        section: &'static str,
        system: &str,
        workload: &str,
        server: Option<&Watch>,
        origin: Option<&Watch>,
        one: F,
    ) -> Row
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = bool> + Send,
    {
        print!("  {system:<22} {workload:<34} ");
        let cpu = |w: Option<&Watch>| w.map(|w| w.cpu_seconds(self.ticks));
        let (server0, origin0) = (cpu(server), cpu(origin));
        let f = load(self.opts.seconds, self.concurrency, one).await;
        let (server1, origin1) = (cpu(server), cpu(origin));
        let per_request =
            |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1_000.0 / f.requests.max(1) as f64);
        let row = Row {
            section,
            system: system.to_owned(),
            workload: workload.to_owned(),
            requests: f.requests,
            errors: f.errors,
            per_sec: f.per_sec,
            p50_ms: f.p50_ms,
            p99_ms: f.p99_ms,
            cpu_ms: per_request(server0, server1),
            rss_mib: server.map(Watch::peak_rss_mib),
            origin_cpu_ms: per_request(origin0, origin1),
            origin_rss_mib: origin.map(Watch::peak_rss_mib),
            note: String::new(),
        };
        println!(
            "{:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            row.per_sec, row.p50_ms, row.p99_ms, row.errors
        );
        self.rows.push(row.clone());
        row
    }

    /// `BENCH_ONLY=origin,workerd,wrangler,django` runs only those sections (default: all).
    fn wants(&self, section: &str) -> bool {
        std::env::var("BENCH_ONLY")
            .map(|only| only.split(',').any(|s| s.trim() == section))
            .unwrap_or(true)
    }

    fn find(&self, system: &str, workload: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.system == system && r.workload == workload)
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .expect("http client")
}

/// A client address per load worker (each its own throttle bucket, as real clients are).
fn ip(worker: usize) -> String {
    format!("10.0.{}.{}", worker / 200, 1 + worker % 200)
}

async fn status_is(request: reqwest::RequestBuilder, expected: StatusCode) -> bool {
    match request.send().await {
        Ok(r) => {
            let ok = r.status() == expected;
            // Read the body: the connection goes back to the pool only after it.
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The origin

struct Origin {
    base: String,
    group: Group,
    watch: Watch,
    signer: Arc<RequestSigner>,
    db: TestDb,
    jwks: String,
    key_x: String,
}

async fn start_origin(opts: &Opts, http: &reqwest::Client) -> Origin {
    let db = TestDb::create().await;
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let key = Ed25519PrivateKey::from_seed(seed);
    let jwk = key.public_jwk();
    let jwks = serde_json::to_string(&Jwks {
        keys: vec![jwk.clone()],
    })
    .unwrap();
    let port = free_port();
    std::fs::create_dir_all(opts.target.join("bench")).unwrap();
    let log = std::fs::File::create(opts.target.join("bench/origin.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench-origin"));
    cmd.arg("serve")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("ORIGIN_SIGNING_SECRET", SIGNING)
        .env("RESET_TOKEN_SECRET", RESET)
        .env("JWT_PRIVATE_KEY", key.to_pem())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    let group = Group::spawn(&mut cmd);
    let pid = i32::try_from(group.0.id()).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(http, &format!("{base}/readyz"), Duration::from_secs(60)).await;
    Origin {
        base,
        group,
        watch: Watch::Pids(vec![pid]),
        signer: Arc::new(RequestSigner::new(SIGNING.as_bytes()).unwrap()),
        db,
        jwks,
        key_x: jwk.x,
    }
}

impl Origin {
    async fn call(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call_from(http, method, path, identity, body, "").await
    }

    /// `call` as the edge forwards a client on `network` (logins back off per account and
    /// network, so concurrent logins to one account are concurrent clients).
    async fn call_from(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        identity: Identity,
        body: Option<&Value>,
        network: &str,
    ) -> (StatusCode, Value) {
        let r = testkit::signed_request_from(
            http,
            &self.signer,
            &self.base,
            method,
            path,
            identity,
            body,
            network,
        )
        .send()
        .await
        .expect("origin answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers `email` and logs in: (user id, access, refresh).
    async fn user(&self, http: &reqwest::Client, email: &str) -> (i64, String, String) {
        let username = email.split('@').next().unwrap();
        let (status, body) = self
            .call(
                http,
                Method::POST,
                "/internal/users",
                Identity::Anonymous,
                Some(&json!({"email": email, "username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        let id = body["id"].as_i64().unwrap();
        let (access, refresh) = self.login(http, email).await;
        (id, access, refresh)
    }

    async fn login(&self, http: &reqwest::Client, email: &str) -> (String, String) {
        let (status, body) = self
            .call(
                http,
                Method::POST,
                "/internal/tokens",
                Identity::Anonymous,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login: {body}");
        (
            body["access"].as_str().unwrap().to_owned(),
            body["refresh"].as_str().unwrap().to_owned(),
        )
    }
}

/// One hash at a time with kept memory, as the origin's hashing threads do: the fastest a
/// core can hash, so `cores ÷ this` is the ceiling for logins.
fn argon2_median_ms(samples: usize) -> f64 {
    let mut memory = origin::password::Memory::default();
    memory.hash(PASSWORD).unwrap();
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            memory.hash(PASSWORD).unwrap();
            t.elapsed().as_secs_f64() * 1_000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `pgbench -S` tps at each of `clients` on a scratch database (created, initialised at scale
/// 10, dropped).
fn pgbench(seconds: f64, clients: &[usize]) -> Vec<Option<f64>> {
    pgbench_runs(seconds, clients).unwrap_or_else(|| vec![None; clients.len()])
}

fn pgbench_runs(seconds: f64, clients: &[usize]) -> Option<Vec<Option<f64>>> {
    let url = reqwest::Url::parse(&testkit::admin_url()).ok()?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432).to_string();
    let user = match url.username() {
        "" => "postgres".to_owned(),
        u => u.to_owned(),
    };
    let db = format!("bench_pgbench_{}", std::process::id());
    let pg = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(["-h", &host, "-p", &port, "-U", &user])
            .args(args)
            .output()
            .ok()
    };
    pg("createdb", &[&db])?;
    let init = pg("pgbench", &["-i", "-q", "-s", "10", &db])?;
    let secs = (seconds.ceil() as u64).max(1).to_string();
    let runs = if init.status.success() {
        clients
            .iter()
            .map(|c| {
                let c = c.to_string();
                let out = pg("pgbench", &["-S", "-c", &c, "-j", "2", "-T", &secs, &db])?;
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("tps = "))
                    .and_then(|l| l.split_whitespace().next()?.parse().ok())
            })
            .collect()
    } else {
        eprintln!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        vec![None; clients.len()]
    };
    pg("dropdb", &[&db]);
    Some(runs)
}

// ---------------------------------------------------------------------------------------------
// Workers on workerd (Miniflare)

/// `node bench/edge/serve.mjs`: one Worker on workerd; the workerd pid is watched.
struct Workerd {
    base: String,
    watch: Watch,
    _group: Group,
}

fn node() -> PathBuf {
    repo_root().join("node_modules/.bin/node")
}

fn serve_on_workerd(opts: &Opts, name: &str, config: Value) -> Workerd {
    let port = free_port();
    let mut config = config;
    config["port"] = json!(port);
    config["compatibilityDate"] = json!(COMPATIBILITY_DATE);
    let log = std::fs::File::create(opts.target.join(format!("bench/{name}.log"))).unwrap();
    let mut cmd = Command::new(node());
    cmd.current_dir(repo_root())
        .arg("bench/edge/serve.mjs")
        .arg(config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    let mut group = Group::spawn(&mut cmd);
    let stdout = group.0.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("serve.mjs output");
    // Miniflare passes the Worker's console output on to this pipe: keep draining it into the
    // log (a closed pipe would stop Node, and workerd with it).
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(opts.target.join(format!("bench/{name}.log")))
        .unwrap();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut log));
    let mut parts = line.split_whitespace();
    assert_eq!(
        parts.next(),
        Some("ready"),
        "{name} on workerd did not start (see target/bench/{name}.log): {line}"
    );
    let base = parts.next().unwrap().trim_end_matches('/').to_owned();
    let pid: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(pid > 0, "no workerd pid for {name}: {line}");
    Workerd {
        base,
        watch: Watch::Pids(vec![pid]),
        _group: group,
    }
}

fn our_worker_bindings(origin: &Origin, algorithm: &str) -> Value {
    let mut b = json!({
        "JWT_ALGORITHM": algorithm,
        "JWT_ISSUER": "auth-api",
        "JWT_AUDIENCE": "auth-api",
        "ORIGIN_URL": origin.base,
        "ORIGIN_SIGNING_SECRET": SIGNING,
        "RESET_TOKEN_SECRET": RESET,
        "OTP_SECRET": OTP,
        "THROTTLE_RATES": RATES,
        "ORIGIN_TIMEOUT_MS": "10000",
        "CORS_ALLOWED_ORIGINS": "",
    });
    if algorithm == "HS256" {
        b["JWT_SECRET"] = json!(HS_SECRET);
    } else {
        b["JWT_PUBLIC_KEYS"] = json!(origin.jwks);
    }
    b
}

fn our_worker(opts: &Opts, name: &str, bindings: Value) -> Workerd {
    let build = built_worker();
    serve_on_workerd(
        opts,
        name,
        json!({
            "modulesRoot": build,
            "modules": [
                {"type": "ESModule", "path": build.join("index.js")},
                {"type": "CompiledWasm", "path": build.join("index_bg.wasm")},
            ],
            "bindings": bindings,
            "durableObjects": {"RATE_LIMITER": "RateLimiter", "OTP_STORE": "OtpStore"},
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// The Django original

struct Django {
    base: String,
    watch: Watch,
    group: Group,
    database: String,
}

fn django_source() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BENCH_DJANGO_DIR").map(PathBuf::from),
        Some(repo_root().join("../shared/reference/django")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("run.sh").exists())
}

async fn start_django(opts: &Opts, http: &reqwest::Client) -> Option<Django> {
    let Some(source) = django_source() else {
        println!("  Django reference not found (set BENCH_DJANGO_DIR): skipped");
        return None;
    };
    // run.sh makes its virtualenv next to itself: work on a copy, kept between runs (and
    // between clones: CI starts from a fresh one) in the user's cache directory.
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| opts.target.clone());
    let dir = cache.join("auth-api-bench/django-reference");
    if dir.join("run.sh").exists() && !same_tree(&source, &dir) {
        // The reference changed since it was copied: copy it again (the virtualenv goes too).
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !dir.join("run.sh").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        // The source may be read-only; the copy must not be (run.sh writes .venv into it).
        let copied = Command::new("sh")
            .arg("-c")
            .arg("cp -R \"$1\"/. \"$2\" && chmod -R u+w \"$2\"")
            .arg("sh")
            .arg(&source)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            copied,
            "cannot copy {} to {}",
            source.display(),
            dir.display()
        );
    }
    let port = free_port();
    let database = format!("bench_django_{}", std::process::id());
    let log = std::fs::File::create(opts.target.join("bench/django.log")).unwrap();
    let mut cmd = Command::new("./run.sh");
    cmd.current_dir(&dir)
        .arg(port.to_string())
        .env("PGDATABASE", &database)
        .env("PGHOST", "127.0.0.1")
        .env("PGUSER", "postgres")
        .env("THROTTLE_ANON", "1000000/sec")
        .env("THROTTLE_USER", "1000000/sec")
        .env("THROTTLE_AUTH", "1000000/sec")
        .env("THROTTLE_PASSWORD_RESET", "1000000/sec")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    println!(
        "  starting the Django original (first run installs its virtualenv from PyPI; log: {})",
        opts.target.join("bench/django.log").display()
    );
    let group = Group::spawn(&mut cmd);
    let leader = i32::try_from(group.0.id()).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(r) = http.get(format!("{base}/api/auth/me/")).send().await {
            if r.status() == StatusCode::UNAUTHORIZED {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the Django original did not come up in 10 minutes (target/bench/django.log)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Some(Django {
        base,
        watch: Watch::Group(leader),
        group,
        database,
    })
}

/// Whether every file of `source` (the reference, without its virtualenv) is in `copy` with
/// the same contents.
fn same_tree(source: &std::path::Path, copy: &std::path::Path) -> bool {
    Command::new("diff")
        .args(["-rq", "-x", ".venv", "-x", "__pycache__"])
        .arg(source)
        .arg(copy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Django {
    async fn stop(mut self) {
        self.group.stop();
        let admin = tokio_postgres::connect(&testkit::admin_url(), tokio_postgres::NoTls).await;
        if let Ok((client, conn)) = admin {
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.database
                ))
                .await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public-API workloads, the same for every system that serves the public API

async fn public_tokens(http: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let username = email.split('@').next().unwrap();
    let r = http
        .post(format!("{base}/api/auth/users/"))
        .header("CF-Connecting-IP", "10.9.9.9")
        .json(&json!({"email": email, "username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{base} register: {:?}",
        r.text().await
    );
    let r = http
        .post(format!("{base}/api/auth/jwt/create/"))
        .header("CF-Connecting-IP", "10.9.9.9")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK, "{base} login");
    let body: Value = r.json().await.unwrap();
    (
        body["access"].as_str().unwrap().to_owned(),
        body["refresh"].as_str().unwrap().to_owned(),
    )
}

/// `/jwt/verify/`, `/me`, login through one public API; `origin` is watched when the public
/// API forwards to our origin.
async fn public_workloads(
    bench: &mut Bench,
    section: &'static str,
    system: &str,
    base: &str,
    server: &Watch,
    origin: Option<&Watch>,
    email: &str,
) {
    let http = http();
    let (access, _) = public_tokens(&http, base, email).await;
    let verify = Payload::Json(json!({ "token": access }).to_string());
    let login = Payload::Json(json!({"email": email, "password": PASSWORD}).to_string());
    for (workload, path, origin, send) in [
        ("POST /jwt/verify/", "/api/auth/jwt/verify/", None, verify),
        ("GET /me/", "/api/auth/me/", origin, Payload::Bearer(access)),
        (
            "POST /jwt/create/ (login)",
            "/api/auth/jwt/create/",
            origin,
            login,
        ),
    ] {
        let url = format!("{base}{path}");
        public(bench, section, system, workload, server, origin, url, send).await;
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ok = runtime.block_on(run());
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run() -> bool {
    let opts = Opts::from_env();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "system benchmark: {cores} cores, concurrency {CONCURRENCY}, {} s per workload{}",
        opts.seconds,
        if opts.smoke { " (smoke)" } else { "" }
    );
    let mut bench = Bench {
        concurrency: CONCURRENCY,
        ticks: clock_ticks(),
        opts,
        rows: Vec::new(),
    };
    let http = http();

    // --- the origin, direct (the signed internal API) ------------------------------------
    println!("\n[origin: the internal API, direct]");
    let origin = start_origin(&bench.opts, &http).await;
    let (_, access, _) = origin.user(&http, "bench@example.com").await;
    let claims: Claims = {
        let keys = shared::keys::VerifyingKeys::from_jwks_json(&origin.jwks).unwrap();
        shared::token::TokenVerifier::new(keys, testkit::audience())
            .access(&access, testkit::now())
            .unwrap()
    };
    let identity = Identity::User {
        id: claims.user_id,
        token_version: claims.ver,
    };
    let o = Arc::new(origin);
    let ow = o.watch.clone();
    let (tps, tps8) = if bench.wants("origin") {
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "login (internal)",
                Some(&ow),
                None,
                move |w| {
                    let (h, oo) = (h.clone(), oo.clone());
                    async move {
                        let body = json!({"email": "bench@example.com", "password": PASSWORD});
                        oo.call_from(
                            &h,
                            Method::POST,
                            "/internal/tokens",
                            Identity::Anonymous,
                            Some(&body),
                            &ip(w),
                        )
                        .await
                        .0 == StatusCode::OK
                    }
                },
            )
            .await;
        internal_me(&mut bench, "me (internal)", &o, identity).await;
        // Refresh rotation: each worker follows its own chain (every answer's refresh token is the
        // next request's).
        let mut chains = Vec::new();
        for _ in 0..CONCURRENCY {
            chains.push(Mutex::new(o.login(&http, "bench@example.com").await.1));
        }
        let chains = Arc::new(chains);
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "refresh rotation (internal)",
                Some(&ow),
                None,
                move |w| {
                    let (h, oo, chains) = (h.clone(), oo.clone(), chains.clone());
                    async move {
                        let token = chains[w].lock().unwrap().clone();
                        let body = json!({ "refresh": token });
                        let (status, reply) = oo
                            .call(
                                &h,
                                Method::POST,
                                "/internal/tokens/refresh",
                                Identity::Anonymous,
                                Some(&body),
                            )
                            .await;
                        match reply["refresh"].as_str() {
                            Some(next) if status == StatusCode::OK => {
                                *chains[w].lock().unwrap() = next.to_owned();
                                true
                            }
                            _ => false,
                        }
                    }
                },
            )
            .await;
        let counter = Arc::new(AtomicU64::new(0));
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "register (internal)",
                Some(&ow),
                None,
                move |_| {
                    let (h, oo) = (h.clone(), oo.clone());
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let body = json!({
                            "email": format!("new{n}@example.com"),
                            "username": format!("new{n}"),
                            "password": PASSWORD,
                        });
                        oo.call(
                            &h,
                            Method::POST,
                            "/internal/users",
                            Identity::Anonymous,
                            Some(&body),
                        )
                        .await
                        .0 == StatusCode::CREATED
                    }
                },
            )
            .await;
        // The one-row lookup again at concurrency 8, beside pgbench at both: on 2 cores,
        // 16 loops over-subscribe the origin's runtime and the load generator more than they
        // do pgbench's C client.
        bench.concurrency = 8;
        internal_me(&mut bench, "me (internal, concurrency 8)", &o, identity).await;
        bench.concurrency = CONCURRENCY;
        print!("  pgbench -S -j 2 on the same PostgreSQL, -c {CONCURRENCY} and -c 8 ... ");
        let tps = pgbench(bench.opts.seconds, &[CONCURRENCY, 8]);
        let show = |t: Option<f64>| t.map_or("unavailable".into(), |t| format!("{t:.0} tps"));
        println!("{} and {}", show(tps[0]), show(tps[1]));
        (tps[0], tps[1])
    } else {
        (None, None)
    };
    let argon2_ms = argon2_median_ms(if bench.opts.smoke { 3 } else { 20 });
    let ceiling = cores as f64 * 1_000.0 / argon2_ms;
    println!("  argon2id hash median {argon2_ms:.1} ms → login ceiling {cores} cores ÷ argon2 = {ceiling:.1}/s");

    let timing = if bench.opts.smoke || !bench.wants("origin") {
        None
    } else {
        Some(login_timing(&o, &http).await)
    };

    if bench.wants("workerd") {
        // --- the edge: our Worker on workerd, the jose peer on the same workerd ----------------
        println!("\n[edge: workerd via Miniflare (workerd's own socket)]");
        let ours = our_worker(
            &bench.opts,
            "workerd-ours",
            our_worker_bindings(&o, "EdDSA"),
        );
        public_workloads(
            &mut bench,
            "edge",
            "ours (workerd)",
            &ours.base,
            &ours.watch,
            Some(&ow),
            "edge@example.com",
        )
        .await;
        let (h, b) = (http.clone(), ours.base.clone());
        bench
            .run(
                "edge",
                "ours (workerd)",
                "GET /.well-known/jwks.json (floor)",
                Some(&ours.watch),
                None,
                move |w| {
                    status_is(
                        h.get(format!("{b}/.well-known/jwks.json"))
                            .header("CF-Connecting-IP", ip(w)),
                        StatusCode::OK,
                    )
                },
            )
            .await;
        drop(ours);

        // HS256: a Worker configured for it; tokens minted here with the same secret.
        let hs_token = {
            let issuer = TokenIssuer::new(
                SigningKey::hs256(HS_SECRET.as_bytes()).unwrap(),
                testkit::audience(),
            );
            let subject = shared::token::Subject {
                user_id: claims.user_id,
                token_version: claims.ver,
                role: claims.role.clone(),
            };
            let c = issuer.claims(
                TokenKind::Access,
                &subject,
                "bench-hs256".into(),
                testkit::now(),
                3600,
            );
            issuer.sign(&c).unwrap()
        };
        let ours_hs = our_worker(
            &bench.opts,
            "workerd-ours-hs256",
            our_worker_bindings(&o, "HS256"),
        );
        let hs_body = json!({ "token": hs_token }).to_string();
        verify_loop(
            &mut bench,
            "ours (workerd)",
            "POST /jwt/verify/ HS256",
            &ours_hs,
            "/api/auth/jwt/verify/",
            &hs_body,
        )
        .await;
        drop(ours_hs);

        // The same Worker with the anon and user scopes off: what the limiter call costs.
        let ed_body = json!({ "token": access }).to_string();
        let mut bindings = our_worker_bindings(&o, "EdDSA");
        bindings["THROTTLE_RATES"] = json!(RATES_OFF);
        let off = our_worker(&bench.opts, "workerd-ours-unthrottled", bindings);
        verify_loop(
            &mut bench,
            UNTHROTTLED,
            "POST /jwt/verify/",
            &off,
            "/api/auth/jwt/verify/",
            &ed_body,
        )
        .await;
        public(
            &mut bench,
            "edge",
            UNTHROTTLED,
            "GET /me/",
            &off.watch,
            Some(&ow),
            format!("{}/api/auth/me/", off.base),
            Payload::Bearer(access.clone()),
        )
        .await;
        drop(off);

        match jose_peer() {
            Some(dir) => {
                let peer = serve_on_workerd(
                    &bench.opts,
                    "workerd-jose",
                    json!({
                        "modulesRoot": dir,
                        "modules": [{"type": "ESModule", "path": dir.join("worker.mjs")}],
                        "bindings": {"ED_X": o.key_x, "HS_SECRET": HS_SECRET},
                    }),
                );
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/eddsa",
                    &peer,
                    "/verify/eddsa",
                    &ed_body,
                )
                .await;
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/hs256key",
                    &peer,
                    "/verify/hs256key",
                    &hs_body,
                )
                .await;
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/hs256",
                    &peer,
                    "/verify/hs256",
                    &hs_body,
                )
                .await;
                let (h, b) = (http.clone(), peer.base.clone());
                bench
                    .run(
                        "edge",
                        "jose (workerd)",
                        "GET /hello (floor)",
                        Some(&peer.watch),
                        None,
                        move |_| status_is(h.get(format!("{b}/hello")), StatusCode::OK),
                    )
                    .await;
            }
            None => println!("  the jose peer is not built (scripts/bench builds it): skipped"),
        }
    }

    // --- the same Worker under wrangler dev ------------------------------------------------
    println!("\n[edge: wrangler dev (for reference: its Node proxy sits in front of workerd)]");
    if bench.wants("wrangler") {
        let state = bench
            .opts
            .target
            .join(format!("bench/wrangler-state-{}", std::process::id()));
        std::fs::create_dir_all(&state).unwrap();
        let port = free_port();
        let vars: Vec<String> = our_worker_bindings(&o, "EdDSA")
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap()))
            .collect();
        let log = bench.opts.target.join("bench/wrangler.log");
        let config = prebuilt_worker_config("bench", true);
        let dev = wrangler_dev(Some(&config), port, &state, &log, &vars);
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(
            &http,
            &format!("{base}/.well-known/jwks.json"),
            Duration::from_secs(600),
        )
        .await;
        let watch = Watch::Group(i32::try_from(dev.0.id()).unwrap());
        public_workloads(
            &mut bench,
            "edge",
            "ours (wrangler dev)",
            &base,
            &watch,
            Some(&ow),
            "dev@example.com",
        )
        .await;
        drop(dev);
        let _ = std::fs::remove_dir_all(&state);
    }

    // --- the Django original -----------------------------------------------------------------
    println!(
        "\n[the Django original: Django + DRF + Djoser + SimpleJWT, gunicorn, same PostgreSQL]"
    );
    if !bench.wants("django") {
        println!("  skipped (BENCH_ONLY)");
    } else if let Some(django) = start_django(&bench.opts, &http).await {
        let watch = django.watch.clone();
        let base = django.base.clone();
        public_workloads(
            &mut bench,
            "django",
            "django (gunicorn)",
            &base,
            &watch,
            None,
            "bench@example.com",
        )
        .await;
        django.stop().await;
    }

    let origin_rss = o.watch.peak_rss_mib();
    let micro = read_micro(&bench.opts);
    let wasm = worker_size();
    let targets = targets(&bench, [tps, tps8], ceiling, origin_rss, wasm, &micro);
    let report = Report {
        bench: &bench,
        cores,
        tps,
        tps8,
        argon2_ms,
        ceiling,
        origin_rss,
        micro: &micro,
        wasm,
        targets: &targets,
        timing,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    std::fs::create_dir_all(&bench.opts.out).unwrap();
    std::fs::write(bench.opts.out.join("bench.md"), &markdown).unwrap();
    std::fs::write(
        bench.opts.out.join("bench.json"),
        serde_json::to_string_pretty(&report.json()).unwrap() + "\n",
    )
    .unwrap();
    println!(
        "written: {0}/bench.md, {0}/bench.json",
        bench.opts.out.display()
    );

    // Stop the origin before its database is dropped.
    if let Ok(mut o) = Arc::try_unwrap(o) {
        o.group.stop();
        drop(o.db);
    }

    let broken: Vec<_> = bench
        .rows
        .iter()
        .filter(|r| r.errors > 0 || r.requests == 0)
        .map(|r| {
            format!(
                "{} {}: {} of {} wrong",
                r.system, r.workload, r.errors, r.requests
            )
        })
        .collect();
    if !broken.is_empty() {
        eprintln!("workloads with wrong answers:\n  {}", broken.join("\n  "));
        return false;
    }
    if bench.opts.smoke {
        // Every shared case runs as Wasm too (argon2 is native only: the edge never hashes).
        let missing: Vec<_> = micro
            .iter()
            .filter(|m| m.wasm_ns.is_none() && !m.name.starts_with("argon2id"))
            .map(|m| m.name.clone())
            .collect();
        if !missing.is_empty() {
            eprintln!("micro cases without a Wasm figure: {missing:?}");
            return false;
        }
    }
    true
}

/// `GET /internal/me` signed as the edge signs it, for `identity`.
async fn internal_me(bench: &mut Bench, workload: &str, o: &Arc<Origin>, identity: Identity) {
    let (h, oo) = (http(), o.clone());
    bench
        .run(
            "origin",
            "origin",
            workload,
            Some(&o.watch),
            None,
            move |_| {
                let (h, oo) = (h.clone(), oo.clone());
                async move {
                    let request = signed_request(
                        &h,
                        &oo.signer,
                        &oo.base,
                        Method::GET,
                        "/internal/me",
                        identity,
                        None,
                    );
                    status_is(request, StatusCode::OK).await
                }
            },
        )
        .await;
}

// Each round's right password clears its wrong one's failure (LOCKOUT_THRESHOLD is per account
// and network), so the rounds never reach the back-off.
const TIMING_ROUNDS: usize = 40;

/// Sequential logins, one of each kind per round (so drift hits all three alike): does an
/// unknown email answer faster than a known one? Medians in ms: [unknown, wrong, right].
async fn login_timing(origin: &Origin, http: &reqwest::Client) -> [f64; 3] {
    origin.user(http, "timing@example.com").await;
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..TIMING_ROUNDS {
        for (i, (email, password)) in [
            ("nobody-here@example.com", "00000000"),
            ("timing@example.com", "00000000"),
            ("timing@example.com", PASSWORD),
        ]
        .into_iter()
        .enumerate()
        {
            let body = json!({"email": email, "password": password});
            let started = Instant::now();
            let _ = origin
                .call(
                    http,
                    Method::POST,
                    "/internal/tokens",
                    Identity::Anonymous,
                    Some(&body),
                )
                .await;
            samples[i].push(started.elapsed());
        }
    }
    samples.map(|mut v| {
        v.sort();
        percentile(&v, 0.5)
    })
}

/// What a public-API workload sends: a JSON body (`POST`) or a bearer token (`GET`).
#[derive(Clone)]
enum Payload {
    Json(String),
    Bearer(String),
}

/// One public-API workload against `url`, each load loop as its own client address; the answer
/// must be 200.
#[allow(clippy::too_many_arguments)]
async fn public(
    bench: &mut Bench,
    section: &'static str,
    system: &str,
    workload: &str,
    server: &Watch,
    origin: Option<&Watch>,
    url: String,
    send: Payload,
) {
    let h = http();
    bench
        .run(section, system, workload, Some(server), origin, move |w| {
            let request = match &send {
                Payload::Json(body) => h
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone()),
                Payload::Bearer(token) => h.get(&url).bearer_auth(token),
            };
            status_is(request.header("CF-Connecting-IP", ip(w)), StatusCode::OK)
        })
        .await;
}

/// A verify workload on a Worker served by workerd: `POST {path}` with `body`.
async fn verify_loop(
    bench: &mut Bench,
    system: &str,
    workload: &str,
    server: &Workerd,
    path: &str,
    body: &str,
) {
    let url = format!("{}{path}", server.base);
    let send = Payload::Json(body.to_owned());
    public(
        bench,
        "edge",
        system,
        workload,
        &server.watch,
        None,
        url,
        send,
    )
    .await;
}

fn jose_peer() -> Option<PathBuf> {
    let dir = std::env::var_os("BENCH_JOSE_DIR")
        .map_or_else(|| repo_root().join("target/bench/jose/dist"), PathBuf::from);
    dir.join("worker.mjs").exists().then_some(dir)
}

// ---------------------------------------------------------------------------------------------
// Micro results, Worker size, targets, report

/// Criterion's estimate (mean, ns) for `id`, and the Wasm run's figures.
fn read_micro(opts: &Opts) -> Vec<Micro> {
    let criterion = |id: &str| -> Option<f64> {
        let path = opts
            .target
            .join("criterion")
            .join(id)
            .join("new/estimates.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let wasm: Value = std::fs::read_to_string(opts.target.join("bench/micro-wasm.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let wasm_ns = |name: &str| {
        wasm["cases"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?["ns_per_op"]
            .as_f64()
    };
    let mut out: Vec<Micro> = micro_cases::CASES
        .iter()
        .map(|c| Micro {
            name: c.name.to_owned(),
            native_ns: criterion(c.name),
            wasm_ns: wasm_ns(c.name),
        })
        .collect();
    for (id, name) in [
        ("argon2id/hash", "argon2id_hash"),
        ("argon2id/verify", "argon2id_verify"),
    ] {
        out.push(Micro {
            name: name.to_owned(),
            native_ns: criterion(id),
            wasm_ns: None,
        });
    }
    out
}

/// (raw bytes, gzip -9 bytes) of the built Worker.
fn worker_size() -> Option<(u64, u64)> {
    let path = repo_root().join("edge/build/index_bg.wasm");
    let raw = std::fs::metadata(&path).ok()?.len();
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -9 -c \"$1\" | wc -c")
        .arg("sh")
        .arg(&path)
        .output()
        .ok()?;
    let gz = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((raw, gz))
}

fn targets(
    bench: &Bench,
    [tps, tps8]: [Option<f64>; 2],
    ceiling: f64,
    origin_rss: f64,
    wasm: Option<(u64, u64)>,
    micro: &[Micro],
) -> Vec<Target> {
    let rate = |s: &str, w: &str| bench.find(s, w).map(|r| r.per_sec);
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let mut t = Vec::new();
    let mut at_least = |what: &'static str, wanted: f64, got: Option<f64>, unit: &str| {
        t.push(Target {
            what,
            wanted: format!("≥ {wanted}{unit}"),
            measured: got.map_or("not measured".into(), |g| format!("{g:.2}{unit}")),
            met: got.map(|g| g >= wanted),
        });
    };
    let ours = "ours (workerd)";
    let django = "django (gunicorn)";
    at_least(
        "/jwt/verify/ through the edge vs Django (req/s ratio)",
        10.0,
        ratio(
            rate(ours, "POST /jwt/verify/"),
            rate(django, "POST /jwt/verify/"),
        ),
        "×",
    );
    at_least(
        "/jwt/verify/ EdDSA vs the jose Worker (req/s ratio)",
        1.0,
        ratio(
            rate(ours, "POST /jwt/verify/"),
            rate("jose (workerd)", "POST /verify/eddsa"),
        ),
        "×",
    );
    at_least(
        "/jwt/verify/ HS256 vs the jose Worker, key imported once (req/s ratio)",
        1.0,
        ratio(
            rate(ours, "POST /jwt/verify/ HS256"),
            rate("jose (workerd)", "POST /verify/hs256key"),
        ),
        "×",
    );
    at_least(
        "/me through edge → origin → PostgreSQL vs Django (req/s ratio)",
        5.0,
        ratio(rate(ours, "GET /me/"), rate(django, "GET /me/")),
        "×",
    );
    at_least(
        "origin internal me vs pgbench -S, both at concurrency 16 (fraction)",
        0.5,
        ratio(rate("origin", "me (internal)"), tps),
        "",
    );
    at_least(
        "origin internal me vs pgbench -S, both at concurrency 8 (fraction)",
        0.5,
        ratio(rate("origin", "me (internal, concurrency 8)"), tps8),
        "",
    );
    at_least(
        "origin login vs the argon2 ceiling (fraction)",
        0.9,
        rate("origin", "login (internal)").map(|r| r / ceiling),
        "",
    );
    let mut at_most = |what: &'static str, wanted: f64, got: Option<f64>, unit: &str| {
        t.push(Target {
            what,
            wanted: format!("≤ {wanted}{unit}"),
            measured: got.map_or("not measured".into(), |g| format!("{g:.3}{unit}")),
            met: got.map(|g| g <= wanted),
        });
    };
    at_most(
        "EdDSA verify, CPU per token in Wasm (micro, V8)",
        0.15,
        micro
            .iter()
            .find(|m| m.name == "token_verify_eddsa")
            .and_then(|m| m.wasm_ns)
            .map(|ns| ns / 1e6),
        " ms",
    );
    at_most(
        "EdDSA /jwt/verify/, workerd CPU per request (HTTP, glue, throttle DO call and verify)",
        0.15,
        bench.find(ours, "POST /jwt/verify/").and_then(|r| r.cpu_ms),
        " ms",
    );
    at_most(
        "Worker Wasm, gzip",
        500.0,
        wasm.map(|(_, gz)| gz as f64 / 1024.0),
        " KiB",
    );
    at_most(
        "origin peak RSS during the run",
        50.0,
        Some(origin_rss),
        " MiB",
    );
    t
}

struct Report<'a> {
    bench: &'a Bench,
    cores: usize,
    tps: Option<f64>,
    tps8: Option<f64>,
    argon2_ms: f64,
    ceiling: f64,
    origin_rss: f64,
    micro: &'a [Micro],
    wasm: Option<(u64, u64)>,
    targets: &'a [Target],
    timing: Option<[f64; 3]>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let b = self.bench;
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# Benchmark results\n\n{} cores, concurrency {CONCURRENCY}, {} s per workload{}, loopback; load generator, servers and PostgreSQL share the cores.\n",
            self.cores,
            b.opts.seconds,
            if b.opts.smoke { " (smoke run: figures are not meaningful)" } else { "" }
        );
        m.push_str("## HTTP workloads\n\n| section | system | workload | req/s | p50 ms | p99 ms | errors | server CPU ms/req | server peak RSS MiB | origin CPU ms/req | origin peak RSS MiB |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &b.rows {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                r.section,
                r.system,
                r.workload,
                r.per_sec,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                opt(r.cpu_ms, 3),
                opt(r.rss_mib, 1),
                opt(r.origin_cpu_ms, 3),
                opt(r.origin_rss_mib, 1),
            );
        }
        let _ = writeln!(
            m,
            "\nCeilings in the same run: `pgbench -S -c {CONCURRENCY}` {} tps, `-c 8` {} tps; argon2id hash median {:.1} ms → {} cores ÷ argon2 = {:.1} logins/s.\n",
            opt(self.tps, 0),
            opt(self.tps8, 0),
            self.argon2_ms,
            self.cores,
            self.ceiling
        );
        m.push_str("## Ours vs the others (req/s ratio)\n\n| workload | ours (workerd) | other | ratio |\n|---|---:|---:|---:|\n");
        for (ours_w, other_s, other_w) in [
            (
                "POST /jwt/verify/",
                "django (gunicorn)",
                "POST /jwt/verify/",
            ),
            ("GET /me/", "django (gunicorn)", "GET /me/"),
            (
                "POST /jwt/create/ (login)",
                "django (gunicorn)",
                "POST /jwt/create/ (login)",
            ),
            ("POST /jwt/verify/", "jose (workerd)", "POST /verify/eddsa"),
            (
                "POST /jwt/verify/ (anon=none)",
                "jose (workerd)",
                "POST /verify/eddsa",
            ),
            (
                "POST /jwt/verify/ (anon=none)",
                "django (gunicorn)",
                "POST /jwt/verify/",
            ),
            ("GET /me/ (user=none)", "django (gunicorn)", "GET /me/"),
            (
                "POST /jwt/verify/ HS256",
                "jose (workerd)",
                "POST /verify/hs256key",
            ),
            (
                "POST /jwt/verify/ HS256",
                "jose (workerd)",
                "POST /verify/hs256",
            ),
        ] {
            // "(anon=none)" / "(user=none)" name the diagnostic rows of the unthrottled Worker.
            let a = match ours_w.split_once(" (") {
                Some((w, off)) if off.ends_with("=none)") => b.find(UNTHROTTLED, w),
                _ => b.find("ours (workerd)", ours_w),
            }
            .map(|r| r.per_sec);
            let o = b.find(other_s, other_w).map(|r| r.per_sec);
            let _ = writeln!(
                m,
                "| {ours_w} vs {other_s} {other_w} | {} | {} | {} |",
                opt(a, 1),
                opt(o, 1),
                opt(a.zip(o).map(|(a, o)| a / o), 2)
            );
        }
        m.push_str("\n## Micro (ns per operation; native: criterion mean; Wasm: wasm32 under Node's V8, median batch)\n\n| case | native ns | Wasm ns | Wasm ÷ native |\n|---|---:|---:|---:|\n");
        for c in self.micro {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                c.name,
                opt(c.native_ns, 0),
                opt(c.wasm_ns, 0),
                opt(c.native_ns.zip(c.wasm_ns).map(|(n, w)| w / n), 1)
            );
        }
        if let Some((raw, gz)) = self.wasm {
            let _ = writeln!(m, "\nWorker Wasm: {raw} bytes raw, {gz} bytes gzip ({:.1} KiB). Origin peak RSS over the whole run: {:.1} MiB.", gz as f64 / 1024.0, self.origin_rss);
        }
        if let Some([unknown, wrong, right]) = self.timing {
            let _ = writeln!(
                m,
                "\nLogin timing (sequential, {TIMING_ROUNDS} interleaved rounds, medians): unknown email {unknown:.1} ms, known email + wrong password {wrong:.1} ms, right password {right:.1} ms; unknown vs wrong differ by {:.1} % (no user enumeration by time).",
                100.0 * (unknown - wrong).abs() / wrong
            );
        }
        m.push_str("\n## Targets\n\n| target | wanted | measured | met |\n|---|---|---|---|\n");
        for t in self.targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(m, "| {} | {} | {} | {met} |", t.what, t.wanted, t.measured);
        }
        m
    }

    fn json(&self) -> Value {
        let b = self.bench;
        json!({
            "cores": self.cores,
            "concurrency": CONCURRENCY,
            "seconds_per_workload": b.opts.seconds,
            "smoke": b.opts.smoke,
            "workloads": b.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "pgbench_select_tps": self.tps.map(|t| round(t, 0)),
            "pgbench_select_tps_concurrency_8": self.tps8.map(|t| round(t, 0)),
            "argon2id_hash_median_ms": round(self.argon2_ms, 2),
            "login_ceiling_per_sec": round(self.ceiling, 1),
            "origin_peak_rss_mib": round(self.origin_rss, 1),
            "worker_wasm": self.wasm.map(|(raw, gz)| json!({"raw_bytes": raw, "gzip_bytes": gz})),
            "micro_ns": self.micro.iter().map(|c| json!({
                "case": c.name, "native": c.native_ns.map(|v| round(v, 1)), "wasm": c.wasm_ns.map(|v| round(v, 1)),
            })).collect::<Vec<_>>(),
            "login_timing_medians_ms": self.timing.map(|[u, w, r]| json!({
                "unknown_email": round(u, 2), "wrong_password": round(w, 2), "right_password": round(r, 2),
            })),
            "targets": self.targets.iter().map(|t| json!({
                "target": t.what, "wanted": t.wanted, "measured": t.measured, "met": t.met,
            })).collect::<Vec<_>>(),
        })
    }
}
