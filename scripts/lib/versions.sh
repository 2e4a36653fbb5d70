# Every tool version the scripts install, in one place (npm packages are pinned by
# package-lock.json, crates by Cargo.lock). origin/tests/deploy.rs checks that the wasm-bindgen
# pin here, in edge/Cargo.toml and in Cargo.lock agree: worker-build runs this wasm-bindgen-cli
# on a Wasm built with that crate, and they must be the same version.
WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
CARGO_FUZZ_VERSION=0.13.2
SCHEMATHESIS_VERSION=4.32.5
DOCKER_COMPOSE_VERSION=1.29.2
PYYAML_VERSION=5.4.1
