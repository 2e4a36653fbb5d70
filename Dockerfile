# syntax=docker/dockerfile:1
# The origin service: `docker build -t auth-api-origin .` (compose.yaml does this for you).
#
# Stage 1 builds exactly what CI tests: the workspace at this commit, `--locked` to Cargo.lock,
# the release profile of Cargo.toml, and the Rust version CI uses (origin/tests/deploy.rs
# compares RUST_VERSION with `rustc --version`). Migrations and templates are in the binary.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Only what the build reads (see .dockerignore). Cargo loads every workspace member's manifest,
# so the dev-only members come too; only the origin and its dependencies are compiled.
# system-tests/tests/image.rs builds this stage from exactly this context and runs the binary.
COPY Cargo.toml Cargo.lock ./
COPY shared shared
COPY origin origin
COPY edge edge
COPY migrations migrations
COPY testkit testkit
COPY system-tests system-tests
COPY bench/micro bench/micro
COPY bench/system bench/system
COPY xtask xtask
# The commit `origin --version` and the `origin_build_info` metric name (the context has no
# .git): `docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .`
ARG GIT_COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p origin --bin origin \
    && install -D -m 0755 target/release/origin /out/origin

# Stage 2: glibc + CA certificates, no shell, no package manager, user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/origin /usr/local/bin/origin
USER nonroot:nonroot
# Configured only by environment variables (README: Configuration); these two suit a container.
ENV BIND=0.0.0.0:8000 \
    LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/origin", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/origin"]
CMD ["serve"]
