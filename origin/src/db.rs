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
    let mut lock = AdvisoryLock::acquire(client, MIGRATION_LOCK)
        .await
        .context("waiting for the migration lock")?;
    let report = embedded::migrations::runner()
        .run_async(&mut ***lock.client())
        .await
        .context("running migrations");
    lock.release()
        .await
        .context("releasing the migration lock")?;
    Ok(report?.applied_migrations().len())
}

/// A pooled connection holding a session-level advisory lock (the migrations', the
/// janitor's). [`AdvisoryLock::release`] unlocks it and gives the connection back to the pool;
/// dropped before that (an error, or the future dropped), the connection leaves the pool, and
/// closing it ends the session and the lock with it: it never serves another request holding
/// the lock.
pub(crate) struct AdvisoryLock {
    key: i64,
    client: Option<deadpool_postgres::Object>,
}

impl AdvisoryLock {
    /// Waits for the lock `key`.
    pub(crate) async fn acquire(
        client: deadpool_postgres::Object,
        key: i64,
    ) -> anyhow::Result<Self> {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await?;
        Ok(Self {
            key,
            client: Some(client),
        })
    }

    /// The lock `key` if it is free now; `None` if another session holds it.
    pub(crate) async fn try_acquire(
        client: deadpool_postgres::Object,
        key: i64,
    ) -> anyhow::Result<Option<Self>> {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get(0);
        Ok(locked.then(|| Self {
            key,
            client: Some(client),
        }))
    }

    pub(crate) fn client(&mut self) -> &mut deadpool_postgres::Object {
        self.client.as_mut().expect("held until released")
    }

    /// Unlocks; the connection goes back to the pool.
    pub(crate) async fn release(mut self) -> anyhow::Result<()> {
        let key = self.key;
        self.client()
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await?;
        drop(self.client.take());
        Ok(())
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(object) = self.client.take() {
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
