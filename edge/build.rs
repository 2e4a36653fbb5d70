//! The commit the Worker is built from, for its `/healthz` and `x-auth-api-version` header
//! (`../shared/build_commit.rs`).

include!("../shared/build_commit.rs");

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("cargo:rustc-env=EDGE_GIT_COMMIT={}", git_commit(&root));
}
