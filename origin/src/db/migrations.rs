//! The schema's migrations (embedded from `migrations/`): applying them, and what a database
//! holds compared with this binary.
//!
//! The rule that makes a rollback possible: a release's migrations are additive and backward
//! compatible for one release, so the previous binary runs on the newer schema. Such a binary
//! finds migrations it does not know, all newer than its own; it leaves them alone, logs them,
//! and serves. A schema that lacks one of this binary's migrations below the newest applied one
//! (another line of history) is refused.

use anyhow::Context;
use tokio_postgres::types::Type;

use super::{AdvisoryLock, Client, Pool, Sql};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// The advisory lock every replica takes to migrate ("origin" and 1, as bytes): one at a time,
/// and the later ones find nothing left to apply.
const MIGRATION_LOCK: i64 = 0x6f72_6967_696e_0001;

/// refinery's history table (its default name, which the runner uses).
const HISTORY: &str = "refinery_schema_history";

/// One migration: its version and name (`V9__activation_network` is 9, `activation_network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: String,
}

impl From<&refinery::Migration> for Migration {
    fn from(m: &refinery::Migration) -> Self {
        Self {
            version: m.version(),
            name: m.name().to_owned(),
        }
    }
}

impl std::fmt::Display for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// What a database holds, as this binary sees it.
#[derive(Debug, Default)]
pub struct MigrationStatus {
    /// Applied, and this binary's own.
    pub applied: Vec<Migration>,
    /// This binary's, not applied yet: `migrate` (or `serve`) applies them.
    pub pending: Vec<Migration>,
    /// Applied by a newer release, all newer than this binary's: it runs on that schema (one
    /// release back) and leaves them alone.
    pub newer: Vec<Migration>,
    /// This binary's, not applied, yet older than the newest applied migration; or applied
    /// ones it does not know among its own: a schema from another line of history.
    pub conflicting: Vec<Migration>,
}

impl MigrationStatus {
    fn of(embedded: Vec<Migration>, applied: Vec<Migration>) -> Self {
        let newest_known = embedded.iter().map(|m| m.version).max().unwrap_or(0);
        let newest_applied = applied.iter().map(|m| m.version).max().unwrap_or(0);
        let mut status = Self::default();
        for m in &applied {
            if embedded.iter().any(|e| e.version == m.version) {
                status.applied.push(m.clone());
            } else if m.version > newest_known {
                status.newer.push(m.clone());
            } else {
                status.conflicting.push(m.clone());
            }
        }
        for m in embedded {
            if applied.iter().any(|a| a.version == m.version) {
                continue;
            }
            if m.version < newest_applied {
                status.conflicting.push(m);
            } else {
                status.pending.push(m);
            }
        }
        status
    }
}

fn embedded() -> Vec<Migration> {
    let mut all: Vec<Migration> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(Migration::from)
        .collect();
    all.sort_by_key(|m| m.version);
    all
}

/// The migrations a database holds and this binary's, compared (nothing is changed).
pub async fn status(pool: &Pool) -> anyhow::Result<MigrationStatus> {
    let mut client = pool.get().await.context("connecting to the database")?;
    status_on(&mut client).await
}

async fn status_on(client: &mut Client) -> anyhow::Result<MigrationStatus> {
    // refinery reads its history table only where it exists (a fresh database has none yet).
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&HISTORY, Type::TEXT)],
        )
        .await
        .context("looking for the migration history")?
        .get(0);
    let applied = if exists {
        embedded::migrations::runner()
            .get_applied_migrations_async(&mut **client.inner)
            .await
            .context("reading the migration history")?
            .iter()
            .map(Migration::from)
            .collect()
    } else {
        Vec::new()
    };
    Ok(MigrationStatus::of(embedded(), applied))
}

