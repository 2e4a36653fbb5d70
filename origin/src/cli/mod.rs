//! The command line: `origin serve | migrate | janitor | create-superuser | set-role |
//! deactivate-user | reactivate-user | revoke-sessions | audit | import-django | healthcheck |
//! openapi | keygen`. One module per command (or family of commands): its arguments, what it
//! does, and what it prints (a `Display`); `run` only dispatches and prints.

mod accounts;
mod audit;
mod healthcheck;
mod import_django;
mod keygen;
mod maintenance;

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::ServeArgs;
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "origin",
    version = crate::VERSION_LINE,
    about = "Origin service of the auth API (users, tokens, email)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the internal API until Ctrl-C / SIGTERM.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit (`--status`: list them, change nothing).
    Migrate(maintenance::MigrateArgs),
    /// Run the janitor once (what `serve` does every JANITOR_INTERVAL) and print what it deleted.
    Janitor(maintenance::JanitorArgs),
    /// Create an admin account, or make an existing one admin with this password.
    CreateSuperuser(accounts::CreateSuperuserArgs),
    /// Give an account the `admin` or the `user` role (takes effect at once at the origin; access
    /// tokens already issued keep their `role` claim until they expire).
    SetRole(accounts::SetRoleArgs),
    /// Deactivate an account: its logins are refused and every session ends at once (refresh
    /// tokens revoked, access tokens refused by the origin). Audited.
    DeactivateUser(accounts::AccountArgs),
    /// Reactivate an account deactivated by `deactivate-user` (its old sessions stay ended).
    /// Audited.
    ReactivateUser(accounts::AccountArgs),
    /// End every session of an account (refresh tokens revoked, access tokens refused by the
    /// origin; the edge's `/jwt/verify/` accepts an access token until it expires). Audited.
    RevokeSessions(accounts::AccountArgs),
    /// Print the audit log, newest first: logins, refresh-token reuse, resets, role changes.
    Audit(audit::AuditArgs),
    /// Import users from the Django original (its database, or `manage.py dumpdata` JSON), with
    /// their Django password hashes: they log in with their old passwords and are re-hashed to
    /// argon2id at their first login.
    ImportDjango(import_django::ImportDjangoArgs),
    /// Exit 0 when the origin at BIND answers `GET /healthz` with 200 within 3 s, else 1 (the
    /// container image's HEALTHCHECK: the image has no shell or curl).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Write the OpenAPI 3.1 document of the public API (stdout without --out).
    Openapi(OpenapiArgs),
    /// Generate an Ed25519 signing key: prints JWT_PRIVATE_KEY (origin) and JWT_PUBLIC_KEYS
    /// (edge), in a form that reaches the program unchanged (`--format`).
    Keygen(keygen::KeygenArgs),
}

/// Runs a command and prints what it reports on stdout (progress goes to stderr).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    use accounts::Action;
    let report: Box<dyn fmt::Display> = match cli.command {
        Command::Serve(args) => return serve(*args).await,
        Command::Migrate(args) => Box::new(args.run().await?),
        Command::Janitor(args) => Box::new(args.run().await?),
        Command::CreateSuperuser(args) => Box::new(args.run().await?),
        Command::SetRole(args) => Box::new(args.run().await?),
        Command::DeactivateUser(args) => Box::new(args.run(Action::Deactivate).await?),
        Command::ReactivateUser(args) => Box::new(args.run(Action::Reactivate).await?),
        Command::RevokeSessions(args) => Box::new(args.run(Action::RevokeSessions).await?),
        Command::Audit(args) => Box::new(args.run().await?),
        Command::ImportDjango(args) => Box::new(args.run().await?),
        Command::Healthcheck(args) => Box::new(args.run().await?),
        Command::Openapi(args) => Box::new(args.run()?),
        Command::Keygen(args) => Box::new(args.run()?),
    };
    print!("{report}");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _log_writer = crate::telemetry::init(args.log_format);
    let settings = args.validate()?;
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await
}

#[derive(Debug, clap::Args)]
pub struct OpenapiArgs {
    /// Where to write it; the edge serves `edge/assets/api/schema/index.json`.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The document itself (no `--out`), or where it was written.
pub enum Openapi {
    Printed(String),
    Written(PathBuf),
}

impl fmt::Display for Openapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Printed(document) => f.write_str(document),
            Self::Written(path) => writeln!(f, "wrote {}", path.display()),
        }
    }
}

impl OpenapiArgs {
    fn run(self) -> anyhow::Result<Openapi> {
        let document = crate::openapi::document();
        let Some(path) = self.out else {
            return Ok(Openapi::Printed(document));
        };
        std::fs::write(&path, document).with_context(|| format!("writing {}", path.display()))?;
        Ok(Openapi::Written(path))
    }
}
