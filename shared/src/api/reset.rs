//! The password reset by a code: `password/reset/`, `verify-otp/`, `confirm/`, and what the
//! edge asks the origin to send.

use serde::{Deserialize, Serialize};

use crate::form::{Form, FromForm};
use crate::validate::{Email, EMAIL_MAX_CHARS};

/// `verify-otp/` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetTokenIssued {
    pub reset_token: String,
}

/// `password/reset/` body (and the `email` of `verify-otp/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 254))]
    pub email: Email,
}

impl FromForm for ResetRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        let raw = form.required("email", EMAIL_MAX_CHARS)?;
        let email = Email::parse(&raw)
            .map_err(|m| form.error("email", m))
            .ok()?;
        Some(Self { email })
    }
}

/// `password/reset/verify-otp/` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyOtpRequest {
    pub email: String,
    /// The 6-digit code from the email.
    pub otp: String,
}

/// `password/reset/confirm/` body: `reset_token`, or `email` and `otp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetConfirmRequest {
    pub reset_token: Option<String>,
    pub email: Option<String>,
    pub otp: Option<String>,
    pub new_password: String,
    pub re_new_password: String,
}

/// Internal: the edge asks the origin to email a reset code it generated (and stored hashed
/// in its `OtpStore`). The origin sends it only if the account exists and is active, and
/// answers the same `202` either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResetCode {
    pub email: String,
    pub code: String,
}