/// Applies pending migrations (each in its own transaction) under a session-level advisory lock,
/// so replicas starting together migrate one after another; returns how many ran. Migrations of
/// a newer release are left alone (logged); a conflicting history is refused.
pub async fn migrate(pool: &Pool) -> anyhow::Result<usize> {
    let client = pool.get().await.context("connecting to the database")?;
    let mut lock = AdvisoryLock::acquire(client, MIGRATION_LOCK)
        .await
        .context("waiting for the migration lock")?;
    let outcome = apply(&mut lock, pool.migration_lock_timeout).await;
    lock.release()
        .await
        .context("releasing the migration lock")?;
    outcome
}

/// On the connection that holds the lock (a pool of one connection must not wait for another).
/// Each migration waits at most `lock_timeout` seconds for a table lock: a migration queued
/// behind a long transaction would hold every later query on that table behind it.
async fn apply(lock: &mut AdvisoryLock, lock_timeout: u64) -> anyhow::Result<usize> {
    let status = status_on(lock.client()).await?;
    if let Some(m) = status.conflicting.first() {
        anyhow::bail!(
            "the database's migrations conflict with this binary's at {m}: it comes from another \
             line of history (see `origin migrate --status`)"
        );
    }
    if !status.newer.is_empty() {
        let newer: Vec<String> = status.newer.iter().map(ToString::to_string).collect();
        tracing::warn!(
            newer = %newer.join(", "),
            "the database has migrations of a newer release; running on it as the previous release"
        );
    }
    let client = lock.client();
    // An integer of seconds: nothing of the environment reaches the statement's text.
    client
        .batch_execute(&format!("SET lock_timeout = '{lock_timeout}s'"))
        .await
        .context("setting the migrations' lock timeout")?;
    let report = embedded::migrations::runner()
        .set_abort_missing(status.newer.is_empty())
        .run_async(&mut **client.inner)
        .await
        .map_err(|e| {
            // The whole chain: the driver's error is the source of refinery's.
            let e = anyhow::Error::new(e);
            if format!("{e:#}").contains("lock timeout") {
                e.context(format!(
                    "a migration waited more than MIGRATION_LOCK_TIMEOUT ({lock_timeout} s) for a \
                     table lock and was rolled back: a long transaction holds the table; try \
                     again when it ends"
                ))
            } else {
                e.context("running migrations")
            }
        });
    // The connection goes back to the pool as it came.
    client.batch_execute("RESET lock_timeout").await?;
    Ok(report?.applied_migrations().len())
}

/// Whether the database answers and has every migration of this binary applied (newer ones of
/// the next release may be there too).
pub async fn ready(pool: &Pool) -> anyhow::Result<()> {
    let status = status(pool).await.context("database unreachable")?;
    anyhow::ensure!(
        status.pending.is_empty() && status.conflicting.is_empty(),
        "migrations pending: {} of this binary's are not applied",
        status.pending.len() + status.conflicting.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: u32) -> Migration {
        Migration {
            version,
            name: format!("m{version}"),
        }
    }

    #[test]
    fn a_newer_releases_migrations_are_newer_and_a_hole_conflicts() {
        let status = MigrationStatus::of(vec![m(1), m(2), m(3)], vec![m(1), m(2), m(3), m(4)]);
        assert_eq!(status.newer, vec![m(4)]);
        assert!(status.pending.is_empty() && status.conflicting.is_empty());

        let status = MigrationStatus::of(vec![m(1), m(2), m(3)], vec![m(1)]);
        assert_eq!(status.pending, vec![m(2), m(3)]);

        // V2 never applied although V3 was: another line of history.
        let status = MigrationStatus::of(vec![m(1), m(2), m(3)], vec![m(1), m(3)]);
        assert_eq!(status.conflicting, vec![m(2)]);
        // An applied migration this binary lacks among its own versions.
        let status = MigrationStatus::of(vec![m(1), m(3)], vec![m(1), m(2), m(3)]);
        assert_eq!(status.conflicting, vec![m(2)]);
    }
}
