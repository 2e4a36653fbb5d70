//! Login, refresh rotation with reuse detection, and logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use shared::api::TokenPair;
use shared::form::Form;
use shared::signing::Identity;
use shared::token::{Claims, Subject, TokenKind};
use uuid::Uuid;

use crate::edge_auth::{require_user, ClientNetwork, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Login;
use crate::startup::AppState;
use crate::store::attempts::{self, Decision};
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason};
use crate::store::users::{self, User};

/// Longest password accepted at login: bounds the work an anonymous request can cause.
const LOGIN_PASSWORD_MAX_CHARS: usize = 1024;
const LOGIN_EMAIL_MAX_CHARS: usize = 320;

fn subject(user: &User) -> Subject {
    Subject {
        user_id: user.id,
        token_version: user.token_version,
        role: user.role.clone(),
    }
}

/// A fresh access token (new `jti`) for `user`.
fn access_token(state: &AppState, user: &User, now: i64) -> ApiResult<String> {
    let t = &state.tokens;
    let claims = t.issuer.claims(
        TokenKind::Access,
        &subject(user),
        Uuid::new_v4().simple().to_string(),
        now,
        t.access_ttl,
    );
    Ok(t.issuer.sign(&claims).map_err(anyhow::Error::from)?)
}

fn refresh_token(
    state: &AppState,
    user: &User,
    jti: Uuid,
    iat: i64,
    exp: i64,
) -> ApiResult<String> {
    let mut claims =
        state
            .tokens
            .issuer
            .claims(TokenKind::Refresh, &subject(user), jti.to_string(), iat, 0);
    claims.exp = exp;
    Ok(state
        .tokens
        .issuer
        .sign(&claims)
        .map_err(anyhow::Error::from)?)
}

/// `POST /internal/tokens` — SimpleJWT's `jwt/create/`: one answer for unknown email, wrong
/// password, inactive or locked-out account, each costing one argon2 verification.
///
/// The attempt is counted as a failure, and the lockout decided, before the password is hashed
/// (`attempts::count_attempt`), so parallel guesses cannot outrun the count. No database
/// connection is held while the hash waits in its queue: a login flood must not starve the
/// pool that `/me`, refresh and the admin list need.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientNetwork(network)): Extension<ClientNetwork>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let mut form = Form::new(&body).map_err(ApiError::Validation)?;
    let email = form.required("email", LOGIN_EMAIL_MAX_CHARS);
    let password = form.required("password", LOGIN_PASSWORD_MAX_CHARS);
    form.finish().map_err(ApiError::Validation)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };

    let (user, decision) = {
        let client = state.pool.get().await?;
        let user = users::by_email(&client, &email).await?;
        let decision = match &user {
            Some(user) => {
                attempts::count_attempt(&client, user.id, &network, state.lockout).await?
            }
            None => Decision::Verify,
        };
        (user, decision)
    };
    let password = SecretString::from(password);
    // A refused attempt is verified against the dummy hash: it costs the same time as a check
    // of the real one, and its password is never compared.
    let stored = user
        .as_ref()
        .filter(|_| !decision.refused())
        .map(|u| u.password_hash.clone());
    let verified = state.hasher.verify(password.clone(), stored).await?;
    let Some(user) = user else {
        let client = state.pool.get().await?;
        state.metrics.login(Login::Failed);
        // Recorded (without the address tried) so an unknown email costs the same writes as a
        // wrong password: timing does not tell them apart.
        audit::record(
            &client,
            None,
            Event::LoginFailed,
            json!({ "reason": "unknown_account" }),
        )
        .await?;
        return Err(ApiError::InvalidCredentials);
    };
    if decision.refused() {
        let client = state.pool.get().await?;
        audit::record(
            &client,
            Some(user.id),
            Event::LoginLocked,
            json!({ "reason": decision.reason() }),
        )
        .await?;
        state.metrics.login(Login::Locked);
        return Err(ApiError::InvalidCredentials);
    }
    if !verified.ok {
        // Already counted before hashing.
        let client = state.pool.get().await?;
        audit::record(&client, Some(user.id), Event::LoginFailed, json!({})).await?;
        state.metrics.login(Login::Failed);
        return Err(ApiError::InvalidCredentials);
    }
    if !user.is_active {
        state.metrics.login(Login::Failed);
        return Err(ApiError::InvalidCredentials);
    }
    // Hashed before taking a connection (see above).
    let new_hash = if verified.needs_rehash {
        Some(state.hasher.hash(password).await?)
    } else {
        None
    };

    let client = state.pool.get().await?;
    if let Some(new_hash) = new_hash {
        if users::upgrade_hash(&client, user.id, &user.password_hash, &new_hash).await? {
            let from = user.password_hash.split('$').next().unwrap_or_default();
            audit::record(
                &client,
                Some(user.id),
                Event::PasswordRehashed,
                json!({ "from": if from.is_empty() { "argon2id" } else { from } }),
            )
            .await?;
            state.metrics.rehashed();
        }
    }

    let now = Utc::now().timestamp();
    let (family, jti) = (Uuid::new_v4(), Uuid::new_v4());
    let exp = now + state.tokens.refresh_ttl;
    tokens::open_family(
        &client,
        family,
        jti,
        user.id,
        &network,
        now,
        exp,
        Event::LoginOk.as_str(),
        &json!({ "family": family }),
    )
    .await?;
    state.metrics.login(Login::Ok);
    Ok(Json(TokenPair {
        refresh: refresh_token(&state, &user, jti, now, exp)?,
        access: access_token(&state, &user, now)?,
    }))
}

