//! The commit the binary is built from, for `origin --version`, the `origin_build_info` metric
//! and `/healthz` (`../shared/build_commit.rs`).

include!("../shared/build_commit.rs");

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("cargo:rustc-env=ORIGIN_GIT_COMMIT={}", git_commit(&root));
}
