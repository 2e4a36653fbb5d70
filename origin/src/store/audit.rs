//! The append-only audit log of security events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::Type;

use crate::db::Sql;

/// Security events, by name as stored.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Register,
    LoginOk,
    LoginFailed,
    LoginLocked,
    RefreshReuse,
    Logout,
    ResetRequested,
    ResetCompleted,
    SuperuserSet,
    RoleChanged,
    PasswordRehashed,
    Imported,
    AccountDeleted,
    CurrentPasswordRefused,
    UsernameChanged,
    UserDeactivated,
    UserReactivated,
    SessionsRevoked,
    SessionRevoked,
    PasswordChanged,
    Activated,
    ActivationResent,
    /// An account that never activated, deleted by the janitor after PENDING_ACCOUNT_DAYS.
    PendingAccountExpired,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::LoginLocked => "login_locked",
            Self::RefreshReuse => "refresh_reuse_detected",
            Self::Logout => "logout",
            Self::ResetRequested => "reset_requested",
            Self::ResetCompleted => "reset_completed",
            Self::SuperuserSet => "superuser_set",
            Self::RoleChanged => "role_changed",
            Self::PasswordRehashed => "password_rehashed",
            Self::Imported => "imported",
            Self::AccountDeleted => "account_deleted",
            Self::CurrentPasswordRefused => "current_password_refused",
            Self::UsernameChanged => "username_changed",
            Self::UserDeactivated => "user_deactivated",
            Self::UserReactivated => "user_reactivated",
            Self::SessionsRevoked => "sessions_revoked",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordChanged => "password_changed",
            Self::Activated => "activated",
            Self::ActivationResent => "activation_resent",
            Self::PendingAccountExpired => "pending_account_expired",
        }
    }
}

pub async fn record(
    client: &impl Sql,
    user_id: Option<i64>,
    event: Event,
    detail: Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO audit_log (user_id, event, detail) VALUES ($1, $2, $3)",
            &[
                (&user_id, Type::INT8),
                (&event.as_str(), Type::TEXT),
                (&detail, Type::JSONB),
            ],
        )
        .await?;
    Ok(())
}

/// One audit row, with the account's current email.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub email: Option<String>,
    pub event: String,
    pub detail: Value,
}

/// The newest `limit` rows, optionally of one account (by email) and one event.
pub async fn recent(
    client: &impl Sql,
    email: Option<&str>,
    event: Option<&str>,
    limit: i64,
) -> Result<Vec<Entry>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT a.id, a.at, a.user_id, u.email, a.event, a.detail FROM audit_log a \
             LEFT JOIN users u ON u.id = a.user_id \
             WHERE ($1::text IS NULL OR lower(u.email) = lower($1)) AND ($2::text IS NULL OR a.event = $2) \
             ORDER BY a.id DESC LIMIT $3",
            &[
                (&email, Type::TEXT),
                (&event, Type::TEXT),
                (&limit, Type::INT8),
            ],
        )
        .await?
        .iter()
        .map(|row| Entry {
            id: row.get(0),
            at: row.get(1),
            user_id: row.get(2),
            email: row.get(3),
            event: row.get(4),
            detail: row.get(5),
        })
        .collect())
}
