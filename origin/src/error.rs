//! The origin's one error type, turned into a DRF-shaped response in exactly one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::{self, FieldErrors};

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
    /// `Retry-After`, rather than queueing work no client will wait for.
    #[error("password hashing queue full")]
    Overloaded,
    /// The database is unreachable or the pool is exhausted.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        // Connection lost, or the server shutting down / restarting (SQLSTATE classes 08 and
        // 57P): a transient outage (503), not a bug (500).
        let transient = e.is_closed()
            || e.code().is_some_and(|c| {
                let code = c.code();
                code.starts_with("08") || code.starts_with("57P")
            });
        if transient {
            Self::Unavailable(e.into())
        } else {
            Self::Internal(e.into())
        }
    }
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
