//! `cargo xtask fuzz api | shared`: Schemathesis against the running system's OpenAPI document,
//! and coverage-guided fuzzing (cargo-fuzz) of the shared parsers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use xtask::cmd::{fail, free_port, output, run as run_cmd, step, Error, Result};
use xtask::{toolchain, versions};

use super::dev::{build_origin, without_query, Stack, StackOptions};
use super::{database_url, Args};

pub fn run(root: &Path, args: &[String]) -> Result {
    let parsed = Args::parse(args, &[], &["--examples", "--seconds"])?;
    match parsed.positional.as_slice() {
        ["api"] => {
            toolchain::ensure(root)?;
            api(root, parsed.number("--examples", 120)?, None)
        }
        ["shared"] => shared(root, parsed.number("--seconds", 60)?),
        _ => fail("cargo xtask fuzz api [--examples N] | shared [--seconds N]"),
    }
}

/// Starts the stack (a fresh database on DATABASE_URL's server, the origin, wrangler dev with
/// the Worker built already) with throttles raised, signs up a user so authenticated routes
/// are exercised too, and runs every Schemathesis phase (examples, coverage, fuzzing, stateful)
/// with the checks that matter here: no 5xx, responses that match the documented status codes,
/// content types and schemas. Reports (JUnit) and the stack's output go to target/fuzz-api/.
/// `origin_bin`: an origin built already (the test task passes its debug build).
pub fn api(root: &Path, max_examples: u64, origin_bin: Option<PathBuf>) -> Result {
    let schemathesis_pin = format!("schemathesis=={}", versions::SCHEMATHESIS);
    let schemathesis = toolchain::venv(
        "schemathesis",
        versions::SCHEMATHESIS,
        "schemathesis",
        &[&[&schemathesis_pin]],
    )?;
    let out = root.join("target/fuzz-api");
    std::fs::create_dir_all(&out)?;
    let database = Database::create(&database_url(), "auth_fuzz_api")?;

    let edge_port = free_port()?;
    step(&format!(
        "starting the stack on edge :{edge_port} (output in target/fuzz-api/dev.log)"
    ));
    let mut stack = Stack::start(
        root,
        &StackOptions {
            edge_port,
            origin_port: free_port()?,
            metrics_port: free_port()?,
            dir: out.join("stack"),
            database_url: Some(database.url.clone()),
            origin_bin: Some(match origin_bin {
                Some(bin) => bin,
                None => build_origin(root)?,
            }),
            prebuilt_worker: true,
            log: Some(out.join("dev.log")),
            vars: vec![(
                "THROTTLE_RATES".into(),
                "anon=100000/sec,user=100000/sec,auth=100000/sec,password_reset=100000/sec,\
                 password_reset_site=100000/sec,password_reset_provider=100000/sec,\
                 password_reset_all=100000/sec"
                    .into(),
            )],
        },
    )
    .map_err(|err| {
        Error(format!(
            "{err} (target/fuzz-api/dev.log has the stack's output)"
        ))
    })?;
    let base = stack.edge_url();

    step("a user for the authenticated routes");
    let post = |path: &str, body: &str| {
        output(Command::new("curl").args([
            "-s",
            &format!("{base}/api/auth/{path}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ]))
    };
    let user = r#"{"email":"fuzz@example.com","username":"fuzz","password":"73926481"}"#;
    post("users/", user)?;
    let tokens = post(
        "jwt/create/",
        r#"{"email":"fuzz@example.com","password":"73926481"}"#,
    )?;
    let Some(access) = json_string(&tokens, "access") else {
        return fail(format!("no access token for the fuzz user: {tokens}"));
    };

    step(&format!(
        "schemathesis: {max_examples} examples per operation against {base}/api/schema/"
    ));
    let mut child = Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{base}/api/schema/"))
        .args(["--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--header", &format!("Authorization: Bearer {access}")])
        .args(["--generation-database", "none", "--request-timeout", "30"])
        .args([
            "--seed",
            &std::env::var("FUZZ_SEED").unwrap_or_else(|_| "20261125".into()),
        ])
        .args(["--report", "junit", "--report-dir"])
        .arg(&out)
        .arg("--no-color")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut log = std::fs::File::create(out.join("schemathesis.log"))?;
    let mut server_error = false;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        writeln!(log, "{line}")?;
        server_error |= mentions_server_error(&line);
    }
    let status = child.wait()?;
    stack.stop();
    drop(database);
    if server_error {
        return fail("a 5xx was answered (see target/fuzz-api/schemathesis.log)");
    }
    if !status.success() {
        return fail(format!(
            "schemathesis failed ({status}): see target/fuzz-api/schemathesis.log"
        ));
    }
    Ok(())
}

/// Whether a line of Schemathesis' report shows a 5xx answer (`Server error`, or a status line
/// such as `" 502 `).
fn mentions_server_error(line: &str) -> bool {
    line.contains("Server error")
        || line.match_indices("\" 5").any(|(at, _)| {
            let rest = &line.as_bytes()[at + 2..];
            rest.len() >= 4 && rest[1..3].iter().all(u8::is_ascii_digit) && rest[3] == b' '
        })
}

/// The value of a string field in compact JSON (`"name":"value"`, no escapes in the value:
/// enough for a JWT).
fn json_string(json: &str, name: &str) -> Option<String> {
    let start = json.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let len = json[start..].find('"')?;
    Some(json[start..start + len].to_owned())
}

/// A database of its own on the server of `server_url`, dropped when this is dropped.
pub struct Database {
    pub url: String,
    server_url: String,
    name: String,
}

impl Database {
    pub fn create(server_url: &str, prefix: &str) -> Result<Database> {
        let name = format!("{prefix}_{}", std::process::id());
        let base = without_query(server_url);
        let query = &server_url[base.len()..];
        let Some(slash) = base.rfind('/').filter(|i| *i > "postgres://".len()) else {
            return fail(format!(
                "DATABASE_URL names no database: {base} (postgres://user@host:port/db)"
            ));
        };
        let database = Database {
            url: format!("{}/{name}{query}", &base[..slash]),
            server_url: server_url.to_owned(),
            name,
        };
        database.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            database.name
        ))?;
        database.psql(&format!("CREATE DATABASE {}", database.name))?;
        Ok(database)
    }

    fn psql(&self, sql: &str) -> Result {
        run_cmd(
            Command::new("psql")
                .args([
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    &self.server_url,
                    "-c",
                    sql,
                ])
                .stdout(Stdio::null()),
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Each target for `seconds`; a crash stops the run with the input saved under
/// fuzz/artifacts/<target>/: fix the cause and add that input as a unit test next to the code
/// it broke (none so far). cargo-fuzz normally wants a nightly compiler; only the machine's
/// stable Rust can be installed here, so the run sets RUSTC_BOOTSTRAP=1 (the sanitizer flag is
/// the only unstable one used).
pub fn shared(root: &Path, seconds: u64) -> Result {
    step(&format!(
        "cargo-fuzz {} (cargo install, first run only)",
        versions::CARGO_FUZZ
    ));
    toolchain::cargo_install("cargo-fuzz", "cargo-fuzz", versions::CARGO_FUZZ)?;
    for target in ["token", "throttle_rates", "validators", "signature"] {
        step(&format!("fuzz {target} for {seconds} s"));
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let log_path = root.join(format!("fuzz/{target}.log"));
        let log = std::fs::File::create(&log_path)?;
        let status = Command::new("cargo")
            .current_dir(root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                "--fuzz-dir",
                "fuzz",
                "--sanitizer",
                "none",
                target,
            ])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-max_len=8192", "-print_final_stats=1"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            return fail(format!(
                "fuzz target {target} failed: the input is in fuzz/artifacts/{target}/"
            ));
        }
        for line in text.lines().filter(|line| {
            (line.starts_with('#') && line.contains("DONE"))
                || line.starts_with("stat::number_of_executed_units")
                || line.starts_with("stat::peak_rss_mb")
        }) {
            println!("{line}");
        }
    }
    step("fuzzing found nothing");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_is_read_from_the_login_answer() {
        let answer = r#"{"refresh":"r.r.r","access":"a.b.c"}"#;
        assert_eq!(json_string(answer, "access").as_deref(), Some("a.b.c"));
        assert_eq!(json_string(answer, "missing"), None);
    }

    #[test]
    fn a_5xx_in_the_report_is_noticed() {
        assert!(mentions_server_error("[500] Server error"));
        assert!(mentions_server_error("curl -X POST ... \" 502 Bad Gateway"));
        assert!(!mentions_server_error("\" 5 passed"));
        assert!(!mentions_server_error("504 generated, 504 passed"));
    }
}
