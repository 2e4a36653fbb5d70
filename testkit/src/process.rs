//! Child processes of the end-to-end tests and the benchmark: the repository's tools, `wrangler
//! dev`, and process groups that are always stopped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::free_port;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool's path from the environment, or the default place it is installed.
pub fn tool(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map_or(default, PathBuf::from)
}

pub fn home_bin(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cargo/bin")
        .join(name)
}

/// The environment the Node tools and worker-build run in: the repository's `node_modules/.bin`
/// first on `PATH`, the local wasm-bindgen and esbuild (worker-build would otherwise download
/// them), and no telemetry.
fn with_tools(cmd: &mut Command) -> &mut Command {
    let root = repo_root();
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            root.join("node_modules/.bin").display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("WRANGLER_SEND_METRICS", "false")
    .env("WRANGLER_SEND_ERROR_REPORTS", "false")
    .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
    .env(
        "WASM_BINDGEN_BIN",
        tool("WASM_BINDGEN_BIN", home_bin("wasm-bindgen")),
    )
    .env(
        "ESBUILD_BIN",
        tool("ESBUILD_BIN", root.join("node_modules/.bin/esbuild")),
    )
}

/// What the Worker's build is made from.
const WORKER_SOURCES: &[&str] = &[
    "edge/src",
    "shared/src",
    "edge/Cargo.toml",
    "shared/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
];

fn newest_change(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_change(&entry.ok()?.path()))
        .max()
}

/// The Worker as `wrangler.toml`'s build command makes it (`edge/build`), built once for every
/// test and benchmark: `scripts/test` builds it first; here it is built only when it is missing
/// or older than one of its sources, so `cargo test -p system-tests` alone works too.
pub fn built_worker() -> PathBuf {
    let root = repo_root();
    let build = root.join("edge/build");
    let built = newest_change(&build.join("index_bg.wasm"));
    let sources = WORKER_SOURCES
        .iter()
        .filter_map(|source| newest_change(&root.join(source)))
        .max();
    if built.is_none() || sources > built {
        println!("building the Worker (worker-build --release --no-opt; its sources changed)");
        let status = with_tools(&mut Command::new(tool(
            "WORKER_BUILD_BIN",
            home_bin("worker-build"),
        )))
        .current_dir(root.join("edge"))
        .args(["--release", "--no-opt"])
        .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "worker-build failed: install it with scripts/test (it installs the toolchain)"
        );
    }
    build
}

/// `wrangler.toml` for the [`built_worker`], written to `target/wrangler-<name>/`: the
/// repository's own without its build step (assets, Durable Objects and vars as they are), or,
/// without `durable_objects`, only the Worker and its assets (no bindings, no vars).
pub fn prebuilt_worker_config(name: &str, durable_objects: bool) -> PathBuf {
    let root = repo_root();
    let ours = std::fs::read_to_string(root.join("wrangler.toml")).unwrap();
    let mut config = String::new();
    let mut keep = true;
    let mut top_level = true;
    for line in ours.lines() {
        if line.starts_with('[') {
            top_level = false;
            let bindings = line.starts_with("[[durable_objects")
                || line.starts_with("[[migrations")
                || line == "[vars]";
            keep = line != "[build]" && (durable_objects || !bindings);
        }
        if !keep {
            continue;
        }
        let line = if top_level && line.starts_with("name = ") {
            format!("name = \"auth-edge-{name}\"")
        } else if line.starts_with("main = ") {
            format!("main = \"{}\"", built_worker().join("index.js").display())
        } else if line.starts_with("directory = ") {
            format!("directory = \"{}\"", root.join("edge/assets").display())
        } else {
            line.to_owned()
        };
        config.push_str(&line);
        config.push('\n');
    }
    let dir = root.join("target").join(format!("wrangler-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config).unwrap();
    path
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
    with_tools(&mut cmd).current_dir(&root).arg("dev");
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
    Group::spawn(&mut cmd)
}

/// A child process in its own process group, stopped (group-wide) on drop.
pub struct Group(pub Child);

impl Group {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(
            cmd.process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }

    /// TERM to the whole group, KILL after 10 s. Only while the leader has not been reaped:
    /// signalling a stale id could reach an unrelated process group.
    pub fn stop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let Ok(raw) = i32::try_from(self.0.id()) else {
            return;
        };
        if raw <= 1 {
            return;
        }
        let group = Pid::from_raw(raw);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
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
        if let Ok(Some(status)) = group.0.try_wait() {
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
