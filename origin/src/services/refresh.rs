//! The life of a refresh family after login: rotation with reuse detection, the revocation
//! check of `jwt/verify/`, and logout.

use chrono::Utc;
use serde_json::json;
use shared::api::TokenPair;
use shared::token::Claims;
use uuid::Uuid;

use super::issue::{access_token, refresh_token};
use super::{Error, Result};
use crate::state::AppState;
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason};
use crate::store::users;

/// `token` checked as a refresh token (signature, expiry, kind), and its `jti`.
fn claims_of(state: &AppState, token: &str, now: i64) -> Result<(Claims, Uuid)> {
    let claims = state.tokens.verifier.refresh(token, now).map_err(|e| {
        tracing::debug!(reason = %e, "refresh token refused");
        Error::RefreshTokenNotValid
    })?;
    let jti = Uuid::parse_str(&claims.jti).map_err(|_| Error::RefreshTokenNotValid)?;
    Ok((claims, jti))
}

/// Rotation: each refresh token is exchanged once for a new pair. Presenting it again within
/// the grace window gets the same new refresh token (a client retrying after a lost response);
/// after it, the whole family is revoked (token theft).
pub async fn rotate(state: &AppState, token: &str) -> Result<TokenPair> {
    let now = Utc::now();
    let (claims, jti) = claims_of(state, token, now.timestamp())?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let stored = tokens::lock(&tx, jti)
        .await?
        .ok_or(Error::RefreshTokenNotValid)?;
    if stored.family_revoked || stored.user_id != claims.user_id {
        return Err(Error::RefreshTokenNotValid);
    }
    let user = users::by_id(&tx, stored.user_id)
        .await?
        .ok_or(Error::RefreshTokenNotValid)?;
    if !user.is_active || user.token_version != claims.ver {
        return Err(Error::RefreshTokenNotValid);
    }
    let now_s = now.timestamp();
    let t = &state.tokens;
    let pair = match stored.used_at {
        None => {
            let child = Uuid::new_v4();
            let exp = now_s + t.refresh_ttl;
            tokens::mark_used(&tx, jti).await?;
            tokens::insert(&tx, child, stored.family_id, Some(jti), user.id, now_s, exp).await?;
            TokenPair {
                refresh: refresh_token(t, &user, child, now_s, exp)?,
                access: access_token(t, &user, now_s, stored.family_id)?,
            }
        }
        Some(used_at) if (now - used_at).num_milliseconds() <= t.reuse_grace * 1_000 => {
            let (child, iat, exp) = tokens::child_of(&tx, jti)
                .await?
                .ok_or(Error::RefreshTokenNotValid)?;
            TokenPair {
                refresh: refresh_token(t, &user, child, iat, exp)?,
                access: access_token(t, &user, now_s, stored.family_id)?,
            }
        }
        Some(_) => {
            tokens::revoke_family(&tx, stored.family_id, RevokeReason::Reuse).await?;
            audit::record(
                &tx,
                Some(user.id),
                Event::RefreshReuse,
                json!({ "family": stored.family_id }),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(user_id = user.id, family = %stored.family_id, "refresh token reuse detected; family revoked");
            return Err(Error::RefreshTokenNotValid);
        }
    };
    tx.commit().await?;
    Ok(pair)
}

/// The revocation half of `jwt/verify/` for refresh tokens (the edge checks signatures and
/// access tokens itself, but only the database knows a family's state): `Ok` while the token
/// can still refresh, [`Error::RefreshTokenRevoked`] when it was rotated out, logged out, or
/// revoked by reuse detection or a password reset, [`Error::RefreshTokenNotValid`] when it is
/// not a refresh token we issued.
pub async fn check_live(state: &AppState, token: &str) -> Result<()> {
    let (claims, jti) = claims_of(state, token, Utc::now().timestamp())?;
    let client = state.pool.get().await?;
    let status = tokens::status(&client, jti)
        .await?
        .filter(|s| s.user_id == claims.user_id)
        .ok_or(Error::RefreshTokenNotValid)?;
    let live = status.used_at.is_none()
        && !status.family_revoked
        && status.user_active
        && status.token_version == claims.ver;
    if !live {
        return Err(Error::RefreshTokenRevoked);
    }
    Ok(())
}

/// Logout: revokes the family of `token`, which must belong to `user_id`.
pub async fn logout(state: &AppState, user_id: i64, token: &str) -> Result<()> {
    let (claims, jti) = claims_of(state, token, Utc::now().timestamp())?;
    if claims.user_id != user_id {
        return Err(Error::RefreshTokenNotValid);
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let stored = tokens::lock(&tx, jti)
        .await?
        .ok_or(Error::RefreshTokenNotValid)?;
    if stored.user_id != user_id
        || !tokens::revoke_family(&tx, stored.family_id, RevokeReason::Logout).await?
    {
        return Err(Error::RefreshTokenNotValid);
    }
    audit::record(
        &tx,
        Some(user_id),
        Event::Logout,
        json!({ "family": stored.family_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
