//! The origin's one error type, turned into a DRF-shaped response in exactly one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::{self, FieldErrors};

use crate::services;
use crate::store::users::Taken;

/// `Retry-After` of a 503 for a full hashing queue.
const OVERLOADED_RETRY_AFTER_SECS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A refresh/verify/logout/reset token that fails any check.
    #[error("token not valid")]
    TokenNotValid,
    /// The forwarded user no longer matches the access token (deactivated, `ver` outdated).
    #[error("bearer token not valid")]
    BearerNotValid,
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("permission denied")]
    PermissionDenied,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("bad edge signature")]
    BadSignature,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// The password-hashing queue is full (ARGON2_QUEUE_DEPTH): answered at once with 503 and
    /// `Retry-After`.
    #[error("password hashing queue full")]
    Overloaded,
    /// The database is unreachable or the pool is exhausted.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<services::Error> for ApiError {
    fn from(e: services::Error) -> Self {
        use services::Error as E;
        match e {
            E::InvalidCredentials => Self::InvalidCredentials,
            E::RefreshTokenNotValid => Self::TokenNotValid,
            // SimpleJWT's blacklist answer.
            E::RefreshTokenRevoked => Self::Validation(FieldErrors::single(
                "non_field_errors",
                api::MSG_TOKEN_BLACKLISTED,
            )),
            E::StaleAccessToken => Self::BearerNotValid,
            E::NotAdmin => Self::PermissionDenied,
            E::NoSuchPage => Self::NotFound("Invalid page."),
            E::ResetTokenNotValid => Self::Validation(FieldErrors::single(
                "reset_token",
                api::MSG_RESET_TOKEN_INVALID,
            )),
            E::Taken(taken) => Self::Validation(taken_errors(&taken)),
            E::NewPasswordRefused(messages) => {
                let mut errors = FieldErrors::default();
                errors.extend("new_password", messages);
                Self::Validation(errors)
            }
            E::Overloaded => Self::Overloaded,
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
        let (status, body) = match &self {
            Self::Validation(errors) => (
                StatusCode::BAD_REQUEST,
                serde_json::to_value(errors).unwrap_or_default(),
            ),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, api::detail(message)),
            Self::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                api::detail(api::DETAIL_NO_ACTIVE_ACCOUNT),
            ),
            Self::TokenNotValid => (StatusCode::UNAUTHORIZED, api::token_not_valid()),
            Self::BearerNotValid => (StatusCode::UNAUTHORIZED, api::bearer_not_valid()),
            Self::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                api::detail(api::DETAIL_NOT_AUTHENTICATED),
            ),
            Self::PermissionDenied => (
                StatusCode::FORBIDDEN,
                api::detail(api::DETAIL_PERMISSION_DENIED),
            ),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, api::detail(what)),
            Self::BadSignature => (
                StatusCode::UNAUTHORIZED,
                api::detail("Request signature missing, invalid or expired."),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                api::detail(api::DETAIL_TOO_LARGE),
            ),
            Self::UnsupportedMediaType(got) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                api::detail(&api::unsupported_media_type_message(got)),
            ),
            Self::Overloaded => {
                tracing::warn!("argon2 queue full; request refused");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    api::detail(api::DETAIL_UNAVAILABLE),
                )
            }
            Self::Unavailable(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "dependency unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    api::detail(api::DETAIL_UNAVAILABLE),
                )
            }
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    api::detail(api::DETAIL_SERVER_ERROR),
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::BadSignature) {
            response.headers_mut().insert(
                shared::signing::HEADER_SIGNATURE_REFUSED,
                header::HeaderValue::from_static("1"),
            );
        }
        if matches!(self, Self::Overloaded) {
            // The queue drains in well under a second; tell clients when to come back.
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(api::WWW_AUTHENTICATE),
            );
        }
        response
    }
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
        assert_eq!(retry_after.as_deref(), Some(OVERLOADED_RETRY_AFTER_SECS));
        assert_eq!(body, api::detail(api::DETAIL_UNAVAILABLE));
        let (status, _, body) = reply(Error::Unavailable(anyhow::anyhow!("secret cause"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, api::detail(api::DETAIL_UNAVAILABLE));
        let (status, _, body) = reply(Error::Internal(anyhow::anyhow!("secret cause"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, api::detail(api::DETAIL_SERVER_ERROR));
    }
}
