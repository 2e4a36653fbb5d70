//! The origin service: the only component that talks to Postgres. It serves the internal API
//! the edge Worker calls with signed requests, hashes passwords, issues and rotates tokens,
//! and sends email from an outbox.

/// The release (`Cargo.toml`'s version) and the commit this binary was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("ORIGIN_GIT_COMMIT");
/// What `origin --version` prints after the name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ORIGIN_GIT_COMMIT"),
    ")"
);

pub mod cli;
pub mod config;
pub mod db;
pub mod email;
pub mod http;
pub mod import;
pub mod janitor;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod services;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;

/// The `origin` program: parses the command line and runs it; errors go to stderr.
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
