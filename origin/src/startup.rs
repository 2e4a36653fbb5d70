//! Building the application: state, listeners, the email sender (the router is `http`'s). `Application::build` binds first, so
//! tests can ask for port 0 and read the port back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::{Settings, Statements};
use crate::email::{sender, Mailer, Templates};
use crate::http::{operations_router, router};
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::state::{AppState, Inner};
use crate::store::attempts::Limits;

mod starting;

/// How long in-flight requests may take after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    /// The METRICS_BIND listener, unless it is off.
    operations: Option<(TcpListener, Router)>,
    /// HTTPS on BIND: the files and the configuration loaded from them.
    tls: Option<(
        crate::tls::server::TlsFiles,
        axum_server::tls_rustls::RustlsConfig,
    )>,
    /// The email sender, stopped between two emails once the server has stopped.
    sender: sender::Running,
    /// Marked stopping at a stop signal, `shutdown_delay` before the listener closes.
    state: AppState,
    shutdown_delay: Duration,
}

impl Application {
    /// Binds the listener, applies migrations (answering `/readyz` 503 meanwhile, over plain
    /// HTTP), connects the pool and starts the email sender.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = crate::db::pool(&settings.database)?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {} (BIND)", settings.bind))?;
        let (listener, starting) = match settings.tls {
            None => starting::serve(listener)?,
            // Bound but silent until migrated: the TLS configuration comes later.
            Some(_) => (listener, starting::Starting::default()),
        };
        migrate_or_check(&pool, settings.database.database_statements).await?;
        starting.stop().await;
        let mailer = Arc::new(Mailer::new(&settings.email)?);
        let email_wake = Arc::new(Notify::new());
        let hasher = PasswordHasher::new(settings.argon2_permits, settings.argon2_queue_depth)?;
        let mut metrics = Metrics::new();
        metrics.register_argon2(hasher.queue());
        let metrics = Arc::new(metrics);
        let sender = sender::start(pool.clone(), mailer, email_wake.clone(), metrics.clone());
        if let Some(every) = settings.janitor_interval {
            tokio::spawn(crate::janitor::run_every(
                pool.clone(),
                crate::janitor::Retention {
                    audit_days: settings.audit_retention_days,
                    lockout_window: settings.lockout_window,
                    pending_days: settings.pending_account_days,
                },
                every,
                metrics.clone(),
            ));
        }
        let state = AppState::new(Inner {
            pool,
            signer: settings.signer,
            tokens: settings.tokens,
            hasher,
            password_policy: settings.password_policy,
            lockout: Limits {
                threshold: settings.lockout_threshold,
                account_threshold: settings.lockout_account_threshold,
                window_secs: settings.lockout_window.as_secs_f64(),
            },
            templates: Templates::new()?,
            email_wake,
            metrics,
            metrics_token: settings.metrics_token,
            activation: settings.activation,
            stopping: Default::default(),
        });
        let port = listener.local_addr()?.port();
        let operations = match settings.metrics_bind {
            Some(address) => Some((
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (METRICS_BIND)"))?,
                operations_router(state.clone()),
            )),
            None => None,
        };
        // Loaded now, so a bad certificate stops start-up with its reason.
        let tls = settings.tls.map(load_tls).transpose()?;
        Ok(Self {
            listener,
            router: router(state.clone()),
            port,
            operations,
            tls,
            sender,
            state,
            shutdown_delay: settings.shutdown_delay,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The METRICS_BIND listener's port (`None`: off).
    pub fn metrics_port(&self) -> Option<u16> {
        let (listener, _) = self.operations.as_ref()?;
        Some(listener.local_addr().ok()?.port())
    }

    /// Serves until Ctrl-C or SIGTERM; then `/readyz` answers 503 for `SHUTDOWN_DELAY` while
    /// everything is still served (a load balancer takes the replica out instead of finding its
    /// port closed), and in-flight requests get `SHUTDOWN_GRACE` to finish (idle keep-alive
    /// connections from a proxy would otherwise hold the process forever).
    /// Then the email sender finishes the email it is sending, if any, and stops: a stopped
    /// replica leaves no email half-sent for another to send again.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let sender = std::mem::take(&mut self.sender);
        let served = self.serve().await;
        sender.stop().await;
        served
    }

    async fn serve(self) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "origin listening");
        let (state, delay) = (self.state.clone(), self.shutdown_delay);
        let stop = move || stop_signal(state.clone(), delay);
        if let Some((listener, router)) = self.operations {
            tracing::info!(port = listener.local_addr()?.port(), "metrics listening");
            // Ends with the process: nothing on it is in flight work a client waits for.
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        if let Some((files, config)) = self.tls {
            tokio::spawn(crate::tls::server::reload_on_sighup(files, config.clone()));
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                stop().await;
                stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
            });
            return axum_server::from_tcp_rustls(self.listener.into_std()?, config)
                .handle(handle)
                .serve(self.router.into_make_service())
                .await
                .context("server error");
        }
        let stopping = Arc::new(Notify::new());
        let signalled = stopping.clone();
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            stop().await;
            signalled.notify_one();
        });
        let deadline = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = server => result.context("server error"),
            () = deadline => {
                tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; exiting");
                Ok(())
            }
        }
    }
}

/// A stop signal, then `delay` with `/readyz` answering 503 before the listener closes.
async fn stop_signal(state: AppState, delay: Duration) {
    shutdown_signal().await;
    state
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    if !delay.is_zero() {
        tracing::info!(
            delay_secs = delay.as_secs(),
            "not ready; serving until the delay ends"
        );
        tokio::time::sleep(delay).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Applies pending migrations; through a transaction pooler (`unnamed` statements) the migration
/// lock cannot be held, since consecutive statements may reach different sessions: `origin
/// migrate` against PostgreSQL itself applies them, and serve only checks that it did.
async fn migrate_or_check(pool: &crate::db::Pool, statements: Statements) -> anyhow::Result<()> {
    match statements {
        Statements::Named => {
            let applied = crate::db::migrate(pool).await?;
            if applied > 0 {
                tracing::info!(applied, "database migrated");
            }
            Ok(())
        }
        Statements::Unnamed => crate::db::ready(pool).await.context(
            "DATABASE_STATEMENTS=unnamed: serve does not migrate through a pooler; run \
             `origin migrate` against PostgreSQL directly first",
        ),
    }
}

/// The certificate and key of TLS_CERT and TLS_KEY, loaded into a server configuration.
fn load_tls(
    files: crate::tls::server::TlsFiles,
) -> anyhow::Result<(
    crate::tls::server::TlsFiles,
    axum_server::tls_rustls::RustlsConfig,
)> {
    let config = crate::tls::server::server_config(&files)?;
    Ok((
        files,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    ))
}
