//! Password reset, origin side: emailing a code the edge generated, and setting the new
//! password with a single-use reset token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use shared::api::MSG_RESET_TOKEN_INVALID;
use shared::form::Form;
use shared::otp::OtpCode;
use shared::token::MAX_TOKEN_BYTES;
use shared::validate::{Email, UserAttributes, EMAIL_MAX_CHARS};

use crate::edge_auth::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason};
use crate::store::{outbox, resets, users};

/// `POST /internal/password-reset/code` `{email, code}` — queues the email only when an
/// active account has that address; the answer is the same `202 {}` either way.
pub async fn send_code(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let mut form = Form::new(&body).map_err(ApiError::Validation)?;
    let email = form.required("email", EMAIL_MAX_CHARS);
    let code = form.required("code", 6);
    let email = email.and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
    let code = code.and_then(|raw| {
        OtpCode::parse(&raw).or_else(|| {
            form.error("code", "Enter a 6-digit code.");
            None
        })
    });
    form.finish().map_err(ApiError::Validation)?;
    let (Some(email), Some(code)) = (email, code) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(user) = users::by_email(&tx, email.as_str())
        .await?
        .filter(|u| u.is_active)
    {
        let message = state
            .templates
            .password_reset(&user.email, &user.username, &code)?;
        outbox::enqueue(&tx, &message).await?;
        audit::record(&tx, Some(user.id), Event::ResetRequested, json!({})).await?;
        tx.commit().await?;
        state.metrics.email(crate::metrics::Email::Queued);
        state.email_wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}

/// `POST /internal/password-reset/confirm` `{reset_token, new_password, re_new_password}`.
pub async fn confirm(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut form = Form::new(&body).map_err(ApiError::Validation)?;
    let token = form.required("reset_token", MAX_TOKEN_BYTES);
    let new_password = shared::form::new_password_pair(&mut form);
    form.finish().map_err(ApiError::Validation)?;
    let (Some(token), Some(new_password)) = (token, new_password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    let invalid_token = || {
        ApiError::Validation(shared::api::FieldErrors::single(
            "reset_token",
            MSG_RESET_TOKEN_INVALID,
        ))
    };

    let claims = state
        .tokens
        .resets
        .verify(&token, Utc::now().timestamp())
        .map_err(|e| {
            tracing::debug!(reason = %e, "reset token refused");
            invalid_token()
        })?;
    // The connection goes back to the pool before the hash waits in its queue. Single use is
    // enforced atomically under the transaction below (`resets::consume`).
    let user = {
        let client = state.pool.get().await?;
        let user = users::by_email(&client, &claims.email)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(invalid_token)?;
        // A token minted before the last password change is spent, whoever changed it.
        if claims.iat < user.password_changed_at.timestamp()
            || resets::is_used(&client, &claims.jti).await?
        {
            return Err(invalid_token());
        }
        user
    };
    let attributes = UserAttributes {
        username: &user.username,
        email: &user.email,
    };
    if let Err(messages) = state.password_policy.check(&new_password, &attributes) {
        let mut errors = shared::api::FieldErrors::default();
        errors.extend("new_password", messages);
        return Err(ApiError::Validation(errors));
    }
    let hash = state.hasher.hash(SecretString::from(new_password)).await?;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !resets::consume(&tx, &claims.jti, user.id).await? {
        return Err(invalid_token());
    }
    users::set_password(&tx, user.id, &hash).await?;
    let revoked = tokens::revoke_all(&tx, user.id, RevokeReason::PasswordReset).await?;
    audit::record(
        &tx,
        Some(user.id),
        Event::ResetCompleted,
        json!({ "families_revoked": revoked }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
