//! The origin's domain steps, shared by the HTTP routes and the CLI. Each takes values already
//! parsed (an `Email`, a password as a `SecretString`, a token as sent) and returns a typed
//! outcome or an [`Error`]; it owns the whole step: the lockout, the hashing, the SQL (through
//! `store`), the audit row and the metrics. Routes parse a form into these inputs and map the
//! outcome to a reply (`http::error` turns an [`Error`] into its DRF body); the CLI prints it.
//!
//! Steps only a running server takes (login, rotation, resets) read the [`AppState`]; the
//! account steps the CLI also takes ask only for the pool, and the hasher when they hash.
//!
//! [`AppState`]: crate::state::AppState

pub mod account;
pub mod activation;
mod issue;
pub mod login;
pub mod refresh;
pub mod reset;
pub mod sessions;

use uuid::Uuid;

use crate::password::HashError;
use crate::store::users::{Taken, WriteError};

/// The holder of an access token the edge verified: the account id, the token version and the
/// session (refresh family) it was issued in. Checked against the account and the session by
/// `account::current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    pub id: i64,
    pub token_version: i32,
    pub session: Uuid,
}

/// Why a step was refused or failed. The refusals say what the domain decided; how each is
/// answered on the wire is decided in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown email, wrong password, inactive or locked-out account: one answer for all.
    #[error("no active account with these credentials")]
    InvalidCredentials,
    /// A step that asks for the account's password got a wrong one (or the network is locked
    /// out): Djoser's `current_password` field error.
    #[error("current password not valid")]
    CurrentPasswordInvalid,
    /// Not a refresh token we issued to this user, or its family, account or token version no
    /// longer allows it.
    #[error("refresh token not valid")]
    RefreshTokenNotValid,
    /// A refresh token we issued that can no longer refresh: rotated out, logged out, or
    /// revoked by reuse detection or a password reset.
    #[error("refresh token revoked")]
    RefreshTokenRevoked,
    /// The account behind an access token is gone, inactive, or its tokens outdated.
    #[error("the access token's account is gone, inactive or outdated")]
    StaleAccessToken,
    #[error("the admin role is required")]
    NotAdmin,
    #[error("no such page")]
    NoSuchPage,
    /// Not a live session of the caller (never was, someone else's, or already ended): one
    /// answer, so ids of other accounts' sessions cannot be probed.
    #[error("no such session")]
    NoSuchSession,
    /// An activation link's uid that names no account.
    #[error("activation uid names no account")]
    ActivationUidInvalid,
    /// An activation link's token not made for its account, or expired.
    #[error("activation token not valid")]
    ActivationTokenInvalid,
    /// A valid activation link for an account that is not waiting for activation.
    #[error("account not waiting for activation")]
    ActivationStale,
    /// An activation code refused, whatever the reason.
    #[error("activation code not valid")]
    ActivationCodeInvalid,
    /// A reset token that fails any check, was used, or predates the last password change.
    #[error("reset token not valid")]
    ResetTokenNotValid,
    #[error("already taken: {0:?}")]
    Taken(Vec<Taken>),
    /// The new password fails the password policy (its messages).
    #[error("new password refused by the policy")]
    NewPasswordRefused(Vec<String>),
    #[error("password hashing queue full")]
    Overloaded,
    /// The database is unreachable or the pool is exhausted.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// After the commit of a transaction that queued an email: count it and wake the sender.
fn email_queued(state: &crate::state::AppState) {
    state.metrics.email(crate::metrics::Email::Queued);
    state.email_wake.notify_one();
}

/// `new_password` checked against the password policy (as at sign-up, similarity to `user`'s
/// username and email included) and hashed: what a reset and a change both store.
async fn new_password_hash(
    state: &crate::state::AppState,
    user: &crate::store::users::User,
    new_password: secrecy::SecretString,
) -> Result<String> {
    use secrecy::ExposeSecret;
    let attributes = shared::validate::UserAttributes {
        username: &user.username,
        email: &user.email,
    };
    state
        .password_policy
        .check(new_password.expose_secret(), &attributes)
        .map_err(Error::NewPasswordRefused)?;
    Ok(state.hasher.hash(new_password).await?)
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // Connection lost, or the server shutting down / restarting (SQLSTATE classes 08 and
        // 57P): a transient outage (503), not a bug (500).
        let transient = e.is_closed()
            || e.code().is_some_and(|c| {
                let code = c.code();
                code.starts_with("08") || code.starts_with("57P")
            });
        if transient {
            Self::Unavailable(e.into())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Taken(t) => Self::Taken(vec![t]),
            WriteError::Db(e) => e.into(),
        }
    }
}

impl From<HashError> for Error {
    fn from(e: HashError) -> Self {
        match e {
            HashError::QueueFull => Self::Overloaded,
            HashError::Failed(e) => Self::Internal(e),
        }
    }
}
