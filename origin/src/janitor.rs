//! Retention: what can no longer matter is deleted, by one janitor at a time across replicas
//! (a PostgreSQL advisory lock; a replica that finds it taken skips its turn).
//!
//! | what | deleted when |
//! |---|---|
//! | refresh families and their tokens | no token of the family expires later than a day ago (a live token's family is never touched, so rotation chains stay whole) |
//! | used reset-token ids | a day after use (reset tokens live 15 minutes) |
//! | sent or abandoned outbox rows | 7 days after sending or giving up |
//! | audit rows | older than `AUDIT_RETENTION_DAYS` (default 365; 0 keeps them) |
//! | login attempts per (account, network) | last failure older than `LOCKOUT_WINDOW` and last success older than 30 days (what lockout decisions read) |
//! | login attempts for unknown emails, per network | last attempt older than `LOCKOUT_WINDOW` |
//! | activation codes | a day after they expired (they live 10 minutes; a resend replaces one) |
//! | accounts waiting for activation | `PENDING_ACCOUNT_DAYS` after sign-up (default 7; 0 keeps them): the address is free again, the account goes as a deletion takes it (`users::delete`) |
//!
//! Rows go in batches of [`BATCH`], each its own statement, so no lock is held for long.

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::types::Type;

use crate::db::{Client, Param, Pool, Sql};
use crate::metrics::Metrics;
use crate::store::audit::Event;

/// "origin" and 2, as bytes (the migration lock is 1).
pub const JANITOR_LOCK: i64 = 0x6f72_6967_696e_0002;

/// Rows per delete statement.
pub const BATCH: i64 = 5_000;

/// What the janitor keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// AUDIT_RETENTION_DAYS; 0: audit rows are kept forever.
    pub audit_days: u32,
    /// LOCKOUT_WINDOW: failures younger than this still count.
    pub lockout_window: Duration,
    /// PENDING_ACCOUNT_DAYS; 0: accounts waiting for activation are kept.
    pub pending_days: u32,
}

/// Rows deleted by one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub refresh_families: u64,
    pub refresh_tokens: u64,
    pub password_resets: u64,
    pub outbox: u64,
    pub audit: u64,
    pub login_attempts: u64,
    pub unknown_login_attempts: u64,
    pub activation_codes: u64,
    pub pending_accounts: u64,
}

