//! Three origins behind a real load balancer (HAProxy, Debian's package) with the Worker in
//! front under `wrangler dev`, under load: one is stopped as orchestrators stop a replica
//! (SIGTERM), then another is killed (SIGKILL). Clients may see the requests that were in flight
//! on the killed one fail, as 503 (the edge turns an origin that drops the connection into 503),
//! never a 500; the balancer sends everything after that to the survivor. Every queued email is
//! delivered: exactly once across the graceful stop (the sender finishes the email it is sending
//! and stops), and across the kill at most the one email the dead sender was sending is
//! delivered twice (it died between the SMTP server's acceptance and its commit: no SMTP
//! delivery can be exactly once across a SIGKILL; `SKIP LOCKED` claims roll back with the dead
//! connection, so the survivor sends the rest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use testkit::process::{
    prebuilt_worker_config, spawn, wait_until_serving, wait_until_up, wrangler_dev, Group,
};
use testkit::{free_port, read, SmtpSink, TestDb, PASSWORD};
use tokio::net::TcpListener;

const SIGNING: &str = "replicas-origin-signing-secret-0123456789ab";
const RESET: &str = "replicas-reset-token-secret-0123456789abcdef";
const OTP: &str = "replicas-otp-secret-0123456789abcdefghijklmn";
/// Clients sending at once: at most this many requests are in flight when the origin dies.
const CLIENTS: usize = 8;
const LOAD: Duration = Duration::from_secs(15);
const STOP_AFTER: Duration = Duration::from_secs(4);
const KILL_AFTER: Duration = Duration::from_secs(9);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("replicas-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn origin(env: &[(String, String)], port: u16, log: &Path) -> Group {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin-under-test"));
    cmd.arg("serve")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("METRICS_BIND", "off")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    spawn(&mut cmd)
}