/// The refresh token in the body's `field` (`refresh`, or `token` for verify), checked as a
/// refresh token, and its `jti`.
fn parse_refresh(
    state: &AppState,
    body: &serde_json::Value,
    field: &str,
    now: i64,
) -> ApiResult<(Claims, Uuid)> {
    let mut form = Form::new(body).map_err(ApiError::Validation)?;
    let token = form.required(field, shared::token::MAX_TOKEN_BYTES);
    form.finish().map_err(ApiError::Validation)?;
    let token = token.ok_or(ApiError::TokenNotValid)?;
    let claims = state.tokens.verifier.refresh(&token, now).map_err(|e| {
        tracing::debug!(reason = %e, "refresh token refused");
        ApiError::TokenNotValid
    })?;
    let jti = Uuid::parse_str(&claims.jti).map_err(|_| ApiError::TokenNotValid)?;
    Ok((claims, jti))
}

/// `POST /internal/tokens/refresh` — rotation: each refresh token is exchanged once for a new
/// pair. Presenting it again within the grace window gets the same new refresh token (a client
/// retrying after a lost response); after it, the whole family is revoked (token theft).
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let now = Utc::now();
    let (claims, jti) = parse_refresh(&state, &body, "refresh", now.timestamp())?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let stored = tokens::lock(&tx, jti)
        .await?
        .ok_or(ApiError::TokenNotValid)?;
    if stored.family_revoked || stored.user_id != claims.user_id {
        return Err(ApiError::TokenNotValid);
    }
    let user = users::by_id(&tx, stored.user_id)
        .await?
        .ok_or(ApiError::TokenNotValid)?;
    if !user.is_active || user.token_version != claims.ver {
        return Err(ApiError::TokenNotValid);
    }
    let now_s = now.timestamp();
    let pair = match stored.used_at {
        None => {
            let child = Uuid::new_v4();
            let exp = now_s + state.tokens.refresh_ttl;
            tokens::mark_used(&tx, jti).await?;
            tokens::insert(&tx, child, stored.family_id, Some(jti), user.id, now_s, exp).await?;
            TokenPair {
                refresh: refresh_token(&state, &user, child, now_s, exp)?,
                access: access_token(&state, &user, now_s)?,
            }
        }
        Some(used_at) if (now - used_at).num_milliseconds() <= state.tokens.reuse_grace * 1_000 => {
            let (child, iat, exp) = tokens::child_of(&tx, jti)
                .await?
                .ok_or(ApiError::TokenNotValid)?;
            TokenPair {
                refresh: refresh_token(&state, &user, child, iat, exp)?,
                access: access_token(&state, &user, now_s)?,
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
            return Err(ApiError::TokenNotValid);
        }
    };
    tx.commit().await?;
    Ok(Json(pair))
}

/// `POST /internal/tokens/logout` — revokes the family of the given refresh token, which must
/// belong to the authenticated user.
pub async fn logout(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let (user_id, _) = require_user(identity)?;
    let (claims, jti) = parse_refresh(&state, &body, "refresh", Utc::now().timestamp())?;
    if claims.user_id != user_id {
        return Err(ApiError::TokenNotValid);
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let stored = tokens::lock(&tx, jti)
        .await?
        .ok_or(ApiError::TokenNotValid)?;
    if stored.user_id != user_id
        || !tokens::revoke_family(&tx, stored.family_id, RevokeReason::Logout).await?
    {
        return Err(ApiError::TokenNotValid);
    }
    audit::record(
        &tx,
        Some(user_id),
        Event::Logout,
        json!({ "family": stored.family_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/tokens/verify` `{token}` — the revocation half of `jwt/verify/` for refresh
/// tokens (the edge checks signatures and access tokens itself, but only the database knows a
/// family's state): 200 `{}` while the token can still refresh, 400 `Token is blacklisted` when
/// it was rotated out, logged out, or revoked by reuse detection or a password reset
/// (SimpleJWT's blacklist answer), 401 when it is not a refresh token we issued.
pub async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<serde_json::Value>> {
    let (claims, jti) = parse_refresh(&state, &body, "token", Utc::now().timestamp())?;
    let client = state.pool.get().await?;
    let status = tokens::status(&client, jti)
        .await?
        .filter(|s| s.user_id == claims.user_id)
        .ok_or(ApiError::TokenNotValid)?;
    let live = status.used_at.is_none()
        && !status.family_revoked
        && status.user_active
        && status.token_version == claims.ver;
    if !live {
        return Err(ApiError::Validation(shared::api::FieldErrors::single(
            "non_field_errors",
            shared::api::MSG_TOKEN_BLACKLISTED,
        )));
    }
    Ok(Json(json!({})))
}
