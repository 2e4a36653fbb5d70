//! The previous release, as `RELEASES` names it, built from this repository's own history for
//! the upgrade and rollback test (`system-tests/tests/upgrade.rs`, run by `cargo xtask
//! upgrade`): its sources from `git archive`, its origin binary and its Worker, kept under
//! `target/releases/` so a second run builds nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cmd::{fail, output, run, step, Error, Result};
use crate::{toolchain, worker};

/// A released version and the commit it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub commit: String,
}

/// What changes the contract between two releases: when one of these differs from the previous
/// release, the upgrade test runs in `cargo xtask test` (it takes several minutes of builds).
pub const CONTRACT: &[&str] = &["migrations", "shared/src/signing.rs"];

/// `RELEASES`' lines, `<version> <commit>`, oldest first (`#` starts a comment).
pub fn parse(text: &str) -> Result<Vec<Release>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [version, commit]
                    if commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    Ok(Release {
                        version: version.to_owned(),
                        commit: commit.to_owned(),
                    })
                }
                _ => fail(format!(
                    "RELEASES: `{line}` is not `<version> <40-hex commit>`"
                )),
            },
        )
        .collect()
}

/// The newest release `RELEASES` names.
pub fn previous(root: &Path) -> Result<Release> {
    let text = std::fs::read_to_string(root.join("RELEASES"))?;
    parse(&text)?
        .pop()
        .ok_or_else(|| Error("RELEASES names no release".into()))
}

/// Why `cargo xtask test` runs the upgrade test, if it should: `UPGRADE_TEST=1`; a file of
/// [`CONTRACT`] that differs from the previous release; or the previous release itself
/// changed in the last commit (a release was just named).
pub fn why_test(root: &Path) -> Result<Option<String>> {
    if std::env::var("UPGRADE_TEST").is_ok_and(|v| v == "1") {
        return Ok(Some("UPGRADE_TEST=1".into()));
    }
    let release = previous(root)?;
    let changed = output(
        Command::new("git")
            .current_dir(root)
            .args(["diff", "--name-only", &release.commit, "HEAD", "--"])
            .args(CONTRACT),
    )
    .map_err(|e| history_missing(&release, e))?;
    if let Some(file) = changed.lines().next() {
        return Ok(Some(format!("{file} changed since {}", release.version)));
    }
    let before = Command::new("git")
        .current_dir(root)
        .args(["show", "HEAD~1:RELEASES"])
        .output()?;
    let named_before = parse(&String::from_utf8_lossy(&before.stdout))
        .ok()
        .and_then(|mut r| r.pop());
    if named_before.as_ref() != Some(&release) {
        return Ok(Some(format!(
            "RELEASES names {} in the last commit",
            release.version
        )));
    }
    Ok(None)
}

fn history_missing(release: &Release, e: Error) -> Error {
    Error(format!(
        "{e}: the previous release's commit {} is not in this clone's history (a shallow \
         clone? `git fetch --unshallow`)",
        release.commit
    ))
}

/// The previous release, built.
pub struct Built {
    pub release: Release,
    /// Its `origin` binary.
    pub origin: PathBuf,
    /// A `wrangler.toml` that serves its Worker without building it again.
    pub worker_config: PathBuf,
}

/// Extracts `release`'s sources and builds its origin and its Worker, unless already done.
pub fn build(root: &Path, release: &Release) -> Result<Built> {
    let dir = root.join("target/releases").join(&release.commit);
    let tree = dir.join("src");
    if !dir.join(".extracted").exists() {
        step(&format!(
            "the previous release {} ({}): its sources from git",
            release.version,
            &release.commit[..12]
        ));
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree)?;
        let mut archive = Command::new("git")
            .current_dir(root)
            .args(["archive", "--format=tar", &release.commit])
            .stdout(Stdio::piped())
            .spawn()?;
        let tar = archive.stdout.take().expect("piped");
        run(Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&tree)
            .stdin(Stdio::from(tar)))?;
        if !archive.wait()?.success() {
            return Err(history_missing(release, Error("git archive failed".into())));
        }
        std::fs::write(dir.join(".extracted"), "")?;
    }
    let short = &release.commit[..12];
    // Its own target directory: the binary must not replace this checkout's target/debug/origin.
    step("the previous release's origin (cargo build, target/releases/target)");
    run(Command::new("cargo")
        .current_dir(&tree)
        .args(["build", "--locked", "-p", "origin", "--bin", "origin"])
        .env("CARGO_TARGET_DIR", root.join("target/releases/target"))
        .env("GIT_COMMIT", short))?;
    let origin = dir.join("origin");
    std::fs::copy(root.join("target/releases/target/debug/origin"), &origin)?;
    if !worker::is_current(&tree) {
        step("the previous release's Worker (worker-build; the dependencies of target/ reused)");
        // This checkout's tools (wasm-bindgen, esbuild) and target directory: only the
        // workspace's own crates are compiled again.
        let mut cmd = toolchain::command(&tree, toolchain::cargo_bin("worker-build"));
        toolchain::configure(root, &mut cmd)
            .current_dir(tree.join("edge"))
            .args(["--release", "--no-opt"])
            .env("CARGO_TARGET_DIR", root.join("target"));
        run(&mut cmd)?;
    }
    let worker_config = worker::config_for(root, &tree, &format!("release-{short}"), true)?;
    Ok(Built {
        release: release.clone(),
        origin,
        worker_config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_versions_and_whole_commits() {
        let text = "# comment\n1.0.0-rc.1 012a47051df1e44cc1b7f5fa494a83e9bb75c04c  # first\n\n";
        assert_eq!(
            parse(text).unwrap(),
            [Release {
                version: "1.0.0-rc.1".into(),
                commit: "012a47051df1e44cc1b7f5fa494a83e9bb75c04c".into()
            }]
        );
        for bad in [
            "1.0.0-rc.1 012a470",
            "1.0.0-rc.1",
            "1.0.0-rc.1 a b",
            "1.0.0-rc.1 zz2a47051df1e44cc1b7f5fa494a83e9bb75c04c",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_repository_names_a_previous_release_in_its_history() {
        let root = crate::repo_root();
        let release = previous(&root).unwrap();
        let kind = output(Command::new("git").current_dir(&root).args([
            "cat-file",
            "-t",
            &release.commit,
        ]))
        .unwrap_or_else(|e| panic!("{}", history_missing(&release, e)));
        assert_eq!(kind.trim(), "commit");
    }
}
