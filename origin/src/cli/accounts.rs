//! The operator's commands on one account: `create-superuser`, `set-role`,
//! `deactivate-user`, `reactivate-user`, `revoke-sessions`. Each is audited by the service it
//! calls; each prints one line saying what changed.

use std::fmt;

use anyhow::Context;
use secrecy::SecretString;
use shared::validate::{Email, Username};

use crate::config::DatabaseArgs;
use crate::password::PasswordHasher;
use crate::services::account::{self, AdminStep};

/// A pool on `database`, with the migrations applied (the operator commands run on a database
/// the server may not have migrated yet).
pub(super) async fn migrated_pool(database: &DatabaseArgs) -> anyhow::Result<crate::db::Pool> {
    let pool = crate::db::pool(database)?;
    crate::db::migrate(&pool).await?;
    Ok(pool)
}

/// An operator's step on the account with `email`: its outcome, or why it failed (`failed`, the
/// cause), or that there is no such account.
fn account_step<T>(
    outcome: crate::services::Result<Option<T>>,
    email: &str,
    failed: &'static str,
) -> anyhow::Result<T> {
    outcome
        .context(failed)?
        .ok_or_else(|| anyhow::anyhow!("no account with the email {email}"))
}

#[derive(Debug, clap::Args)]
pub struct CreateSuperuserArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    username: String,
    /// The password (not checked against the policy, as the original command).
    #[arg(long, env = "SUPERUSER_PASSWORD", hide_env_values = true)]
    password: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// `created superuser a@b.c (id 1)` or `updated …`.
pub struct SuperuserSet {
    email: Email,
    id: i64,
    created: bool,
}

impl fmt::Display for SuperuserSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.created { "created" } else { "updated" };
        writeln!(f, "{what} superuser {} (id {})", self.email, self.id)
    }
}

impl CreateSuperuserArgs {
    pub async fn run(self) -> anyhow::Result<SuperuserSet> {
        let email = Email::parse(&self.email).map_err(|m| anyhow::anyhow!("--email: {m}"))?;
        let username =
            Username::parse(&self.username).map_err(|m| anyhow::anyhow!("--username: {m}"))?;
        anyhow::ensure!(!self.password.is_empty(), "--password must not be empty");
        let pool = migrated_pool(&self.database).await?;
        // One hashing thread, the same hasher and parameters as the server's.
        let hasher = PasswordHasher::new(1, 1)?;
        let password = SecretString::from(self.password);
        let superuser = account::set_superuser(&pool, &hasher, &email, &username, password)
            .await
            .context("could not create the superuser")?;
        Ok(SuperuserSet {
            email,
            id: superuser.id,
            created: superuser.created,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct SetRoleArgs {
    #[arg(long)]
    email: String,
    #[arg(long, value_parser = ["admin", "user"])]
    role: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// `a@b.c (id 1): role user -> admin`.
pub struct RoleSet {
    email: String,
    id: i64,
    from: String,
    to: String,
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            email,
            id,
            from,
            to,
        } = self;
        writeln!(f, "{email} (id {id}): role {from} -> {to}")
    }
}

impl SetRoleArgs {
    pub async fn run(self) -> anyhow::Result<RoleSet> {
        let pool = migrated_pool(&self.database).await?;
        let outcome = account::set_role(&pool, &self.email, &self.role).await;
        let change = account_step(outcome, &self.email, "could not set the role")?;
        Ok(RoleSet {
            email: self.email,
            id: change.id,
            from: change.from,
            to: self.role,
        })
    }
}

/// The account `deactivate-user`, `reactivate-user` and `revoke-sessions` act on.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    #[arg(long)]
    email: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// What an operator did to one account's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deactivate,
    Reactivate,
    RevokeSessions,
}

/// One line: the account, and what the step changed.
pub struct ActionDone {
    email: String,
    action: Action,
    step: AdminStep,
}

impl fmt::Display for ActionDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            email,
            action,
            step,
        } = self;
        let revoked = step.sessions_revoked;
        let what = match (action, step.was_active) {
            (Action::Deactivate, true) => format!("deactivated, {revoked} sessions revoked"),
            (Action::Deactivate, false) => {
                format!("was already inactive, {revoked} sessions revoked")
            }
            (Action::Reactivate, true) => "was already active".to_owned(),
            (Action::Reactivate, false) => "reactivated".to_owned(),
            (Action::RevokeSessions, _) => {
                format!("{revoked} sessions revoked, access tokens outdated")
            }
        };
        writeln!(f, "{email} (id {}): {what}", step.id)
    }
}

impl AccountArgs {
    pub async fn run(self, action: Action) -> anyhow::Result<ActionDone> {
        let pool = migrated_pool(&self.database).await?;
        let email = self.email;
        let (outcome, failed) = match action {
            Action::Deactivate => (
                account::set_active(&pool, &email, false).await,
                "could not deactivate the account",
            ),
            Action::Reactivate => (
                account::set_active(&pool, &email, true).await,
                "could not reactivate the account",
            ),
            Action::RevokeSessions => (
                account::revoke_sessions(&pool, &email).await,
                "could not revoke the sessions",
            ),
        };
        let step = account_step(outcome, &email, failed)?;
        Ok(ActionDone {
            email,
            action,
            step,
        })
    }
}
