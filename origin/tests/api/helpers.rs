//! The test kit, plus the `origin` binary of this package for the tests that run it.

pub use testkit::*;

/// Runs this package's `origin` binary as an operator would, against `db_url`: (success,
/// stdout, stderr).
pub fn origin_cli(db_url: &str, args: &[&str]) -> (bool, String, String) {
    run_origin(env!("CARGO_BIN_EXE_origin"), db_url, args)
}
