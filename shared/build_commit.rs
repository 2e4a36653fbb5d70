// Included by the origin's and the edge's build scripts (`include!`): the commit a binary is
// built from, for `origin --version`, `origin_build_info`, `/healthz` and the Worker's
// `x-auth-api-version` header.

/// `GIT_COMMIT` if set (a container build, whose context has no `.git`), else what git says of
/// the checkout at `root`, else `unknown`; cargo is told to build again when HEAD moves.
fn git_commit(root: &std::path::Path) -> String {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let git = root.join(".git");
    // Rebuilt when the checkout moves to another commit: HEAD, the branch it names, packed refs.
    // Only paths that exist: cargo would take a missing one as changed on every build.
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        let branch = head.trim().strip_prefix("ref: ").map(|b| git.join(b));
        let watched = [
            Some(git.join("HEAD")),
            branch,
            Some(git.join("packed-refs")),
        ];
        for path in watched.into_iter().flatten().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(root)
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric()) && !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
