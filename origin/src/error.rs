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
