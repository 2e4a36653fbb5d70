# Sourced by scripts/test and scripts/dev: installs what building and running the Worker needs,
# from the package registries only, and points worker-build at the local tools (it would
# otherwise download them).

# shellcheck source=versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# Tools installed from PyPI live in virtualenvs in the user's cache directory, one per version,
# so fresh clones (CI starts from one) reuse them; a missing one is installed.
TOOL_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/auth-api"

# Each step with the time since the script started, so a slow step shows in CI logs.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

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

# The Worker (edge/build) as wrangler.toml's build command makes it, built once and reused by
# the tests, the API fuzzing and the benchmark: rebuilt only when missing or older than one of
# its sources (the same rule as testkit::process::built_worker).
build_worker() {
  local wasm=edge/build/index_bg.wasm
  if [ -f "$wasm" ] && [ -z "$(find edge/src shared/src edge/Cargo.toml shared/Cargo.toml Cargo.toml Cargo.lock -newer "$wasm" -print -quit)" ]; then
    echo "edge/build is up to date"
  else
    (cd edge && worker-build --release --no-opt)
  fi
  echo "Worker Wasm: $(stat -c %s "$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzip"
}

# wrangler.toml without its build step, for the Worker built already (build_worker), at $1.
prebuilt_wrangler_config() {
  awk -v root="$PWD" '
    /^\[/ { skip = ($0 == "[build]") }
    skip { next }
    /^main = / { print "main = \"" root "/edge/build/index.js\""; next }
    /^directory = / { print "directory = \"" root "/edge/assets\""; next }
    { print }' wrangler.toml > "$1"
}

# The docs pages' scripts and styles come from the npm packages (no CDN); copied into the
# Worker's static assets, not committed.
vendor_docs() {
  cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js edge/assets/swagger/
  cp node_modules/redoc/bundles/redoc.standalone.js edge/assets/redoc/
}

# `docker compose config` for compose.yaml. Docker's compose plugin when it is installed; else
# docker-compose from PyPI (versions.sh) in a virtualenv under $TOOL_CACHE (its PyYAML 5.4.1
# only builds with Cython < 3, hence the two steps).
compose_config() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
    return
  fi
  local venv="$TOOL_CACHE/docker-compose-$DOCKER_COMPOSE_VERSION"
  if [ ! -x "$venv/bin/docker-compose" ]; then
    echo "installing docker-compose $DOCKER_COMPOSE_VERSION from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "cython<3" wheel setuptools
    "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation "pyyaml==$PYYAML_VERSION"
    "$venv/bin/pip" install -q --disable-pip-version-check "docker-compose==$DOCKER_COMPOSE_VERSION"
  fi
  "$venv/bin/docker-compose" "$@"
}