impl Purged {
    /// (metric label, count) of each kind.
    pub fn counts(&self) -> [(&'static str, u64); 9] {
        [
            ("refresh_families", self.refresh_families),
            ("refresh_tokens", self.refresh_tokens),
            ("password_resets", self.password_resets),
            ("outbox", self.outbox),
            ("audit", self.audit),
            ("login_attempts", self.login_attempts),
            ("unknown_login_attempts", self.unknown_login_attempts),
            ("activation_codes", self.activation_codes),
            ("pending_accounts", self.pending_accounts),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Done(Purged),
    /// Another replica holds the janitor's lock: nothing was done.
    Busy,
}

/// One janitor run, unless another replica's is under way.
pub async fn run_once(pool: &Pool, retention: &Retention) -> anyhow::Result<Run> {
    let client = pool.get().await.context("connecting to the database")?;
    let Some(mut lock) = crate::db::AdvisoryLock::try_acquire(client, JANITOR_LOCK)
        .await
        .context("taking the janitor's lock")?
    else {
        return Ok(Run::Busy);
    };
    let purged = purge(lock.client(), retention).await;
    lock.release()
        .await
        .context("releasing the janitor's lock")?;
    Ok(Run::Done(purged?))
}

/// Deletes until a statement deletes fewer than a batch.
async fn in_batches(client: &impl Sql, sql: &str, params: &[Param<'_>]) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let deleted = client.execute(sql, params).await?;
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}

async fn purge(client: &mut Client, retention: &Retention) -> anyhow::Result<Purged> {
    let mut purged = Purged::default();
    (purged.refresh_families, purged.refresh_tokens) = purge_families(client).await?;
    purged.password_resets = in_batches(
        client,
        "DELETE FROM password_resets WHERE jti IN (SELECT jti FROM password_resets \
         WHERE used_at < now() - interval '1 day' LIMIT $1)",
        &[(&BATCH, Type::INT8)],
    )
    .await
    .context("deleting used reset-token ids")?;
    purged.outbox = in_batches(
        client,
        "DELETE FROM email_outbox WHERE id IN (SELECT id FROM email_outbox \
         WHERE sent_at < now() - interval '7 days' OR abandoned_at < now() - interval '7 days' \
         LIMIT $1)",
        &[(&BATCH, Type::INT8)],
    )
    .await
    .context("deleting sent outbox rows")?;
    if retention.audit_days > 0 {
        let days = i32::try_from(retention.audit_days).unwrap_or(i32::MAX);
        purged.audit = in_batches(
            client,
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log \
             WHERE at < now() - make_interval(days => $2) LIMIT $1)",
            &[(&BATCH, Type::INT8), (&days, Type::INT4)],
        )
        .await
        .context("deleting old audit rows")?;
    }
    let window = retention.lockout_window.as_secs_f64();
    purged.login_attempts = in_batches(
        client,
        "DELETE FROM login_attempts WHERE (user_id, network) IN (SELECT user_id, network \
         FROM login_attempts \
         WHERE coalesce(last_failure_at, '-infinity') < now() - make_interval(secs => $2) \
           AND coalesce(last_success_at, '-infinity') < now() - interval '30 days' LIMIT $1)",
        &[(&BATCH, Type::INT8), (&window, Type::FLOAT8)],
    )
    .await
    .context("deleting old login attempts")?;
    purged.unknown_login_attempts = in_batches(
        client,
        "DELETE FROM unknown_login_attempts WHERE network IN (SELECT network \
         FROM unknown_login_attempts WHERE last_attempt_at < now() - make_interval(secs => $2) \
         LIMIT $1)",
        &[(&BATCH, Type::INT8), (&window, Type::FLOAT8)],
    )
    .await
    .context("deleting old login attempts for unknown emails")?;
    purged.activation_codes = in_batches(
        client,
        "DELETE FROM activation_codes WHERE user_id IN (SELECT user_id FROM activation_codes \
         WHERE expires_at < now() - interval '1 day' LIMIT $1)",
        &[(&BATCH, Type::INT8)],
    )
    .await
    .context("deleting expired activation codes")?;
    if retention.pending_days > 0 {
        purged.pending_accounts = purge_pending(client, retention.pending_days)
            .await
            .context("deleting accounts that never activated")?;
    }
    Ok(purged)
}

/// Families whose every token is long expired (or that have none), a batch at a time: their
/// tokens first, then the families. Returns (families, tokens) deleted.
async fn purge_families(client: &Client) -> anyhow::Result<(u64, u64)> {
    let (mut families_deleted, mut tokens_deleted) = (0, 0);
    let dead_families = "SELECT f.id FROM refresh_families f \
         WHERE f.created_at < now() - interval '1 day' \
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens t \
                           WHERE t.family_id = f.id AND t.expires_at > now() - interval '1 day') \
         LIMIT $1";
    loop {
        let families: Vec<uuid::Uuid> = client
            .query(dead_families, &[(&BATCH, Type::INT8)])
            .await
            .context("finding expired refresh families")?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if families.is_empty() {
            break;
        }
        tokens_deleted += client
            .execute(
                "DELETE FROM refresh_tokens WHERE family_id = ANY($1)",
                &[(&families, Type::UUID_ARRAY)],
            )
            .await
            .context("deleting expired refresh tokens")?;
        families_deleted += client
            .execute(
                "DELETE FROM refresh_families WHERE id = ANY($1)",
                &[(&families, Type::UUID_ARRAY)],
            )
            .await
            .context("deleting expired refresh families")?;
        if (families.len() as i64) < BATCH {
            break;
        }
    }
    Ok((families_deleted, tokens_deleted))
}

/// Deletes the accounts still waiting for activation `days` after sign-up, a batch a
/// transaction, as a deletion takes an account (`users::delete`): the outbox forgets the
/// addresses (`outbox::forget_addresses`), and an audit row says why each account went.
async fn purge_pending(client: &mut Client, days: u32) -> anyhow::Result<u64> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let mut total = 0;
    loop {
        let tx = client.transaction().await?;
        let emails: Vec<String> = tx
            .query(
                "WITH gone AS ( \
                     DELETE FROM users WHERE id IN (SELECT id FROM users \
                     WHERE pending_activation AND date_joined < now() - make_interval(days => $2) \
                     LIMIT $1) RETURNING id, email \
                 ), audited AS ( \
                     INSERT INTO audit_log (user_id, event, detail) \
                     SELECT NULL, $3, jsonb_build_object('user_id', id) FROM gone \
                 ) \
                 SELECT email FROM gone",
                &[
                    (&BATCH, Type::INT8),
                    (&days, Type::INT4),
                    (&Event::PendingAccountExpired.as_str(), Type::TEXT),
                ],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !emails.is_empty() {
            crate::store::outbox::forget_addresses(&tx, &emails).await?;
        }
        tx.commit().await?;
        total += emails.len() as u64;
        if (emails.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// `origin serve`'s janitor: a run a minute after start (or after `every`, if shorter), then
/// every `every`; counts in the log and in `origin_janitor_*` metrics.
pub async fn run_every(
    pool: Pool,
    retention: Retention,
    every: Duration,
    metrics: std::sync::Arc<Metrics>,
) {
    tokio::time::sleep(every.min(Duration::from_secs(60))).await;
    loop {
        match run_once(&pool, &retention).await {
            Ok(Run::Done(purged)) => {
                metrics.janitor_run("done", &purged.counts());
                tracing::info!(
                    refresh_families = purged.refresh_families,
                    refresh_tokens = purged.refresh_tokens,
                    password_resets = purged.password_resets,
                    outbox = purged.outbox,
                    audit = purged.audit,
                    login_attempts = purged.login_attempts,
                    unknown_login_attempts = purged.unknown_login_attempts,
                    activation_codes = purged.activation_codes,
                    pending_accounts = purged.pending_accounts,
                    "janitor purged"
                );
            }
            Ok(Run::Busy) => {
                metrics.janitor_run("busy", &Purged::default().counts());
                tracing::debug!("janitor skipped: another replica's run holds the lock");
            }
            Err(e) => {
                metrics.janitor_run("failed", &Purged::default().counts());
                tracing::warn!(error = format!("{e:#}"), "janitor run failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}
