//! `origin audit`: the audit log, newest first, as a table or as JSON lines.

use std::fmt;

use anyhow::Context;

use crate::config::DatabaseArgs;
use crate::store::audit::{self, Entry};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only events of this account.
    #[arg(long)]
    email: Option<String>,
    /// Only this event (register, login_ok, login_failed, login_locked,
    /// refresh_reuse_detected, logout, reset_requested, reset_completed, superuser_set,
    /// role_changed, password_rehashed, imported, account_deleted, current_password_refused,
    /// username_changed, user_deactivated, user_reactivated, sessions_revoked).
    #[arg(long)]
    event: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// The rows found, and how to print them.
pub struct Log {
    entries: Vec<Entry>,
    json: bool,
}

impl fmt::Display for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            for entry in &self.entries {
                let line = serde_json::to_string(entry).map_err(|_| fmt::Error)?;
                writeln!(f, "{line}")?;
            }
            return Ok(());
        }
        let (id, at, user, event, email) = ("id", "at", "user", "event", "email");
        writeln!(
            f,
            "{id:<8} {at:<25} {user:<8} {event:<24} {email:<30} detail"
        )?;
        for e in &self.entries {
            writeln!(
                f,
                "{:<8} {:<25} {:<8} {:<24} {:<30} {}",
                e.id,
                e.at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
                e.user_id
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                e.event,
                e.email.as_deref().unwrap_or("-"),
                e.detail
            )?;
        }
        Ok(())
    }
}

impl AuditArgs {
    pub async fn run(self) -> anyhow::Result<Log> {
        anyhow::ensure!(self.limit > 0, "--limit must be positive");
        let pool = crate::db::pool(&self.database)?;
        let client = pool.get().await.context("connecting to the database")?;
        let (email, event) = (self.email.as_deref(), self.event.as_deref());
        let entries = audit::recent(&client, email, event, self.limit).await?;
        Ok(Log {
            entries,
            json: self.json,
        })
    }
}
