//! `origin migrate` and `origin janitor`: the database's upkeep, run once.

use std::fmt;
use std::time::Duration;

use crate::config::{
    DatabaseArgs, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_LOCKOUT_WINDOW,
    DEFAULT_PENDING_ACCOUNT_DAYS,
};
use crate::db::MigrationStatus;
use crate::janitor::{self, Retention, Run};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Change nothing: list the migrations applied, pending, of a newer release (which this
    /// binary runs on and leaves alone) and conflicting (another line of history).
    #[arg(long)]
    status: bool,
}

/// How many migrations `migrate` applied, or (`--status`) where each one stands.
pub enum Migrated {
    Applied(usize),
    Status(MigrationStatus),
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self {
            Self::Applied(n) => return writeln!(f, "migrations applied: {n}"),
            Self::Status(status) => status,
        };
        let groups = [
            ("applied", &status.applied),
            ("pending", &status.pending),
            ("newer", &status.newer),
            ("conflicting", &status.conflicting),
        ];
        for (what, migrations) in groups {
            for m in migrations {
                writeln!(f, "{what:<12} {m}")?;
            }
        }
        let counts = groups.map(|(what, m)| format!("{} {what}", m.len()));
        writeln!(f, "{}", counts.join(", "))?;
        if !status.newer.is_empty() {
            writeln!(
                f,
                "newer: applied by a newer release; this binary runs on that schema and leaves them alone"
            )?;
        }
        Ok(())
    }
}

impl MigrateArgs {
    pub async fn run(self) -> anyhow::Result<Migrated> {
        let pool = crate::db::pool(&self.database)?;
        if self.status {
            return Ok(Migrated::Status(crate::db::status(&pool).await?));
        }
        Ok(Migrated::Applied(crate::db::migrate(&pool).await?))
    }
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
