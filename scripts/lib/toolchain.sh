# Sourced by scripts/test and scripts/dev: installs what building and running the Worker needs,
# from the package registries only, and points worker-build at the local tools (it would
# otherwise download them).

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130

export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

ensure_toolchain() {
  step "toolchain: rustfmt, clippy, wasm32-unknown-unknown"
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi

  step "Node tooling from npm: wrangler (workerd), Node 22, binaryen"
  if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  vendor_docs

  step "Chromium (Debian) for the docs pages' end-to-end check"
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
    else
      echo "chromium is missing: sudo apt-get install chromium" >&2
    fi
  fi

  step "worker-build $WORKER_BUILD_VERSION and wasm-bindgen-cli $WASM_BINDGEN_VERSION (cargo install, first run only: ~20 min)"
  if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    # --locked fails on this registry mirror for this version (see ../shared/TOOLCHAIN.md).
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked \
      || cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

# The docs pages' scripts and styles come from the npm packages (no CDN); copied into the
# Worker's static assets, not committed.
vendor_docs() {
  cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js edge/assets/swagger/
  cp node_modules/redoc/bundles/redoc.standalone.js edge/assets/redoc/
}

# `docker compose config` for compose.yaml. Docker's compose plugin when it is installed; else
# docker-compose 1.29.2 from PyPI in a virtualenv under target/ (its PyYAML 5.4.1 only builds
# with Cython < 3, hence the two steps).
compose_config() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
    return
  fi
  local venv="$PWD/target/compose-venv"
  if [ ! -x "$venv/bin/docker-compose" ]; then
    echo "installing docker-compose 1.29.2 from PyPI into target/compose-venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "cython<3" wheel setuptools
    "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation "pyyaml==5.4.1"
    "$venv/bin/pip" install -q --disable-pip-version-check "docker-compose==1.29.2"
  fi
  "$venv/bin/docker-compose" "$@"
}
