//! The connection pool and the embedded migrations.

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;

use crate::config::DatabaseArgs;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// The pool, with TLS as DATABASE_URL's `sslmode` says (`crate::pg_tls`).
pub fn pool(args: &DatabaseArgs) -> anyhow::Result<Pool> {
    let target = crate::pg_tls::parse(args.database_url.expose_secret())?;
    let connector = crate::pg_tls::connector(&target).context("DATABASE_URL's TLS settings")?;
    let manager = Manager::from_config(
        target.config,
        connector,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(args.database_pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .context("building the database pool")
}

/// The advisory lock every replica takes to migrate ("origin" and 1, as bytes): one at a time,
/// and the later ones find nothing left to apply.
const MIGRATION_LOCK: i64 = 0x6f72_6967_696e_0001;

/// Applies pending migrations (each in its own transaction) under a session-level advisory lock,
/// so replicas starting together migrate one after another; returns how many ran.
pub async fn migrate(pool: &Pool) -> anyhow::Result<usize> {
    let client = pool.get().await.context("connecting to the database")?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("waiting for the migration lock")?;
    let mut locked = Locked(Some(client));
    let client = locked.0.as_mut().expect("held");
    let report = embedded::migrations::runner()
        .run_async(&mut ***client)
        .await
        .context("running migrations");
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .context("releasing the migration lock")?;
    // Unlocked: the connection may go back to the pool.
    drop(locked.0.take());
    Ok(report?.applied_migrations().len())
}

/// A pooled connection that may hold an advisory lock (the migrations', the janitor's): if it is dropped before the lock was
/// released (an error, or the future dropped), it leaves the pool, and closing it ends the
/// session and the lock with it; it never serves another request holding the lock.
pub(crate) struct Locked(pub(crate) Option<deadpool_postgres::Object>);

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(deadpool_postgres::Object::take(object));
        }
    }
}

/// Whether the database answers and has every embedded migration applied.
pub async fn ready(pool: &Pool) -> anyhow::Result<()> {
    let mut client = pool.get().await.context("database unreachable")?;
    let latest = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0);
    let applied = embedded::migrations::runner()
        .get_last_applied_migration_async(&mut **client)
        .await
        .context("reading applied migrations")?
        .map_or(0, |m| m.version());
    anyhow::ensure!(
        applied >= latest,
        "migrations pending: database at {applied}, binary expects {latest}"
    );
    Ok(())
}

/// Whether a database error is a unique-constraint violation on the named index.
pub fn is_unique_violation(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(constraint)
    })
}
