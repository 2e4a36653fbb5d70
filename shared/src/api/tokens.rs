//! SimpleJWT's bodies: login (`jwt/create/`), refresh, verify and logout.

use serde::{Deserialize, Serialize};

use crate::form::{Form, FromForm};
use crate::token::MAX_TOKEN_BYTES;

/// Login answer (`jwt/create/`) and refresh answer (`jwt/refresh/`, with the rotated refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
}

/// `jwt/create/` limits: generous (SimpleJWT has none), only to bound the work per request.
pub const LOGIN_EMAIL_MAX_CHARS: usize = 320;
pub const LOGIN_PASSWORD_MAX_CHARS: usize = 1024;

/// `jwt/create/` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 320))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub password: String,
}

impl FromForm for LoginRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        let email = form.required("email", LOGIN_EMAIL_MAX_CHARS);
        let password = form.required("password", LOGIN_PASSWORD_MAX_CHARS);
        Some(Self {
            email: email?,
            password: password?,
        })
    }
}

/// `jwt/refresh/` and `logout/` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub refresh: String,
}

impl FromForm for RefreshRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        Some(Self {
            refresh: form.required("refresh", MAX_TOKEN_BYTES)?,
        })
    }
}

/// `jwt/verify/` body: an access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub token: String,
}

impl FromForm for VerifyRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        Some(Self {
            token: form.required("token", MAX_TOKEN_BYTES)?,
        })
    }
}
