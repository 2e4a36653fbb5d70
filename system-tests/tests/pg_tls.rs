//! TLS to PostgreSQL with libpq's `sslmode` semantics (`origin::tls::postgres`): a private cluster with
//! `ssl=on` and a certificate for `localhost` signed by a CA this test generates (openssl), and
//! the origin's own pool connecting with each mode.

use std::path::{Path, PathBuf};
use std::process::Command;

use origin::config::DatabaseArgs;
use secrecy::SecretString;
use testkit::cluster::PrivateCluster;

/// A CA, a server certificate for `localhost` it signed (PostgreSQL's to read), and an
/// unrelated CA.
fn certificates(dir: &Path) {
    testkit::certs::ca(dir, "ca");
    testkit::certs::ca(dir, "other-ca");
    testkit::certs::server(dir, "ca", "server");
    // PostgreSQL wants its key private to the server's user.
    let _ = Command::new("chown")
        .arg("postgres")
        .arg(dir.join("server.key"))
        .arg(dir.join("server.pem"))
        .status();
}

/// Connects with the origin's pool; `Ok(whether the session is encrypted)`, or the error.
async fn connect(url: &str) -> Result<bool, String> {
    let pool = origin::db::pool(&DatabaseArgs {
        database_url: SecretString::from(url.to_owned()),
        database_pool_size: 1,
        database_statements: origin::config::Statements::Named,
        migration_lock_timeout: 5,
    })
    .map_err(|e| format!("{e:#}"))?;
    let client = pool.get().await.map_err(|e| chain(&e))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| chain(&e))?;
    Ok(row.get(0))
}

/// An error with its causes, as the origin's log shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn each_sslmode_connects_or_refuses_as_libpq_does() {
    let dir: PathBuf = std::env::temp_dir().join(format!("pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let cluster = PrivateCluster::create_with(&[
        "ssl=on",
        &format!("ssl_cert_file={}", cert.display()),
        &format!("ssl_key_file={}", key.display()),
    ]);
    let port = cluster.port;
    let ca = dir.join("ca.pem");
    let other = dir.join("other-ca.pem");
    let url = |host: &str, query: String| {
        format!("postgres://postgres:not-a-secret@{host}:{port}/postgres?{query}")
    };
    let root = |path: &Path| format!("sslrootcert={}", path.display());

    let cases: Vec<(&str, String, Result<bool, &str>)> = vec![
        (
            "verify-full, the right CA and host name",
            url("localhost", format!("sslmode=verify-full&{}", root(&ca))),
            Ok(true),
        ),
        (
            "verify-full, another CA",
            url("localhost", format!("sslmode=verify-full&{}", root(&other))),
            Err("UnknownIssuer"),
        ),
        (
            "verify-full, a host name the certificate does not name",
            url("127.0.0.1", format!("sslmode=verify-full&{}", root(&ca))),
            Err("not valid for name"),
        ),
        (
            "verify-ca, any host name",
            url("127.0.0.1", format!("sslmode=verify-ca&{}", root(&ca))),
            Ok(true),
        ),
        (
            "verify-ca, another CA",
            url("127.0.0.1", format!("sslmode=verify-ca&{}", root(&other))),
            Err("UnknownIssuer"),
        ),
        (
            "require with a CA file checks the chain (libpq)",
            url("127.0.0.1", format!("sslmode=require&{}", root(&other))),
            Err("UnknownIssuer"),
        ),
        (
            "require, no CA: encrypted, not verified",
            url("127.0.0.1", "sslmode=require".into()),
            Ok(true),
        ),
        (
            "prefer (the default)",
            url("127.0.0.1", String::new()),
            Ok(true),
        ),
        (
            "disable",
            url("127.0.0.1", "sslmode=disable".into()),
            Ok(false),
        ),
    ];
    for (name, url, expected) in cases {
        let got = connect(&url).await;
        match (&got, expected) {
            (Ok(encrypted), Ok(want)) => assert_eq!(*encrypted, want, "{name}: encrypted"),
            (Err(error), Err(reason)) => {
                assert!(error.contains(reason), "{name}: {error}");
                assert!(
                    !error.contains("not-a-secret"),
                    "{name}: the password leaked: {error}"
                );
            }
            _ => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
        println!("{name}: {got:?}");
    }
    drop(cluster);
    std::fs::remove_dir_all(&dir).unwrap();
}
