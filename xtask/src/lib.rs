//! The repository's tasks (`cargo xtask test | dev | bench | fuzz | openapi`, in `main.rs` and
//! `tasks/`) and the parts the test kit shares with them: the tool versions, the toolchain check
//! and the Worker build (`testkit` uses [`worker`] and [`toolchain::configure`], so the rule for
//! when the Worker is rebuilt and how its prebuilt `wrangler.toml` looks exists once).

use std::path::PathBuf;

pub mod cmd;
pub mod releases;
pub mod toolchain;
pub mod versions;
pub mod worker;

/// The repository's root (this crate's parent directory).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
