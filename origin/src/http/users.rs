//! Registration and the current user's profile: the forms, and the replies of
//! `services::account`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use shared::api::{
    self, Activate, DeleteMeRequest, PatchMeRequest, RegisterRequest, RegisteredUser,
    ResendActivationRequest, SetPasswordRequest, SetUsernameRequest, UserProfile,
};
use shared::form::{Form, FromForm};
use shared::problem::Problem;
use shared::validate::{UserAttributes, MSG_PASSWORD_MISMATCH};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, ClientNetwork, CurrentUser, JsonBody};
use super::profile;
use crate::services;
use crate::services::account::{self, NewAccount, ProfileChanges};
use crate::services::activation;
use crate::state::AppState;

/// `POST /internal/users` — Djoser's `users/` create. The password policy is checked with the
/// form, so its messages come in one body with the other fields' errors.
pub async fn register(
    State(state): State<AppState>,
    ClientNetwork(network): ClientNetwork,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<RegisteredUser>)> {
    let mut form = Form::new(&body)?;
    let request = RegisterRequest::read(&mut form);
    if let Some(request) = &request {
        let attributes = UserAttributes {
            username: request.username.as_str(),
            email: request.email.as_str(),
        };
        if let Err(messages) = state.password_policy.check(&request.password, &attributes) {
            for m in messages {
                form.error("password", m);
            }
        }
        if request
            .re_password
            .as_ref()
            .is_some_and(|re| *re != request.password)
        {
            form.error("non_field_errors", MSG_PASSWORD_MISMATCH);
        }
    }
    form.finish()?;
    let Some(request) = request else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "form accepted without every required field"
        )));
    };
    let new = NewAccount {
        email: request.email,
        username: request.username,
        password: SecretString::from(request.password),
    };
    let user = account::register(&state, new, &network).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredUser {
            email: user.email,
            username: user.username,
            id: user.id,
        }),
    ))
}

/// `GET /internal/me`.
pub async fn me(CurrentUser(user): CurrentUser) -> Json<UserProfile> {
    Json(profile(&user))
}

/// `PATCH /internal/me` — username and names only; `role`, `email`, `id`, `is_active` are
/// read-only and ignored, as DRF ignores read-only fields.
pub async fn patch_me(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<UserProfile>> {
    let request = PatchMeRequest::parse(&body)?;
    let changes = ProfileChanges {
        username: request.username,
        first_name: request.first_name,
        last_name: request.last_name,
    };
    let updated = account::update_profile(&state.pool, user.id, changes).await?;
    Ok(Json(profile(&updated)))
}

/// `DELETE /internal/me` — Djoser's `users/me/` delete, with `current_password`.
pub async fn delete_me(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let request = DeleteMeRequest::parse(&body)?;
    let password = SecretString::from(request.current_password);
    account::delete_account(&state, &caller.user, password, &caller.network).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/me/username` — Djoser's `users/set_username/`. A taken username is Djoser's
/// error on `new_username`.
pub async fn set_username(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let request = SetUsernameRequest::parse(&body)?;
    let password = SecretString::from(request.current_password);
    match account::set_username(
        &state,
        &caller.user,
        password,
        &request.new_username,
        &caller.network,
    )
    .await
    {
        Err(services::Error::Taken(_)) => {
            Err(Problem::field("new_username", api::MSG_USERNAME_TAKEN).into())
        }
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

/// `POST /internal/me/password` — Djoser's `users/set_password/`: the caller's other sessions
/// end, theirs goes on (see `account::set_password`).
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let request = SetPasswordRequest::parse(&body)?;
    account::set_password(
        &state,
        &caller.user,
        SecretString::from(request.current_password),
        SecretString::from(request.new_password),
        &caller.network,
        Some(caller.session),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/users/activation` — Djoser's `users/activation/`: `{uid, token}` from the
/// link, or `{email, code}`; 204 once active.
pub async fn activate(
    State(state): State<AppState>,
    ClientNetwork(network): ClientNetwork,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    match Activate::parse(&body)? {
        Activate::Link { uid, token } => activation::with_token(&state, &uid, &token).await?,
        Activate::Code { email, code } => {
            activation::with_code(&state, &email, &code, &network).await?
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/users/resend-activation` — Djoser's `users/resend_activation/`: 204 whether
/// or not an account with the email waits for activation (only then is an email sent).
pub async fn resend_activation(
    State(state): State<AppState>,
    ClientNetwork(network): ClientNetwork,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let request = ResendActivationRequest::parse(&body)?;
    activation::resend(&state, &request.email, &network).await?;
    Ok(StatusCode::NO_CONTENT)
}
