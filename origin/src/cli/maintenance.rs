//! `origin migrate` and `origin janitor`: the database's upkeep, run once.

use std::fmt;
use std::time::Duration;

use crate::config::{
    DatabaseArgs, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_LOCKOUT_WINDOW,
    DEFAULT_PENDING_ACCOUNT_DAYS,
};
use crate::janitor::{self, Retention, Run};

/// How many migrations `migrate` applied.
pub struct Migrated(usize);

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "migrations applied: {}", self.0)
    }
}

pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<Migrated> {
    let pool = crate::db::pool(database)?;
    Ok(Migrated(crate::db::migrate(&pool).await?))
}

#[derive(Debug, clap::Args)]
pub struct JanitorArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Audit rows older than this many days are deleted; 0 keeps them.
    #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    audit_retention_days: u32,
    /// Login failures younger than this many seconds are kept.
    #[arg(long, env = "LOCKOUT_WINDOW", default_value_t = DEFAULT_LOCKOUT_WINDOW as u64)]
    lockout_window: u64,
    /// Accounts waiting for activation this many days after sign-up are deleted; 0 keeps them.
    #[arg(long, env = "PENDING_ACCOUNT_DAYS", default_value_t = DEFAULT_PENDING_ACCOUNT_DAYS)]
    pending_account_days: u32,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Run::Busy => writeln!(f, "another janitor run holds the lock: nothing done"),
            Run::Done(purged) => purged
                .counts()
                .iter()
                .try_for_each(|(what, count)| writeln!(f, "{what}: {count} deleted")),
        }
    }
}

impl JanitorArgs {
    pub async fn run(self) -> anyhow::Result<Run> {
        let pool = crate::db::pool(&self.database)?;
        let retention = Retention {
            audit_days: self.audit_retention_days,
            lockout_window: Duration::from_secs(self.lockout_window),
            pending_days: self.pending_account_days,
        };
        janitor::run_once(&pool, &retention).await
    }
}
