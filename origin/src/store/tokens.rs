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
    /// The account's owner ended it (`DELETE sessions/{id}/`, `sessions/revoke-others/`).
    Owner,
    /// The owner changed the password from another session (`users/set_password/`).
    PasswordChange,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::PasswordReset => "password_reset",
            Self::Admin => "admin",
            Self::Owner => "owner",
            Self::PasswordChange => "password_change",
        }
    }
}

/// The client a login came from, as the edge saw it; kept with the session for its owner to
/// recognise it (`GET sessions/`).
#[derive(Debug, Clone, Copy)]
pub struct LoginClient<'a> {
    pub network: &'a str,
    pub agent: &'a str,
}

/// A successful login in one statement (one round trip, atomic without an explicit
/// transaction): a new family (with the `client`), its first refresh token `jti`, the user's `last_login`, the
/// audit row (`event`, `detail`), and the lockout counts: this attempt was counted as a failure
/// before hashing (`attempts::count_attempt`), so the account-wide count takes it back, and the
/// (account, `network`) pair is reset and remembered as a network the owner logs in from.
#[allow(clippy::too_many_arguments)]
pub async fn open_family(
    client: &impl Sql,
    family_id: Uuid,
    jti: Uuid,
    user_id: i64,
    login: LoginClient<'_>,
    iat: i64,
    exp: i64,
    event: &str,
    detail: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    let network = login.network;
    client
        .execute(
            "WITH family AS ( \
                 INSERT INTO refresh_families (id, user_id, client_network, user_agent) \
                 VALUES ($1, $3, $8, $9) RETURNING id \
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
             INSERT INTO audit_log (user_id, event, detail) SELECT login.id, $6, $7 FROM token, login", &[(&family_id, Type::UUID), (&jti, Type::UUID), (&user_id, Type::INT8), (&iat, Type::INT8), (&exp, Type::INT8), (&event, Type::TEXT), (detail, Type::JSONB), (&network, Type::TEXT), (&login.agent, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// A rotated refresh token `jti` in `family_id`, child of `parent`.
pub async fn insert(
    client: &impl Sql,
    jti: Uuid,
    family_id: Uuid,
    parent: Option<Uuid>,
    user_id: i64,
    iat: i64,
    exp: i64,
) -> Result<(), tokio_postgres::Error> {
    // The family was used now (a rotation): its `last_used_at`, in the same statement.
    client
        .execute("WITH used AS ( \
                 UPDATE refresh_families SET last_used_at = to_timestamp($5::bigint) WHERE id = $2 \
             ) \
             INSERT INTO refresh_tokens (jti, family_id, parent_jti, user_id, issued_at, expires_at) \
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
    revoke_all_but(client, user_id, None, reason).await
}

/// A live session of a user, as `GET sessions/` lists it.
#[derive(Debug)]
pub struct Session {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: String,
    pub client_network: String,
}

/// The user's live sessions, the most recently used first: families not revoked that still hold
/// a refresh token that can be used (not rotated out, not expired).
pub async fn live_sessions(
    client: &impl Sql,
    user_id: i64,
) -> Result<Vec<Session>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT f.id, f.created_at, f.last_used_at, f.user_agent, f.client_network \
             FROM refresh_families f WHERE f.user_id = $1 AND f.revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id \
                         AND t.used_at IS NULL AND t.expires_at > now()) \
             ORDER BY f.last_used_at DESC, f.created_at DESC, f.id",
            &[(&user_id, Type::INT8)],
        )
        .await?
        .into_iter()
        .map(|row| Session {
            id: row.get(0),
            created_at: row.get(1),
            last_used_at: row.get(2),
            user_agent: row.get(3),
            client_network: row.get(4),
        })
        .collect())
}

/// Revokes the family `family_id` if it belongs to `user_id` and is live; whether it did.
pub async fn revoke_owned(
    client: &impl Sql,
    family_id: Uuid,
    user_id: i64,
    reason: RevokeReason,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE refresh_families SET revoked_at = now(), revoked_reason = $3 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[
                (&family_id, Type::UUID),
                (&user_id, Type::INT8),
                (&reason.as_str(), Type::TEXT),
            ],
        )
        .await?
        == 1)
}

/// Revokes every live family of the user but `keep` (all of them when `None`); how many.
pub async fn revoke_all_but(
    client: &impl Sql,
    user_id: i64,
    keep: Option<Uuid>,
    reason: RevokeReason,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE refresh_families SET revoked_at = now(), revoked_reason = $3 \
             WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
            &[
                (&user_id, Type::INT8),
                (&keep, Type::UUID),
                (&reason.as_str(), Type::TEXT),
            ],
        )
        .await
}
