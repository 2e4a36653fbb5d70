//! Password reset, origin side: the forms, and the replies of `services::reset`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde_json::json;
use shared::form::Form;
use shared::otp::OtpCode;
use shared::token::MAX_TOKEN_BYTES;
use shared::validate::{Email, EMAIL_MAX_CHARS};

use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use crate::services::reset;
use crate::state::AppState;

/// `POST /internal/password-reset/code` `{email, code}` — the answer is the same `202 {}`
/// whether or not an active account has that address.
pub async fn send_code(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let mut form = Form::new(&body)?;
    let email = form.required("email", EMAIL_MAX_CHARS);
    let code = form.required("code", 6);
    let email = email.and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
    let code = code.and_then(|raw| {
        OtpCode::parse(&raw).or_else(|| {
            form.error("code", "Enter a 6-digit code.");
            None
        })
    });
    form.finish()?;
    let (Some(email), Some(code)) = (email, code) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    reset::send_code(&state, &email, &code).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}

/// `POST /internal/password-reset/confirm` `{reset_token, new_password, re_new_password}`.
pub async fn confirm(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut form = Form::new(&body)?;
    let token = form.required("reset_token", MAX_TOKEN_BYTES);
    let new_password = shared::form::new_password_pair(&mut form);
    form.finish()?;
    let (Some(token), Some(new_password)) = (token, new_password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    reset::confirm(&state, &token, SecretString::from(new_password)).await?;
    Ok(StatusCode::NO_CONTENT)
}
