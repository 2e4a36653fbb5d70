//! The append-only audit log of security events.

use deadpool_postgres::GenericClient;
use serde_json::Value;

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
        }
    }
}

pub async fn record(
    client: &impl GenericClient,
    user_id: Option<i64>,
    event: Event,
    detail: Value,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("INSERT INTO audit_log (user_id, event, detail) VALUES ($1, $2, $3)")
        .await?;
    client
        .execute(&stmt, &[&user_id, &event.as_str(), &detail])
        .await?;
    Ok(())
}
