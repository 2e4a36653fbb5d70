//! `origin import-django`: users of the Django original, with their password hashes.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::accounts::migrated_pool;
use crate::config::DatabaseArgs;
use crate::import;

#[derive(Debug, clap::Args)]
pub struct ImportDjangoArgs {
    /// Django's database, e.g. postgres://user@host/authref.
    #[arg(
        long,
        env = "DJANGO_DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "from_json",
        conflicts_with = "from_json"
    )]
    from_database: Option<SecretString>,
    /// The users table in Django's database (the stock model's is auth_user).
    #[arg(long, default_value = "accounts_user")]
    table: String,
    /// Output of `manage.py dumpdata accounts.User` instead of a database.
    #[arg(long)]
    from_json: Option<PathBuf>,
    /// Check and report, write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// The import's report, and whether it was only a dry run.
pub struct Imported {
    report: import::Report,
    dry_run: bool,
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.report)?;
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        Ok(())
    }
}

impl ImportDjangoArgs {
    pub async fn run(self) -> anyhow::Result<Imported> {
        let (users, source) = match (&self.from_database, &self.from_json) {
            (Some(url), _) => (
                import::from_database(url.expose_secret(), &self.table).await?,
                format!("django database table {}", self.table),
            ),
            (None, Some(path)) => (
                import::read_dumpdata(path)?,
                format!("django dumpdata {}", path.display()),
            ),
            (None, None) => anyhow::bail!("give --from-database or --from-json"),
        };
        // Progress on stderr: stdout is the report.
        eprintln!("read {} users from the {source}", users.len());
        let pool = migrated_pool(&self.database).await?;
        let mut client = pool.get().await.context("connecting to the database")?;
        let report = import::import(&mut client, &users, "django", self.dry_run).await?;
        Ok(Imported {
            report,
            dry_run: self.dry_run,
        })
    }
}
