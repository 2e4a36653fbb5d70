//! The systems under load: the origin, our Worker and the jose peer on workerd, the Django original, PostgreSQL (pgbench) and the argon2 ceiling.

use crate::prelude::*;

pub(crate) struct Origin {
    pub(crate) base: String,
    pub(crate) group: Group,
    pub(crate) watch: Watch,
    pub(crate) signer: Arc<RequestSigner>,
    pub(crate) db: TestDb,
    pub(crate) jwks: String,
    pub(crate) key_x: String,
}

pub(crate) async fn start_origin(opts: &Opts, http: &reqwest::Client) -> Origin {
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
        .env("METRICS_BIND", "127.0.0.1:0")
        .env("ORIGIN_SIGNING_SECRET", SIGNING)
        .env("RESET_TOKEN_SECRET", RESET)
        .env("JWT_PRIVATE_KEY", key.to_pem())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    let mut group = testkit::process::spawn(&mut cmd);
    let pid = i32::try_from(group.child().id()).unwrap();
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
    pub(crate) async fn call(
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
    pub(crate) async fn call_from(
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
            testkit::SeenClient { network, agent: "" },
        )
        .send()
        .await
        .expect("origin answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers `email` and logs in: (user id, access, refresh).
    pub(crate) async fn user(&self, http: &reqwest::Client, email: &str) -> (i64, String, String) {
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

    pub(crate) async fn login(&self, http: &reqwest::Client, email: &str) -> (String, String) {
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
pub(crate) fn argon2_median_ms(samples: usize) -> f64 {
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
pub(crate) fn pgbench(seconds: f64, clients: &[usize]) -> Vec<Option<f64>> {
    pgbench_runs(seconds, clients).unwrap_or_else(|| vec![None; clients.len()])
}

pub(crate) fn pgbench_runs(seconds: f64, clients: &[usize]) -> Option<Vec<Option<f64>>> {
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
pub(crate) struct Workerd {
    pub(crate) base: String,
    pub(crate) watch: Watch,
    pub(crate) _group: Group,
}

pub(crate) fn node() -> PathBuf {
    repo_root().join("node_modules/.bin/node")
}

pub(crate) fn serve_on_workerd(opts: &Opts, name: &str, config: Value) -> Workerd {
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
    let mut group = testkit::process::spawn(&mut cmd);
    let stdout = group.child().stdout.take().expect("stdout");
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

pub(crate) fn our_worker_bindings(origin: &Origin, algorithm: &str) -> Value {
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

pub(crate) fn our_worker(opts: &Opts, name: &str, bindings: Value) -> Workerd {
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

pub(crate) struct Django {
    pub(crate) base: String,
    pub(crate) watch: Watch,
    pub(crate) group: Group,
    pub(crate) database: String,
}

pub(crate) fn django_source() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BENCH_DJANGO_DIR").map(PathBuf::from),
        Some(repo_root().join("../shared/reference/django")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("run.sh").exists())
}

pub(crate) async fn start_django(opts: &Opts, http: &reqwest::Client) -> Option<Django> {
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
    let mut group = testkit::process::spawn(&mut cmd);
    let leader = i32::try_from(group.child().id()).unwrap();
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
pub(crate) fn same_tree(source: &std::path::Path, copy: &std::path::Path) -> bool {
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
    pub(crate) async fn stop(mut self) {
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

pub(crate) fn jose_peer() -> Option<PathBuf> {
    let dir = std::env::var_os("BENCH_JOSE_DIR")
        .map_or_else(|| repo_root().join("target/bench/jose/dist"), PathBuf::from);
    dir.join("worker.mjs").exists().then_some(dir)
}

// ---------------------------------------------------------------------------------------------
// Micro results, Worker size, targets, report
