//! The origin's one error type, turned into a DRF-shaped response in exactly one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::{self, FieldErrors};
use shared::problem::Problem;

use crate::services;
use crate::store::users::Taken;

/// `Retry-After` of a 503 for a full hashing queue: it drains in well under a second.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the client is told, and all it is told: status, headers and body come from
    /// `shared::problem`, the rendering the edge uses too.
    #[error("{0}")]
    Problem(Problem),
    /// The database is unreachable or the pool is exhausted: 503, the cause only in the log.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A bug or an unexpected failure: 500, the cause only in the log.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::Problem(Problem::Validation(errors))
    }
}

impl From<services::Error> for ApiError {
    fn from(e: services::Error) -> Self {
        use services::Error as E;
        match e {
            E::InvalidCredentials => Problem::InvalidCredentials.into(),
            E::CurrentPasswordInvalid => {
                Problem::field("current_password", api::MSG_INVALID_PASSWORD).into()
            }
            E::RefreshTokenNotValid => Problem::TokenNotValid.into(),
            // SimpleJWT's blacklist answer.
            E::RefreshTokenRevoked => {
                Problem::field("non_field_errors", api::MSG_TOKEN_BLACKLISTED).into()
            }
            E::StaleAccessToken => Problem::BearerNotValid.into(),
            E::NotAdmin => Problem::PermissionDenied.into(),
            E::NoSuchPage => Problem::InvalidPage.into(),
            E::NoSuchSession => Problem::NotFound.into(),
            E::ActivationUidInvalid => {
                Problem::field("uid", api::MSG_ACTIVATION_UID_INVALID).into()
            }
            E::ActivationTokenInvalid => {
                Problem::field("token", api::MSG_ACTIVATION_TOKEN_INVALID).into()
            }
            E::ActivationStale => Problem::StaleActivation.into(),
            E::ActivationCodeInvalid => Problem::field("code", api::MSG_OTP_INVALID).into(),
            E::ResetTokenNotValid => {
                Problem::field("reset_token", api::MSG_RESET_TOKEN_INVALID).into()
            }
            E::Taken(taken) => taken_errors(&taken).into(),
            E::NewPasswordRefused(messages) => {
                let mut errors = FieldErrors::default();
                errors.extend("new_password", messages);
                errors.into()
            }
            E::Overloaded => Problem::Overloaded {
                retry_after_secs: OVERLOADED_RETRY_AFTER_SECS,
            }
            .into(),
            E::Unavailable(cause) => Self::Unavailable(cause),
            E::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// Djoser's messages for an email or username already in use.
fn taken_errors(taken: &[Taken]) -> FieldErrors {
    let mut errors = FieldErrors::default();
    for t in taken {
        match t {
            Taken::Email => errors.add("email", api::MSG_EMAIL_TAKEN),
            Taken::Username => errors.add("username", api::MSG_USERNAME_TAKEN),
        }
    }
    errors
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::Problem(problem) => {
                if let Problem::Overloaded { .. } = problem {
                    tracing::warn!("argon2 queue full; request refused");
                }
                problem
            }
            Self::Unavailable(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "dependency unavailable");
                Problem::Unavailable
            }
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                Problem::ServerError
            }
        };
        render(&problem)
    }
}

/// The one rendering of a [`Problem`] at the origin.
pub fn render(problem: &Problem) -> Response {
    let status =
        StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(problem.body())).into_response();
    for (name, value) in problem.headers() {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use serde_json::{json, Value};

    use super::*;
    use crate::services::Error;

    async fn reply(e: Error) -> (StatusCode, Option<String>, Value) {
        let response = ApiError::from(e).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    /// The wire shapes of the services' refusals, written out as clients see them (DRF,
    /// Djoser and SimpleJWT words), so a change of the mapping shows here.
    #[tokio::test]
    async fn service_refusals_answer_the_drf_bodies() {
        let cases = [
            (
                Error::InvalidCredentials,
                StatusCode::UNAUTHORIZED,
                json!({"detail": "No active account found with the given credentials"}),
            ),
            (
                Error::RefreshTokenNotValid,
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
            ),
            (
                Error::RefreshTokenRevoked,
                StatusCode::BAD_REQUEST,
                json!({"non_field_errors": ["Token is blacklisted"]}),
            ),
            (
                Error::StaleAccessToken,
                StatusCode::UNAUTHORIZED,
                api::bearer_not_valid(),
            ),
            (
                Error::NotAdmin,
                StatusCode::FORBIDDEN,
                json!({"detail": "You do not have permission to perform this action."}),
            ),
            (
                Error::NoSuchPage,
                StatusCode::NOT_FOUND,
                json!({"detail": "Invalid page."}),
            ),
            (
                Error::ResetTokenNotValid,
                StatusCode::BAD_REQUEST,
                json!({"reset_token": ["Invalid or expired reset token."]}),
            ),
            (
                Error::Taken(vec![Taken::Email, Taken::Username]),
                StatusCode::BAD_REQUEST,
                json!({
                    "email": ["user with this email address already exists."],
                    "username": ["A user with that username already exists."],
                }),
            ),
            (
                Error::CurrentPasswordInvalid,
                StatusCode::BAD_REQUEST,
                json!({"current_password": ["Invalid password."]}),
            ),
            (
                Error::NewPasswordRefused(vec!["one".into(), "two".into()]),
                StatusCode::BAD_REQUEST,
                json!({"new_password": ["one", "two"]}),
            ),
        ];
        for (error, status, body) in cases {
            let name = format!("{error:?}");
            let (got_status, _, got_body) = reply(error).await;
            assert_eq!((got_status, got_body), (status, body), "{name}");
        }
    }

    #[tokio::test]
    async fn failures_are_503_or_500_without_their_cause() {
        let (status, retry_after, body) = reply(Error::Overloaded).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body, api::detail(api::DETAIL_UNAVAILABLE));
        let (status, _, body) = reply(Error::Unavailable(anyhow::anyhow!("secret cause"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, api::detail(api::DETAIL_UNAVAILABLE));
        let (status, _, body) = reply(Error::Internal(anyhow::anyhow!("secret cause"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, api::detail(api::DETAIL_SERVER_ERROR));
    }
}
