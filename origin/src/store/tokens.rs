//! Refresh-token families: one per login, a chain of rotated tokens, revoked as a whole.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::Sql;

/// A stored refresh token with its family's state, as read under a row lock.
#[derive(Debug)]
pub struct StoredRefresh {
    pub family_id: Uuid,
    pub user_id: i64,
    pub used_at: Option<DateTime<Utc>>,
    pub family_revoked: bool,
}

/// Revocation reasons recorded on the family (and allowed by the schema).
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    Logout,
    Reuse,
    PasswordReset,
    /// An operator ended the account's sessions (`origin revoke-sessions`, `deactivate-user`).
    Admin,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::PasswordReset => "password_reset",
            Self::Admin => "admin",
        }
    }
}

/// A successful login in one statement (one round trip, atomic without an explicit
/// transaction): a new family, its first refresh token `jti`, the user's `last_login`, the
/// audit row (`event`, `detail`), and the lockout counts: this attempt was counted as a failure
/// before hashing (`attempts::count_attempt`), so the account-wide count takes it back, and the
/// (account, `network`) pair is reset and remembered as a network the owner logs in from.
#[allow(clippy::too_many_arguments)]
pub async fn open_family(
    client: &impl Sql,
    family_id: Uuid,
    jti: Uuid,
    user_id: i64,
    network: &str,
    iat: i64,
    exp: i64,
    event: &str,
    detail: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "WITH family AS ( \
                 INSERT INTO refresh_families (id, user_id) VALUES ($1, $3) RETURNING id \
             ), token AS ( \
                 INSERT INTO refresh_tokens (jti, family_id, parent_jti, user_id, issued_at, expires_at) \
                 SELECT $2, family.id, NULL, $3, to_timestamp($4::bigint), to_timestamp($5::bigint) FROM family \
                 RETURNING jti \
             ), login AS ( \
                 UPDATE users SET last_login = now(), failed_logins = greatest(failed_logins - 1, 0) \
                 WHERE id = $3 RETURNING id \
             ), known AS ( \
                 UPDATE login_attempts SET failures = 0, last_success_at = now() \
                 WHERE user_id = $3 AND network = $8 \
             ) \
             INSERT INTO audit_log (user_id, event, detail) SELECT login.id, $6, $7 FROM token, login", &[(&family_id, Type::UUID), (&jti, Type::UUID), (&user_id, Type::INT8), (&iat, Type::INT8), (&exp, Type::INT8), (&event, Type::TEXT), (detail, Type::JSONB), (&network, Type::TEXT)],
        )
        .await?;
    Ok(())
}

pub async fn insert(
    client: &impl Sql,
    jti: Uuid,
    family_id: Uuid,
    parent: Option<Uuid>,
    user_id: i64,
    iat: i64,
    exp: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("INSERT INTO refresh_tokens (jti, family_id, parent_jti, user_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), to_timestamp($6::bigint))", &[(&jti, Type::UUID), (&family_id, Type::UUID), (&parent, Type::UUID), (&user_id, Type::INT8), (&iat, Type::INT8), (&exp, Type::INT8)])
        .await?;
    Ok(())
}

/// Reads a token and locks its row, so concurrent refreshes of one token are serialised.
pub async fn lock(
    client: &impl Sql,
    jti: Uuid,
) -> Result<Option<StoredRefresh>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT t.family_id, t.user_id, t.used_at, f.revoked_at IS NOT NULL \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.jti = $1 FOR UPDATE OF t",
            &[(&jti, Type::UUID)],
        )
        .await?
        .map(|row| StoredRefresh {
            family_id: row.get(0),
            user_id: row.get(1),
            used_at: row.get(2),
            family_revoked: row.get(3),
        }))
}

/// A stored refresh token with its family's and its user's state, read without a lock.
#[derive(Debug)]
pub struct RefreshStatus {
    pub user_id: i64,
    pub used_at: Option<DateTime<Utc>>,
    pub family_revoked: bool,
    pub user_active: bool,
    pub token_version: i32,
}

/// Whether a refresh token can still be used, in one query (`jwt/verify/`).
pub async fn status(
    client: &impl Sql,
    jti: Uuid,
) -> Result<Option<RefreshStatus>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT t.user_id, t.used_at, f.revoked_at IS NOT NULL, u.is_active, u.token_version \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             JOIN users u ON u.id = t.user_id WHERE t.jti = $1",
            &[(&jti, Type::UUID)],
        )
        .await?
        .map(|row| RefreshStatus {
            user_id: row.get(0),
            used_at: row.get(1),
            family_revoked: row.get(2),
            user_active: row.get(3),
            token_version: row.get(4),
        }))
}

pub async fn mark_used(client: &impl Sql, jti: Uuid) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE refresh_tokens SET used_at = now() WHERE jti = $1",
            &[(&jti, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// The token a rotation produced from `parent`: (jti, iat, exp).
pub async fn child_of(
    client: &impl Sql,
    parent: Uuid,
) -> Result<Option<(Uuid, i64, i64)>, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT jti, extract(epoch FROM issued_at)::bigint, extract(epoch FROM expires_at)::bigint \
             FROM refresh_tokens WHERE parent_jti = $1", &[(&parent, Type::UUID)])
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Whether the family was live (and is now revoked).
pub async fn revoke_family(
    client: &impl Sql,
    family_id: Uuid,
    reason: RevokeReason,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute("UPDATE refresh_families SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL", &[(&family_id, Type::UUID), (&reason.as_str(), Type::TEXT)])
        .await?
        == 1)
}

/// Revokes every live family of the user; returns how many.
pub async fn revoke_all(
    client: &impl Sql,
    user_id: i64,
    reason: RevokeReason,
) -> Result<u64, tokio_postgres::Error> {
    client.execute("UPDATE refresh_families SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL", &[(&user_id, Type::INT8), (&reason.as_str(), Type::TEXT)]).await
}
