//! Login, refresh rotation, the refresh half of verify, and logout: the forms, and the replies
//! of `services::{login, refresh}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use secrecy::SecretString;
use serde_json::json;
use shared::api::TokenPair;
use shared::form::Form;
use shared::problem::Problem;
use shared::signing::Identity;

use crate::edge_auth::{require_user, ClientNetwork, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::services::{login as login_service, refresh as refresh_service};
use crate::state::AppState;

/// Longest password accepted at login: bounds the work an anonymous request can cause.
const LOGIN_PASSWORD_MAX_CHARS: usize = 1024;
const LOGIN_EMAIL_MAX_CHARS: usize = 320;

/// `POST /internal/tokens` — SimpleJWT's `jwt/create/`.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientNetwork(network)): Extension<ClientNetwork>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let mut form = Form::new(&body)?;
    let email = form.required("email", LOGIN_EMAIL_MAX_CHARS);
    let password = form.required("password", LOGIN_PASSWORD_MAX_CHARS);
    form.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    let pair = login_service::login(&state, &email, SecretString::from(password), &network).await?;
    Ok(Json(pair))
}

/// The refresh token in the body's `field` (`refresh`, or `token` for verify).
fn refresh_field(body: &serde_json::Value, field: &str) -> ApiResult<String> {
    let mut form = Form::new(body)?;
    let token = form.required(field, shared::token::MAX_TOKEN_BYTES);
    form.finish()?;
    token.ok_or(Problem::TokenNotValid.into())
}

/// `POST /internal/tokens/refresh` — rotation (see `services::refresh::rotate`).
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let token = refresh_field(&body, "refresh")?;
    Ok(Json(refresh_service::rotate(&state, &token).await?))
}

/// `POST /internal/tokens/logout` — revokes the family of the given refresh token, which must
/// belong to the authenticated user.
pub async fn logout(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let (user_id, _) = require_user(identity)?;
    let token = refresh_field(&body, "refresh")?;
    refresh_service::logout(&state, user_id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/tokens/verify` `{token}` — 200 `{}` while the refresh token can still
/// refresh, 400 `Token is blacklisted` when it was revoked (SimpleJWT's blacklist answer), 401
/// when it is not a refresh token we issued.
pub async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<serde_json::Value>> {
    let token = refresh_field(&body, "token")?;
    refresh_service::check_live(&state, &token).await?;
    Ok(Json(json!({})))
}
