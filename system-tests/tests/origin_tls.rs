//! The origin terminating TLS itself (TLS_CERT, TLS_KEY): HTTPS on BIND that a client trusting
//! the test's CA accepts and others refuse, no plain HTTP beside it, the image's HEALTHCHECK
//! speaking TLS too, and a renewed certificate taken on SIGHUP without a restart (a broken one
//! keeps the previous).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::keys::Ed25519PrivateKey;
use testkit::{free_port, TestDb};

/// `curl` with `args`: the status code, or 0 when the connection or its verification fails.
fn curl_status(args: &[String]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// `https://localhost:port/healthz` trusting only the CA `ca`.
fn status_trusting(dir: &Path, ca: &str, port: u16) -> u16 {
    curl_status(&[
        "--cacert".into(),
        dir.join(format!("{ca}.pem")).display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}/healthz"),
    ])
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_on_bind_with_a_trusted_certificate_reloaded_on_sighup() {
    let dir = std::env::temp_dir().join(format!("origin-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    testkit::certs::ca(&dir, "ca");
    testkit::certs::ca(&dir, "other-ca");
    testkit::certs::server(&dir, "ca", "server");
    let db = TestDb::create().await;
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_origin-under-test");
    let tls_env = [
        ("BIND", format!("127.0.0.1:{port}")),
        ("TLS_CERT", dir.join("server.pem").display().to_string()),
        ("TLS_KEY", dir.join("server.key").display().to_string()),
    ];
    let mut origin = testkit::process::spawn(
        Command::new(bin)
            .arg("serve")
            .env_clear()
            .envs(tls_env.iter().cloned())
            .env("DATABASE_URL", &db.url)
            .env("METRICS_BIND", "off")
            .env(
                "ORIGIN_SIGNING_SECRET",
                "origin-tls-test-signing-secret-0123456789",
            )
            .env(
                "RESET_TOKEN_SECRET",
                "origin-tls-test-reset-secret-0123456789ab",
            )
            .env(
                "JWT_PRIVATE_KEY",
                Ed25519PrivateKey::from_seed([5; 32]).to_pem(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("HTTPS trusted by the test CA", || {
        status_trusting(&dir, "ca", port) == 200
    });
    assert_eq!(
        status_trusting(&dir, "other-ca", port),
        0,
        "another CA is refused"
    );
    assert_ne!(
        curl_status(&[format!("http://127.0.0.1:{port}/healthz")]),
        200,
        "no plain HTTP on BIND"
    );
    // The image's HEALTHCHECK, with the image's environment.
    let check = Command::new(bin)
        .arg("healthcheck")
        .env_clear()
        .envs(tls_env.iter().cloned())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "healthy");

    // A renewed certificate (from another CA, to tell them apart), then SIGHUP.
    testkit::certs::server(&dir, "other-ca", "renewed");
    std::fs::rename(dir.join("renewed.pem"), dir.join("server.pem")).unwrap();
    std::fs::rename(dir.join("renewed.key"), dir.join("server.key")).unwrap();
    let pid = i32::try_from(origin.child().id()).unwrap();
    let hangup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
    };
    hangup();
    wait_for("the renewed certificate after SIGHUP", || {
        status_trusting(&dir, "other-ca", port) == 200
    });
    assert_eq!(
        status_trusting(&dir, "ca", port),
        0,
        "the old chain is gone"
    );

    // A broken file on SIGHUP: the process stays, with the certificate it had.
    std::fs::write(dir.join("server.pem"), "not a certificate").unwrap();
    hangup();
    std::thread::sleep(Duration::from_millis(500));
    assert!(origin.exit_status().is_none(), "still running");
    assert_eq!(status_trusting(&dir, "other-ca", port), 200);
    origin.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
