//! Signing the tokens a login or a rotation hands out.

use shared::token::{Subject, TokenKind};
use uuid::Uuid;

use super::Result;
use crate::config::TokenConfig;
use crate::store::users::User;

fn subject(user: &User) -> Subject {
    Subject {
        user_id: user.id,
        token_version: user.token_version,
        role: user.role.clone(),
    }
}

/// A fresh access token (new `jti`) for `user`, in the session `family` (its `sid`).
pub(super) fn access_token(
    tokens: &TokenConfig,
    user: &User,
    now: i64,
    family: Uuid,
) -> Result<String> {
    let mut claims = tokens.issuer.claims(
        TokenKind::Access,
        &subject(user),
        Uuid::new_v4().simple().to_string(),
        now,
        tokens.access_ttl,
    );
    claims.sid = Some(family.hyphenated().to_string());
    Ok(tokens.issuer.sign(&claims).map_err(anyhow::Error::from)?)
}

/// The refresh token of the stored row `jti` (issued at `iat`, expiring at `exp`).
pub(super) fn refresh_token(
    tokens: &TokenConfig,
    user: &User,
    jti: Uuid,
    iat: i64,
    exp: i64,
) -> Result<String> {
    let mut claims =
        tokens
            .issuer
            .claims(TokenKind::Refresh, &subject(user), jti.to_string(), iat, 0);
    claims.exp = exp;
    Ok(tokens.issuer.sign(&claims).map_err(anyhow::Error::from)?)
}
