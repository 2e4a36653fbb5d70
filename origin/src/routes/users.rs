//! Registration and the current user's profile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use secrecy::SecretString;
use serde_json::json;
use shared::api::{FieldErrors, RegisteredUser, UserProfile, MSG_EMAIL_TAKEN, MSG_USERNAME_TAKEN};
use shared::form::Form;
use shared::signing::Identity;
use shared::validate::{
    Email, UserAttributes, Username, EMAIL_MAX_CHARS, MSG_PASSWORD_MISMATCH, NAME_MAX_CHARS,
    PASSWORD_MAX_CHARS, USERNAME_MAX_CHARS,
};

use super::profile;
use crate::edge_auth::{require_user, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;
use crate::store::audit::{self, Event};
use crate::store::users::{self, Taken, User, WriteError};

fn taken_errors(taken: &[Taken]) -> FieldErrors {
    let mut errors = FieldErrors::default();
    for t in taken {
        match t {
            Taken::Email => errors.add("email", MSG_EMAIL_TAKEN),
            Taken::Username => errors.add("username", MSG_USERNAME_TAKEN),
        }
    }
    errors
}

/// `POST /internal/users` — Djoser's `users/` create.
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<RegisteredUser>)> {
    let mut form = Form::new(&body).map_err(ApiError::Validation)?;
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
    form.finish().map_err(ApiError::Validation)?;
    let (Some(email), Some(username), Some(password)) = (email, username, password) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };

    // The connection goes back to the pool before the hash waits in its queue (a registration
    // flood must not starve other requests of connections), and a fresh one is taken after.
    let taken = {
        let client = state.pool.get().await?;
        users::taken(&client, email.as_str(), username.as_str()).await?
    };
    if !taken.is_empty() {
        return Err(ApiError::Validation(taken_errors(&taken)));
    }
    let hash = state.hasher.hash(SecretString::from(password)).await?;
    let client = state.pool.get().await?;
    // The unique indexes decide races between concurrent registrations of one email.
    let user = match users::insert(&client, email.as_str(), username.as_str(), &hash, "user").await
    {
        Ok(user) => user,
        Err(WriteError::Taken(t)) => return Err(ApiError::Validation(taken_errors(&[t]))),
        Err(WriteError::Db(e)) => return Err(e.into()),
    };
    audit::record(&client, Some(user.id), Event::Register, json!({})).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredUser {
            email: user.email,
            username: user.username,
            id: user.id,
        }),
    ))
}

/// The forwarded user, still active and with the token version the edge verified.
pub async fn current_user(state: &AppState, identity: Identity) -> ApiResult<User> {
    let (id, token_version) = require_user(identity)?;
    let client = state.pool.get().await?;
    match users::by_id(&client, id).await? {
        Some(user) if user.is_active && user.token_version == token_version => Ok(user),
        _ => Err(ApiError::BearerNotValid),
    }
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
    let mut form = Form::new(&body).map_err(ApiError::Validation)?;
    let username = form.optional("username", USERNAME_MAX_CHARS, false);
    let first_name = form.optional("first_name", NAME_MAX_CHARS, true);
    let last_name = form.optional("last_name", NAME_MAX_CHARS, true);
    let username = username.and_then(|raw| {
        Username::parse(&raw)
            .map_err(|m| form.error("username", m))
            .ok()
    });
    form.finish().map_err(ApiError::Validation)?;

    let client = state.pool.get().await?;
    let updated = users::update_profile(
        &client,
        user.id,
        username.as_ref().map(Username::as_str),
        first_name.as_deref(),
        last_name.as_deref(),
    )
    .await;
    match updated {
        Ok(Some(user)) => Ok(Json(profile(&user))),
        Ok(None) => Err(ApiError::BearerNotValid),
        Err(WriteError::Taken(t)) => Err(ApiError::Validation(taken_errors(&[t]))),
        Err(WriteError::Db(e)) => Err(e.into()),
    }
}
