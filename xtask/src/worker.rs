//! The Worker (`edge/build`) as `wrangler.toml`'s build command makes it, built once and reused
//! by the tests, the API fuzzing and the benchmark, and the `wrangler.toml` that serves it
//! without building it again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::cmd::{output, run, Error, Result};
use crate::toolchain;

/// What the Worker's build is made from, and the commit it names (`x-auth-api-version`: the
/// branch's ref moves at each commit; a tree without `.git` has only the sources).
pub const SOURCES: &[&str] = &[
    "edge/src",
    "edge/build.rs",
    "shared/src",
    "shared/build_commit.rs",
    "edge/Cargo.toml",
    "shared/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
    ".git/HEAD",
    ".git/refs/heads",
    ".git/packed-refs",
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
    config_for(root, root, name, durable_objects)
}

/// [`prebuilt_config`] for the Worker built in `tree` (this checkout, or another release's
/// sources), with `tree`'s own `wrangler.toml`; written under `root`'s `target/`.
pub fn config_for(root: &Path, tree: &Path, name: &str, durable_objects: bool) -> Result<PathBuf> {
    let ours = std::fs::read_to_string(tree.join("wrangler.toml"))?;
    let config = rewrite_config(
        &ours,
        name,
        durable_objects,
        &build_dir(tree).join("index.js"),
        &tree.join("edge/assets"),
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

/// Cloudflare's limit on a Worker's compressed size on the Free plan (Paid: 10 MiB).
pub const FREE_PLAN_GZIP_KIB: f64 = 3072.0;

/// The docs pages' bundles the Worker's own build copies into its assets (`edge/vendor-docs.mjs`).
const VENDORED: &[&str] = &[
    "edge/assets/swagger/swagger-ui.css",
    "edge/assets/swagger/swagger-ui-bundle.js",
    "edge/assets/redoc/redoc.standalone.js",
];

/// `wrangler deploy --dry-run --outdir target/deploy` with the repository's own wrangler.toml
/// (its `[build]` too: what `wrangler deploy` from a fresh clone does), and the checks on what
/// it would upload: the docs bundles were produced by that build, every Durable Object binding
/// is bound and created by a migration, and the size fits the Free plan. Returns the gzip
/// size in KiB. `adjust` may add to the command's environment.
pub fn deploy_dry_run(root: &Path, adjust: impl FnOnce(&mut Command)) -> Result<f64> {
    for file in VENDORED {
        let _ = std::fs::remove_file(root.join(file));
    }
    let config = std::fs::read_to_string(root.join("wrangler.toml"))?;
    let gaps = migration_gaps(&config);
    if !gaps.is_empty() {
        return Err(Error(format!(
            "wrangler.toml: Durable Object classes bound without a [[migrations]] entry creating them: {gaps:?}"
        )));
    }
    let out = root.join("target/deploy");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = toolchain::command(root, "wrangler");
    cmd.args(["deploy", "--dry-run", "--outdir"]).arg(&out);
    adjust(&mut cmd);
    let printed = output(&mut cmd)?;
    print!("{printed}");
    for file in VENDORED {
        if !root.join(file).is_file() {
            return Err(Error(format!(
                "the Worker's build did not produce {file} (wrangler.toml [build] runs edge/vendor-docs.mjs)"
            )));
        }
    }
    for (binding, _) in durable_object_bindings(&config) {
        if !printed.contains(&format!("env.{binding} (")) {
            return Err(Error(format!("the bundle does not bind {binding}")));
        }
    }
    let gzip = gzip_kib(&printed)
        .ok_or_else(|| Error("wrangler printed no `Total Upload: … / gzip: … KiB`".into()))?;
    if gzip > FREE_PLAN_GZIP_KIB {
        return Err(Error(format!(
            "the bundle is {gzip:.0} KiB gzip, over the Free plan's {FREE_PLAN_GZIP_KIB:.0} KiB"
        )));
    }
    Ok(gzip)
}

/// `name`/`class_name` of each `[[durable_objects.bindings]]` table.
fn durable_object_bindings(config: &str) -> Vec<(String, String)> {
    let mut bindings = Vec::new();
    let mut section = "";
    let (mut name, mut class) = (None, None);
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            if let (Some(n), Some(c)) = (name.take(), class.take()) {
                bindings.push((n, c));
            }
            section = line;
            continue;
        }
        if section != "[[durable_objects.bindings]]" {
            continue;
        }
        if let Some(value) = string_value(line, "name") {
            name = Some(value);
        } else if let Some(value) = string_value(line, "class_name") {
            class = Some(value);
        }
    }
    if let (Some(n), Some(c)) = (name, class) {
        bindings.push((n, c));
    }
    bindings
}

fn string_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    Some(rest.trim_matches('"').to_owned())
}

/// Bound classes that no `[[migrations]]` entry creates (`new_classes`/`new_sqlite_classes`).
fn migration_gaps(config: &str) -> Vec<String> {
    let created: Vec<String> = config
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("new_classes") || line.starts_with("new_sqlite_classes"))
        .flat_map(|line| {
            let list = line.split_once('=').map_or("", |(_, v)| v);
            list.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())
                .split(',')
                .map(|class| class.trim().trim_matches('"').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    durable_object_bindings(config)
        .into_iter()
        .map(|(_, class)| class)
        .filter(|class| !created.contains(class))
        .collect()
}

/// The gzip figure of wrangler's `Total Upload: 1258.95 KiB / gzip: 420.08 KiB` line.
fn gzip_kib(printed: &str) -> Option<f64> {
    let line = printed.lines().find(|l| l.starts_with("Total Upload:"))?;
    line.split("gzip:")
        .nth(1)?
        .trim()
        .strip_suffix("KiB")?
        .trim()
        .parse()
        .ok()
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
    fn every_bound_durable_object_class_needs_a_migration() {
        let bound = "[[durable_objects.bindings]]\nname = \"RATE_LIMITER\"\nclass_name = \"RateLimiter\"\n\n[[durable_objects.bindings]]\nname = \"OTP_STORE\"\nclass_name = \"OtpStore\"\n";
        assert_eq!(
            durable_object_bindings(bound),
            [
                ("RATE_LIMITER".to_owned(), "RateLimiter".to_owned()),
                ("OTP_STORE".to_owned(), "OtpStore".to_owned())
            ]
        );
        let both = format!("{bound}\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"RateLimiter\", \"OtpStore\"]\n");
        assert!(migration_gaps(&both).is_empty());
        let one = format!(
            "{bound}\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"RateLimiter\"]\n"
        );
        assert_eq!(migration_gaps(&one), ["OtpStore"]);
        let ours = std::fs::read_to_string(crate::repo_root().join("wrangler.toml")).unwrap();
        assert_eq!(durable_object_bindings(&ours).len(), 2);
        assert!(migration_gaps(&ours).is_empty());
    }

    #[test]
    fn the_gzip_size_is_read_from_wranglers_summary() {
        let printed = "✨ Read 11 files\nTotal Upload: 1258.95 KiB / gzip: 420.08 KiB\nYour Worker";
        assert_eq!(gzip_kib(printed), Some(420.08));
        assert_eq!(gzip_kib("nothing"), None);
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
