//! What building and running the Worker needs, installed from the package registries only
//! (rustup, npm, crates.io, PyPI, Debian), and the environment the tools run in.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{fail, probe, run, step, succeeds, Result};
use crate::versions;

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

/// Where `cargo install` puts binaries.
pub fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map_or_else(|| home().join(".cargo"), PathBuf::from)
        .join("bin")
}

pub fn cargo_bin(name: &str) -> PathBuf {
    cargo_bin_dir().join(name)
}

/// A tool's path from the environment variable `var`, or `default`.
pub fn tool(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map_or(default, PathBuf::from)
}

/// Virtualenvs of the PyPI tools, one per version, in the user's cache directory, so fresh
/// clones (CI starts from one) reuse them.
pub fn tool_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("auth-api")
}

/// The environment the Node tools and worker-build run in: the repository's `node_modules/.bin`
/// and cargo's bin directory first on `PATH`, the local wasm-bindgen, esbuild and wasm-opt
/// (worker-build would otherwise download them), and no telemetry.
pub fn configure<'c>(root: &Path, cmd: &'c mut Command) -> &'c mut Command {
    let node_bin = root.join("node_modules/.bin");
    let path = std::env::join_paths([node_bin.clone(), cargo_bin_dir()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap_or_default();
    cmd.env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env(
            "WASM_BINDGEN_BIN",
            tool("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen")),
        )
        .env("ESBUILD_BIN", tool("ESBUILD_BIN", node_bin.join("esbuild")))
        .env(
            "WASM_OPT_BIN",
            tool("WASM_OPT_BIN", node_bin.join("wasm-opt")),
        )
}

/// A command in the repository root with the tools' environment.
pub fn command(root: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root);
    configure(root, &mut cmd);
    cmd
}

/// Installs what is missing: rustfmt, clippy and the wasm32 target; the npm packages
/// (wrangler with workerd, Node 22, binaryen, the docs bundles); Chromium (for the docs pages'
/// end-to-end check); worker-build and wasm-bindgen-cli (`cargo install`, ~20 minutes once).
pub fn ensure(root: &Path) -> Result {
    step("toolchain: rustfmt, clippy, wasm32-unknown-unknown");
    let _ = succeeds(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]));
    let targets = probe(Command::new("rustup").args(["target", "list", "--installed"]));
    if !targets.is_some_and(|t| t.lines().any(|l| l == "wasm32-unknown-unknown")) {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }

    step("Node tooling from npm: wrangler (workerd), Node 22, binaryen");
    let installed = root.join("node_modules/.package-lock.json");
    if !root.join("node_modules/.bin/wrangler").exists()
        || modified(&root.join("package-lock.json")) > modified(&installed)
    {
        run(command(root, "npm").args(["ci", "--no-audit", "--no-fund"]))?;
    }
    vendor_docs(root)?;

    step("Debian packages the tests run: chromium, sqlite3, jq, pgbouncer, haproxy");
    let missing: Vec<&str> = DEBIAN
        .iter()
        .filter(|(program, _, _)| on_path(program).is_none())
        .map(|&(_, package, _)| package)
        .collect();
    if !missing.is_empty() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let apt = || {
                let mut cmd = Command::new("apt-get");
                cmd.args(["install", "-y", "--no-install-recommends"])
                    .args(&missing);
                cmd
            };
            if run(&mut apt()).is_err() {
                run(Command::new("apt-get").arg("update"))?;
                run(&mut apt())?;
            }
        } else {
            for (program, package, what) in DEBIAN {
                if missing.contains(&package) {
                    eprintln!("{program} ({what}) is missing: sudo apt-get install {package}");
                }
            }
        }
    }

    step(&format!(
        "worker-build {} and wasm-bindgen-cli {} (cargo install, first run only: ~20 min)",
        versions::WORKER_BUILD,
        versions::WASM_BINDGEN
    ));
    cargo_install("worker-build", "worker-build", versions::WORKER_BUILD)?;
    cargo_install("wasm-bindgen-cli", "wasm-bindgen", versions::WASM_BINDGEN)
}

/// Debian packages whose programs the tests run: (program, package, what for).
const DEBIAN: [(&str, &str, &str); 5] = [
    ("chromium", "chromium", "the docs pages' end-to-end check"),
    (
        "sqlite3",
        "sqlite3",
        "reading workerd's Durable Object storage",
    ),
    ("jq", "jq", "the deploy guide's key rotation"),
    ("pgbouncer", "pgbouncer", "the transaction-pooling test"),
    ("haproxy", "haproxy", "two origins behind a load balancer"),
];

/// Where `program` is on `PATH` (Debian puts daemons in /usr/sbin), without running it.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `cargo install krate --version version` unless `bin --version` already says that version.
pub fn cargo_install(krate: &str, bin: &str, version: &str) -> Result {
    let current = probe(Command::new(cargo_bin(bin)).arg("--version"));
    if current.is_some_and(|v| v.contains(version)) {
        return Ok(());
    }
    let install = || {
        let mut cmd = Command::new("cargo");
        cmd.args(["install", krate, "--version", version]);
        cmd
    };
    // --locked fails on this registry mirror for some versions (wasm-bindgen-cli 0.2.130):
    // then without it.
    run(install().arg("--locked")).or_else(|_| run(&mut install()))
}

/// The docs pages' scripts and styles from the npm packages into the Worker's static assets
/// (`edge/vendor-docs.mjs`, which the Worker's own build in `wrangler.toml` runs too).
pub fn vendor_docs(root: &Path) -> Result {
    run(command(root, "node").arg("edge/vendor-docs.mjs"))
}

/// A virtualenv for a PyPI tool under [`tool_cache`], created with `installs` (each a `pip
/// install` argument list) unless `bin` is there already; returns the path of `bin`.
pub fn venv(name: &str, version: &str, bin: &str, installs: &[&[&str]]) -> Result<PathBuf> {
    let dir = tool_cache().join(format!("{name}-{version}"));
    let exe = dir.join("bin").join(bin);
    if exe.exists() {
        return Ok(exe);
    }
    step(&format!(
        "installing {name} {version} from PyPI into {}",
        dir.display()
    ));
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    for args in installs {
        run(Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(*args))?;
    }
    if !exe.exists() {
        return fail(format!(
            "{} is missing after installing {name}",
            exe.display()
        ));
    }
    Ok(exe)
}

/// `docker compose`: Docker's compose plugin when it is installed, else docker-compose from
/// PyPI (its PyYAML only builds with Cython < 3, hence the separate steps).
pub fn compose(root: &Path) -> Result<Command> {
    if succeeds(Command::new("docker").args(["compose", "version"])) {
        let mut cmd = Command::new("docker");
        cmd.current_dir(root).arg("compose");
        return Ok(cmd);
    }
    let pyyaml = format!("pyyaml=={}", versions::PYYAML);
    let compose = format!("docker-compose=={}", versions::DOCKER_COMPOSE);
    let exe = venv(
        "docker-compose",
        versions::DOCKER_COMPOSE,
        "docker-compose",
        &[
            &["cython<3", "wheel", "setuptools"],
            &["--no-build-isolation", &pyyaml],
            &[&compose],
        ],
    )?;
    let mut cmd = Command::new(exe);
    cmd.current_dir(root);
    Ok(cmd)
}