fn haproxy_config(listen: u16, [a, b, c]: [u16; 3]) -> String {
    // Retries only when the connection to a server fails, i.e. the request never reached it:
    // a POST that reached the dying origin is not replayed (it may have been applied).
    format!(
        "global\n  maxconn 256\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
         retries 3\n  option redispatch\n  retry-on conn-failure\n\
         frontend edge\n  bind 127.0.0.1:{listen}\n  default_backend origins\n\
         backend origins\n  balance roundrobin\n  option httpchk GET /healthz\n  \
         server a 127.0.0.1:{a} check inter 500ms fall 2 rise 1\n  \
         server b 127.0.0.1:{b} check inter 500ms fall 2 rise 1\n  \
         server c 127.0.0.1:{c} check inter 500ms fall 2 rise 1\n"
    )
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<(&'static str, u16), usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_and_killing_replicas_under_load_costs_at_most_the_in_flight_requests() {
    let haproxy = xtask::toolchain::on_path("haproxy")
        .expect("haproxy is missing: apt-get install haproxy (cargo xtask test installs it)");
    let scratch = Scratch::new();
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
        ("LOG_FORMAT", "json".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let lb_port = free_port();
    let mut origins = Vec::new();
    for (name, port) in ["a", "b", "c"].iter().zip(ports) {
        // One after another: each waits for the previous one's migrations.
        origins.push(origin(
            &env,
            port,
            &scratch.0.join(format!("origin-{name}.log")),
        ));
        wait_until_up(
            &http,
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(30),
        )
        .await;
    }
    let config = scratch.0.join("haproxy.cfg");
    std::fs::write(&config, haproxy_config(lb_port, ports)).unwrap();
    let lb_log = std::fs::File::create(scratch.0.join("haproxy.log")).unwrap();
    let _lb = spawn(
        Command::new(&haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::from(lb_log.try_clone().unwrap()))
            .stderr(Stdio::from(lb_log)),
    );
    wait_until_up(
        &http,
        &format!("http://127.0.0.1:{lb_port}/readyz"),
        Duration::from_secs(30),
    )
    .await;

    let vars = vec![
        format!("ORIGIN_URL:http://127.0.0.1:{lb_port}"),
        format!("JWT_PUBLIC_KEYS:{jwks}"),
        format!("ORIGIN_SIGNING_SECRET:{SIGNING}"),
        format!("RESET_TOKEN_SECRET:{RESET}"),
        format!("OTP_SECRET:{OTP}"),
        // The load comes from a few addresses; the throttles are not under test here.
        "THROTTLE_RATES:anon=100000/day,user=100000/day,auth=100000/min,password_reset=100000/hour,\
         password_reset_site=100000/hour,password_reset_provider=100000/hour,password_reset_all=100000/hour"
            .to_owned(),
        "ORIGIN_TIMEOUT_MS:10000".to_owned(),
    ];
    let edge_port = free_port();
    let wrangler_log = scratch.0.join("wrangler.log");
    let state = scratch.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut edge_group = wrangler_dev(
        Some(&prebuilt_worker_config("replicas", true)),
        edge_port,
        &state,
        &wrangler_log,
        &vars,
    );
    let edge = format!("http://127.0.0.1:{edge_port}");
    wait_until_serving(
        &http,
        &format!("{edge}/.well-known/jwks.json"),
        Duration::from_secs(600),
        &mut edge_group,
        &wrangler_log,
    )
    .await;

    // Each client signs up new accounts and asks for a reset code for each, until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, edge, stop, in_flight) =
                (http.clone(), edge.clone(), stop.clone(), in_flight.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut n = 0;
                let ip = format!("198.51.100.{}", 10 + client);
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let email = format!("c{client}n{n}@example.com");
                    let call = |path: &'static str, body: serde_json::Value| {
                        let (http, edge, ip, in_flight) =
                            (http.clone(), edge.clone(), ip.clone(), in_flight.clone());
                        async move {
                            in_flight.fetch_add(1, Ordering::SeqCst);
                            let reply = http
                                .post(format!("{edge}{path}"))
                                .header("CF-Connecting-IP", ip)
                                .json(&body)
                                .send()
                                .await
                                .expect("the edge answers");
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            read(reply).await
                        }
                    };
                    let signup = call(
                        "/api/auth/users/",
                        json!({"email": email, "username": format!("c{client}n{n}"),
                               "password": PASSWORD}),
                    )
                    .await;
                    *tally
                        .statuses
                        .entry(("sign-up", signup.status.as_u16()))
                        .or_default() += 1;
                    if signup.status == StatusCode::SERVICE_UNAVAILABLE {
                        assert_eq!(
                            signup.body,
                            json!({"detail": shared::api::DETAIL_UNAVAILABLE})
                        );
                    }
                    let reset = call("/api/auth/password/reset/", json!({ "email": email })).await;
                    *tally
                        .statuses
                        .entry(("reset", reset.status.as_u16()))
                        .or_default() += 1;
                }
                tally
            })
        })
        .collect();

    let started = Instant::now();
    tokio::time::sleep(STOP_AFTER).await;
    // a: stopped as a replica is stopped (SIGTERM): in-flight requests finish, the sender
    // finishes its email and stops.
    let a = &mut origins[0];
    let pid = nix::unistd::Pid::from_raw(a.child().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = a.child().wait().unwrap();
    assert!(status.success(), "origin a stopped cleanly: {status}");
    println!(
        "stopped origin a (SIGTERM) after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Whatever a left queued is sent by b or c, and nothing it sent is sent again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let twice = delivered_twice(&sink);
    assert!(
        twice.is_empty(),
        "after a graceful stop, no email is delivered twice: {twice:?}"
    );
    tokio::time::sleep(KILL_AFTER.saturating_sub(started.elapsed())).await;
    // b: killed.
    let in_flight_at_kill = in_flight.load(Ordering::SeqCst);
    let b = &mut origins[1];
    let pid = nix::unistd::Pid::from_raw(b.child().id() as i32);
    nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = b.child().wait();
    println!(
        "killed origin b (SIGKILL) after {:.1} s with {in_flight_at_kill} requests in flight at the edge",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(LOAD.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    let mut total: BTreeMap<(&'static str, u16), usize> = BTreeMap::new();
    for client in clients {
        for (k, v) in client.await.unwrap().statuses {
            *total.entry(k).or_default() += v;
        }
    }
    let count = |what: &str, status: u16| total.get(&(what, status)).copied().unwrap_or(0);
    let requests: usize = total.values().sum();
    let unavailable = count("sign-up", 503) + count("reset", 503);
    println!("{requests} requests: {total:?}");
    let unexpected: Vec<_> = total
        .iter()
        .filter(|((what, status), _)| {
            !matches!(
                (*what, *status),
                ("sign-up", 201 | 503) | ("reset", 200 | 503)
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 201/200, or 503 for what was in flight: {unexpected:?}"
    );
    assert!(count("sign-up", 201) > 20, "the load ran: {total:?}");
    assert!(
        unavailable <= CLIENTS,
        "at most the {CLIENTS} requests in flight fail: {unavailable} answered 503"
    );

    // Every queued email is sent, by the survivor where the killed origin had not.
    db.outbox_drained(Duration::from_secs(60)).await;
    let client = db.client().await;
    let queued: Vec<String> = client
        .query("SELECT to_address FROM email_outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Give a late duplicate, if there were one, the time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = sink.messages();
    let delivered = sink.recipients();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for to in &queued {
        *expected.entry(to.clone()).or_default() += 1;
    }
    let twice = delivered_twice(&sink);
    println!(
        "{} emails queued, {} delivered, {} delivered twice, {} resets answered 200",
        queued.len(),
        messages.len(),
        twice.len(),
        count("reset", 200)
    );
    assert!(queued.len() > 20, "emails were queued: {}", queued.len());
    // Every queued email delivered; twice at most the one the killed sender was sending.
    let once: BTreeMap<String, usize> = delivered.keys().map(|to| (to.clone(), 1)).collect();
    assert_eq!(
        once, expected,
        "every queued email delivered, to its recipient"
    );
    assert!(
        twice.len() <= 1,
        "at most the email in flight on the killed sender is delivered twice: {twice:?}"
    );
}

/// Recipients that got more than one message (each test address is sent one reset code).
fn delivered_twice(sink: &SmtpSink) -> Vec<String> {
    sink.recipients()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(to, _)| to)
        .collect()
}
