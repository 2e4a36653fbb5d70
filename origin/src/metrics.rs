//! Prometheus metrics: the counters the services and the email sender update, rendered in the
//! text exposition format (served at `GET /metrics` by `http::monitoring`).
//!
//! One registry per application (not a process-wide recorder), so tests that run several
//! applications in one process each read their own figures. Gauges that describe a current
//! state (pool, argon2 queue) are sampled when scraped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum Login {
    Ok,
    Failed,
    Locked,
}

/// What happened to an email in the outbox.
#[derive(Debug, Clone, Copy)]
pub enum Email {
    Queued,
    Sent,
    Failed,
    /// Given up unsent because its content expired (a reset code).
    Expired,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s: internal lookups take about a millisecond, logins tens of milliseconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Counts of argon2 work: hashes being computed and jobs waiting in the bounded queue, and
/// jobs that never ran: refused because the queue was full, or skipped because their caller
/// had gone before a thread took them.
#[derive(Debug, Default)]
pub struct QueueDepth {
    pub running: AtomicUsize,
    pub waiting: AtomicUsize,
    pub rejected: Counter,
    pub abandoned: Counter,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    logins: Family<OutcomeLabels, Counter>,
    emails: Family<OutcomeLabels, Counter>,
    rehashes: Counter,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
    pool_max: Gauge,
    argon2_running: Gauge,
    argon2_waiting: Gauge,
    janitor_runs: Family<OutcomeLabels, Counter>,
    janitor_purged: Family<WhatLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabels {
    what: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("origin");
        registry.register(
            "build",
            "The release and commit of this binary (always 1)",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", crate::VERSION),
                ("commit", crate::COMMIT),
            ]),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by method and route template",
            latency.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Login attempts by outcome (ok, failed, locked)",
            logins.clone(),
        );
        let emails = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "emails",
            "Outbox emails by event (queued, sent, failed attempt, expired before delivery)",
            emails.clone(),
        );
        let rehashes = Counter::default();
        registry.register(
            "password_rehashes",
            "Stored hashes upgraded to the current argon2id parameters at login",
            rehashes.clone(),
        );
        let janitor_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "janitor_runs",
            "Janitor runs by outcome (done, busy: another replica's run held the lock, failed)",
            janitor_runs.clone(),
        );
        let janitor_purged = Family::<WhatLabels, Counter>::default();
        registry.register(
            "janitor_purged",
            "Rows deleted by the janitor, by kind",
            janitor_purged.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        Self {
            pool_size: gauge(
                &mut registry,
                "db_pool_connections",
                "Open database connections",
            ),
            pool_available: gauge(
                &mut registry,
                "db_pool_available",
                "Idle database connections",
            ),
            pool_waiting: gauge(
                &mut registry,
                "db_pool_waiting",
                "Requests waiting for a database connection",
            ),
            pool_max: gauge(
                &mut registry,
                "db_pool_max",
                "Maximum database connections (DATABASE_POOL_SIZE)",
            ),
            argon2_running: gauge(
                &mut registry,
                "argon2_running",
                "Password hashes being computed",
            ),
            argon2_waiting: gauge(
                &mut registry,
                "argon2_waiting",
                "Password hashes waiting in the queue for a thread (ARGON2_MAX_CONCURRENCY)",
            ),
            registry,
            requests,
            latency,
            logins,
            emails,
            rehashes,
            janitor_runs,
            janitor_purged,
        }
    }

    /// A janitor run's outcome and what it deleted: (kind, rows) as `janitor::Purged::counts`
    /// gives them.
    pub fn janitor_run(&self, outcome: &'static str, purged: &[(&'static str, u64)]) {
        self.janitor_runs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        for &(what, count) in purged {
            self.janitor_purged
                .get_or_create(&WhatLabels { what })
                .inc_by(count);
        }
    }

    /// Registers the hasher's counters of jobs refused (queue full) and skipped (caller gone).
    pub fn register_argon2(&mut self, queue: &QueueDepth) {
        self.registry.register(
            "argon2_rejected",
            "Password hashes refused with 503 because the queue was full (ARGON2_QUEUE_DEPTH)",
            queue.rejected.clone(),
        );
        self.registry.register(
            "argon2_abandoned",
            "Queued password hashes skipped because their caller had gone",
            queue.abandoned.clone(),
        );
    }

    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn login(&self, outcome: Login) {
        let outcome = match outcome {
            Login::Ok => "ok",
            Login::Failed => "failed",
            Login::Locked => "locked",
        };
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn email(&self, event: Email) {
        let outcome = match event {
            Email::Queued => "queued",
            Email::Sent => "sent",
            Email::Failed => "failed",
            Email::Expired => "expired",
        };
        self.emails.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn rehashed(&self) {
        self.rehashes.inc();
    }

    /// The text exposition, after sampling the pool and the argon2 queue.
    pub fn render(&self, pool: &deadpool_postgres::Status, argon2: &QueueDepth) -> String {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_size.set(as_i64(pool.size));
        self.pool_available.set(as_i64(pool.available));
        self.pool_waiting.set(as_i64(pool.waiting));
        self.pool_max.set(as_i64(pool.max_size));
        self.argon2_running
            .set(as_i64(argon2.running.load(Ordering::Relaxed)));
        self.argon2_waiting
            .set(as_i64(argon2.waiting.load(Ordering::Relaxed)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Shared by the hasher and the metrics.
pub type SharedQueue = Arc<QueueDepth>;
