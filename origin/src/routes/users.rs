//! Registration and the current user's profile: the forms, and the replies of
//! `services::account`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use secrecy::SecretString;
use shared::api::{RegisteredUser, UserProfile};
use shared::form::Form;
use shared::signing::Identity;
use shared::validate::{
    Email, UserAttributes, Username, EMAIL_MAX_CHARS, MSG_PASSWORD_MISMATCH, NAME_MAX_CHARS,
    PASSWORD_MAX_CHARS, USERNAME_MAX_CHARS,
};

use super::profile;
use crate::edge_auth::{require_user, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::services::account::{self, NewAccount, ProfileChanges};
use crate::state::AppState;
use crate::store::users::User;

/// `POST /internal/users` — Djoser's `users/` create. The password policy is checked with the
/// form, so its messages come in one body with the other fields' errors.
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<RegisteredUser>)> {
    let mut form = Form::new(&body)?;
    let email = form.required("email", EMAIL_MAX_CHARS);
    let username = form.required("username", USERNAME_MAX_CHARS);
    let password = form.required("password", PASSWORD_MAX_CHARS);
    let re_password = form.optional("re_password", PASSWORD_MAX_CHARS, false);
    let email = email.and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
    let username = username.and_then(|raw| {
        Username::parse(&raw)
            .map_err(|m| form.error("username", m))
            .ok()
    });
    if let (Some(email), Some(username), Some(password)) = (&email, &username, &password) {
        let attributes = UserAttributes {
            username: username.as_str(),
            email: email.as_str(),
        };
        if let Err(messages) = state.password_policy.check(password, &attributes) {
            for m in messages {
                form.error("password", m);
            }
        }
        if re_password.as_ref().is_some_and(|re| re != password) {
            form.error("non_field_errors", MSG_PASSWORD_MISMATCH);
        }
    }
    form.finish()?;
    let (Some(email), Some(username), Some(password)) = (email, username, password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    let new = NewAccount {
        email,
        username,
        password: SecretString::from(password),
    };
    let user = account::register(&state.pool, &state.hasher, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredUser {
            email: user.email,
            username: user.username,
            id: user.id,
        }),
    ))
}

/// The user the edge authenticated, still active and with the token version it verified.
async fn current_user(state: &AppState, identity: Identity) -> ApiResult<User> {
    let (id, token_version) = require_user(identity)?;
    Ok(account::current(&state.pool, id, token_version).await?)
}

/// `GET /internal/me`.
pub async fn me(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> ApiResult<Json<UserProfile>> {
    Ok(Json(profile(&current_user(&state, identity).await?)))
}

/// `PATCH /internal/me` — username and names only; `role`, `email`, `id`, `is_active` are
/// read-only and ignored, as DRF ignores read-only fields.
pub async fn patch_me(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<UserProfile>> {
    let user = current_user(&state, identity).await?;
    let mut form = Form::new(&body)?;
    let username = form.optional("username", USERNAME_MAX_CHARS, false);
    let first_name = form.optional("first_name", NAME_MAX_CHARS, true);
    let last_name = form.optional("last_name", NAME_MAX_CHARS, true);
    let username = username.and_then(|raw| {
        Username::parse(&raw)
            .map_err(|m| form.error("username", m))
            .ok()
    });
    form.finish()?;
    let changes = ProfileChanges {
        username,
        first_name,
        last_name,
    };
    let updated = account::update_profile(&state.pool, user.id, changes).await?;
    Ok(Json(profile(&updated)))
}
