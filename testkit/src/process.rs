//! Child processes of the end-to-end tests and the benchmark: the repository's tools, `wrangler
//! dev`, and process groups that are always stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub fn repo_root() -> PathBuf {
    xtask::repo_root()
}

/// The Worker as `wrangler.toml`'s build command makes it (`edge/build`), built once for every
/// test and benchmark: `cargo xtask test` builds it first; here it is built only when it is
/// missing or older than one of its sources (`xtask::worker`, the one rule for both), so
/// `cargo test -p system-tests` alone works too.
pub fn built_worker() -> PathBuf {
    xtask::worker::ensure_built(&repo_root()).unwrap_or_else(|err| panic!("{err}"))
}

/// `wrangler.toml` for the [`built_worker`], written to `target/wrangler-<name>/`
/// (`xtask::worker::prebuilt_config`).
pub fn prebuilt_worker_config(name: &str, durable_objects: bool) -> PathBuf {
    built_worker();
    xtask::worker::prebuilt_config(&repo_root(), name, durable_objects)
        .unwrap_or_else(|err| panic!("writing the prebuilt wrangler.toml: {err}"))
}

/// `wrangler dev` (the repository's wrangler.toml, or `config`) in its own process group, output
/// to `log_path`.
pub fn wrangler_dev(
    config: Option<&Path>,
    port: u16,
    state: &Path,
    log_path: &Path,
    vars: &[String],
) -> Group {
    let root = repo_root();
    let log = std::fs::File::create(log_path).unwrap();
    let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
    xtask::toolchain::configure(&root, &mut cmd)
        .current_dir(&root)
        .arg("dev");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args([
        "--ip",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        // Two wrangler dev may run at once (the Durable Object fault scenario).
        "--inspector-port",
        &free_port().to_string(),
        "--persist-to",
    ])
    .arg(state)
    // `log`: the Worker's console lines (our JSON logs) are written to the file.
    .args(["--log-level", "log"])
    .stdin(Stdio::null())
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log));
    for v in vars {
        cmd.arg("--var").arg(v);
    }
    spawn(&mut cmd)
}

/// A child process in its own process group, stopped (group-wide) on drop.
pub use xtask::cmd::Group;

/// `cmd` in its own process group ([`Group`], stopped when dropped); panics if it cannot start.
pub fn spawn(cmd: &mut Command) -> Group {
    let name = xtask::cmd::describe(cmd);
    Group::spawn(&name, cmd).unwrap_or_else(|err| panic!("{err}"))
}

/// [`wait_until_up`], failing at once (with the end of its log) if `group`'s leader exits first,
/// e.g. `wrangler dev` refusing its configuration.
pub async fn wait_until_serving(
    http: &reqwest::Client,
    url: &str,
    limit: Duration,
    group: &mut Group,
    log: &Path,
) {
    poll(http, url, limit, || {
        if let Some(status) = group.exit_status() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{url}: the process exited ({status}) before serving; {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
    })
    .await;
}

pub async fn wait_until_up(http: &reqwest::Client, url: &str, limit: Duration) {
    poll(http, url, limit, || {}).await;
}

/// GETs `url` every 250 ms until it answers 2xx, running `between` after each miss; panics
/// after `limit`.
async fn poll(http: &reqwest::Client, url: &str, limit: Duration, mut between: impl FnMut()) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        between();
        assert!(
            Instant::now() < deadline,
            "{url} did not come up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
