//! Every tool version the tasks install, in one place (npm packages are pinned by
//! `package-lock.json`, crates by `Cargo.lock`). `origin/tests/deploy.rs` checks that the
//! wasm-bindgen pin here, in `edge/Cargo.toml` and in `Cargo.lock` agree (worker-build runs this
//! wasm-bindgen-cli on a Wasm built with that crate, and they must be the same version) and that
//! no other file of `xtask/` names a version.

pub const WORKER_BUILD: &str = "0.8.7";
pub const WASM_BINDGEN: &str = "0.2.130";
pub const CARGO_FUZZ: &str = "0.13.2";
pub const SCHEMATHESIS: &str = "4.32.5";
pub const DOCKER_COMPOSE: &str = "1.29.2";
/// docker-compose's PyYAML pin; 5.4.1 only builds with Cython < 3.
pub const PYYAML: &str = "5.4.1";
