//! The Worker (`edge/build`) as `wrangler.toml`'s build command makes it, built once and reused
//! by the tests, the API fuzzing and the benchmark, and the `wrangler.toml` that serves it
//! without building it again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::cmd::{output, run, Error, Result};
use crate::toolchain;

/// What the Worker's build is made from.
pub const SOURCES: &[&str] = &[
    "edge/src",
    "shared/src",
    "edge/Cargo.toml",
    "shared/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
];

pub fn build_dir(root: &Path) -> PathBuf {
    root.join("edge/build")
}

fn wasm(root: &Path) -> PathBuf {
    build_dir(root).join("index_bg.wasm")
}

fn newest_change(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest_change(&entry.ok()?.path()))
        .max()
}

/// Whether `edge/build` exists and is newer than every one of its [`SOURCES`].
pub fn is_current(root: &Path) -> bool {
    let built = newest_change(&wasm(root));
    let sources = SOURCES
        .iter()
        .filter_map(|source| newest_change(&root.join(source)))
        .max();
    built.is_some() && sources <= built
}

/// Builds the Worker (`worker-build --release --no-opt` in `edge/`, as `wrangler.toml` does);
/// `adjust` may add to the command's environment (the test task adds clippy's lints).
pub fn build(root: &Path, adjust: impl FnOnce(&mut Command)) -> Result<PathBuf> {
    let worker_build = toolchain::tool("WORKER_BUILD_BIN", toolchain::cargo_bin("worker-build"));
    let mut cmd = toolchain::command(root, worker_build);
    cmd.current_dir(root.join("edge"))
        .args(["--release", "--no-opt"]);
    adjust(&mut cmd);
    run(&mut cmd).map_err(|err| {
        Error(format!(
            "{err}: worker-build builds the Worker (`cargo xtask test` installs it)"
        ))
    })?;
    Ok(build_dir(root))
}

/// `edge/build`, built first if it is missing or older than one of its sources.
pub fn ensure_built(root: &Path) -> Result<PathBuf> {
    if is_current(root) {
        return Ok(build_dir(root));
    }
    println!("building the Worker (worker-build --release --no-opt; its sources changed)");
    build(root, |_| {})
}

/// The Wasm's size in bytes, raw and gzip -9 (what Cloudflare's size limit counts).
pub fn size(root: &Path) -> Result<(u64, u64)> {
    let raw = std::fs::metadata(wasm(root))?.len();
    let gzip = output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -9 -c '{}' | wc -c", wasm(root).display())),
    )?;
    let gzip = gzip
        .trim()
        .parse()
        .map_err(|_| Error(format!("gzip size: {gzip}")))?;
    Ok((raw, gzip))
}

/// `wrangler.toml` for the built Worker, written to `target/wrangler-<name>/`: the repository's
/// own without its build step and named `auth-edge-<name>` (assets, Durable Objects and vars as
/// they are), or, without `durable_objects`, only the Worker and its assets (no bindings, no
/// vars).
pub fn prebuilt_config(root: &Path, name: &str, durable_objects: bool) -> Result<PathBuf> {
    let ours = std::fs::read_to_string(root.join("wrangler.toml"))?;
    let config = rewrite_config(
        &ours,
        name,
        durable_objects,
        &build_dir(root).join("index.js"),
        &root.join("edge/assets"),
    );
    let dir = root.join("target").join(format!("wrangler-{name}"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn rewrite_config(
    ours: &str,
    name: &str,
    durable_objects: bool,
    main: &Path,
    assets: &Path,
) -> String {
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
            format!("main = \"{}\"", main.display())
        } else if line.starts_with("directory = ") {
            format!("directory = \"{}\"", assets.display())
        } else {
            line.to_owned()
        };
        config.push_str(&line);
        config.push('\n');
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = r#"name = "auth-edge"
main = "build/index.js"

[build]
command = "cargo install -q worker-build && worker-build --release"

[assets]
directory = "assets"

[[durable_objects.bindings]]
name = "RATE_LIMITER"

[vars]
THROTTLE_RATES = ""
"#;

    #[test]
    fn the_prebuilt_config_serves_the_built_worker_without_building_it() {
        let config = rewrite_config(OURS, "e2e", true, Path::new("/b/index.js"), Path::new("/a"));
        assert!(config.starts_with("name = \"auth-edge-e2e\"\nmain = \"/b/index.js\"\n"));
        assert!(!config.contains("[build]") && !config.contains("worker-build"));
        assert!(config.contains("directory = \"/a\""));
        assert!(config.contains("[[durable_objects.bindings]]") && config.contains("[vars]"));
    }

    #[test]
    fn without_durable_objects_only_the_worker_and_its_assets_are_left() {
        let config = rewrite_config(OURS, "x", false, Path::new("/b/index.js"), Path::new("/a"));
        assert!(!config.contains("durable_objects") && !config.contains("[vars]"));
        assert!(config.contains("[assets]"));
    }

    #[test]
    fn a_source_newer_than_the_build_makes_it_stale() {
        let root = std::env::temp_dir().join(format!("xtask-worker-{}", std::process::id()));
        std::fs::create_dir_all(root.join("edge/build")).unwrap();
        std::fs::create_dir_all(root.join("edge/src")).unwrap();
        assert!(!is_current(&root), "no build yet");
        std::fs::write(root.join("edge/src/lib.rs"), "").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(wasm(&root), "").unwrap();
        assert!(is_current(&root));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("edge/src/lib.rs"), "// changed").unwrap();
        assert!(!is_current(&root), "a changed source");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
