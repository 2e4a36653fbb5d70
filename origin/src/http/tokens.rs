//! Login, refresh rotation, the refresh half of verify, and logout: the forms, and the replies
//! of `services::{login, refresh}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde_json::json;
use shared::api::{LoginRequest, RefreshRequest, TokenPair, VerifyRequest};
use shared::form::FromForm;

use super::error::ApiResult;
use super::extract::{ClientAgent, ClientNetwork, CurrentUser, JsonBody};
use crate::services::{login as login_service, refresh as refresh_service};
use crate::state::AppState;
use crate::store::tokens::LoginClient;

/// `POST /internal/tokens` — SimpleJWT's `jwt/create/`.
pub async fn login(
    State(state): State<AppState>,
    ClientNetwork(network): ClientNetwork,
    ClientAgent(agent): ClientAgent,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let LoginRequest { email, password } = LoginRequest::parse(&body)?;
    let from = LoginClient {
        network: &network,
        agent: &agent,
    };
    let pair = login_service::login(&state, &email, SecretString::from(password), from).await?;
    Ok(Json(pair))
}

/// `POST /internal/tokens/refresh` — rotation (see `services::refresh::rotate`).
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let RefreshRequest { refresh: token } = RefreshRequest::parse(&body)?;
    Ok(Json(refresh_service::rotate(&state, &token).await?))
}

/// `POST /internal/tokens/logout` — revokes the family of the given refresh token, which must
/// belong to the authenticated user.
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let RefreshRequest { refresh: token } = RefreshRequest::parse(&body)?;
    refresh_service::logout(&state, user.id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/tokens/verify` `{token}` — 200 `{}` while the refresh token can still
/// refresh, 400 `Token is blacklisted` when it was revoked (SimpleJWT's blacklist answer), 401
/// when it is not a refresh token we issued.
pub async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<serde_json::Value>> {
    let VerifyRequest { token } = VerifyRequest::parse(&body)?;
    refresh_service::check_live(&state, &token).await?;
    Ok(Json(json!({})))
}
