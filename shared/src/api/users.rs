//! The account's bodies: registration, activation, the profile (`me/`) and Djoser's
//! `set_username/`, `set_password/`.

use serde::{Deserialize, Serialize};

use super::reset::ResetRequest;
use super::tokens::LOGIN_PASSWORD_MAX_CHARS;
use crate::form::{Form, FromForm};
use crate::validate::{
    Email, Username, EMAIL_MAX_CHARS, NAME_MAX_CHARS, PASSWORD_MAX_CHARS, USERNAME_MAX_CHARS,
};

/// `201` body of registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredUser {
    pub email: String,
    pub username: String,
    pub id: i64,
}

/// The user as `me/` and the admin list show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    /// ISO 8601 in UTC with microseconds, as DRF renders a `DateTimeField`.
    pub date_joined: String,
}

/// `users/` (register) body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 254))]
    pub email: Email,
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 150))]
    pub username: Username,
    /// Policy `seed` (default): exactly 8 digits, not common, not similar to username/email.
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub password: String,
    /// When given, must equal `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128, nullable = false))]
    pub re_password: Option<String>,
}

impl FromForm for RegisterRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        let email = form.required("email", EMAIL_MAX_CHARS);
        let username = form.required("username", USERNAME_MAX_CHARS);
        let password = form.required("password", PASSWORD_MAX_CHARS);
        let email =
            email.and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
        let username = username.and_then(|raw| {
            Username::parse(&raw)
                .map_err(|m| form.error("username", m))
                .ok()
        });
        let re_password = form.optional("re_password", PASSWORD_MAX_CHARS, false);
        Some(Self {
            email: email?,
            username: username?,
            password: password?,
            re_password,
        })
    }
}

/// `DELETE users/me/` (and `me/`) body: Djoser's `current_password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteMeRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: String,
}

impl FromForm for DeleteMeRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        Some(Self {
            current_password: form.required("current_password", LOGIN_PASSWORD_MAX_CHARS)?,
        })
    }
}

/// `users/set_username/` body (Djoser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetUsernameRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 150))]
    pub new_username: Username,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: String,
}

impl FromForm for SetUsernameRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        let new_username = form
            .required("new_username", USERNAME_MAX_CHARS)
            .and_then(|raw| {
                Username::parse(&raw)
                    .map_err(|m| form.error("new_username", m))
                    .ok()
            });
        let current_password = form.required("current_password", LOGIN_PASSWORD_MAX_CHARS);
        Some(Self {
            new_username: new_username?,
            current_password: current_password?,
        })
    }
}

/// `users/set_password/` body (Djoser's `SetPasswordRetypeSerializer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetPasswordRequest {
    /// Policy `seed` (default): exactly 8 digits, not common, not similar to username/email.
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub new_password: String,
    /// Must equal `new_password`.
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub re_new_password: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub current_password: String,
}

impl FromForm for SetPasswordRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        let new_password = crate::form::new_password_pair(form);
        let current_password = form.required("current_password", LOGIN_PASSWORD_MAX_CHARS);
        let new_password = new_password?;
        Some(Self {
            re_new_password: new_password.clone(),
            new_password,
            current_password: current_password?,
        })
    }
}

/// `PATCH me/` body; `role`, `email`, `id` and `is_active` are read-only and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatchMeRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, max_length = 150, nullable = false)
    )]
    pub username: Option<Username>,
    /// May be blank.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 150, nullable = false))]
    pub first_name: Option<String>,
    /// May be blank.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 150, nullable = false))]
    pub last_name: Option<String>,
}

impl FromForm for PatchMeRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        Some(Self {
            username: form
                .optional("username", USERNAME_MAX_CHARS, false)
                .and_then(|raw| {
                    Username::parse(&raw)
                        .map_err(|m| form.error("username", m))
                        .ok()
                }),
            first_name: form.optional("first_name", NAME_MAX_CHARS, true),
            last_name: form.optional("last_name", NAME_MAX_CHARS, true),
        })
    }
}

/// `users/resend_activation/` body (Djoser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResendActivationRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 254))]
    pub email: Email,
}

impl FromForm for ResendActivationRequest {
    fn read(form: &mut Form<'_>) -> Option<Self> {
        ResetRequest::read(form).map(|ResetRequest { email }| Self { email })
    }
}

/// `users/activation/` body: Djoser's `{uid, token}` from the link, or `{email, code}` with the
/// code of the same email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivationRequest {
    pub uid: Option<String>,
    pub token: Option<String>,
    pub email: Option<String>,
    /// The 6-digit code.
    pub code: Option<String>,
}

/// What an activation body asks, read with DRF's field rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activate {
    Link {
        uid: String,
        token: String,
    },
    Code {
        email: Email,
        code: crate::otp::OtpCode,
    },
}

/// Longest `uid` and `token` read (a base64 id is ≤ 28 characters, a token ≤ 53).
pub const ACTIVATION_FIELD_MAX_CHARS: usize = 128;

impl FromForm for Activate {
    /// `uid` or `token` given: both are required (the link's form); otherwise `email` and
    /// `code` are.
    fn read(form: &mut Form<'_>) -> Option<Self> {
        if form.has("uid") || form.has("token") {
            let uid = form.required("uid", ACTIVATION_FIELD_MAX_CHARS);
            let token = form.required("token", ACTIVATION_FIELD_MAX_CHARS);
            return Some(Self::Link {
                uid: uid?,
                token: token?,
            });
        }
        let email = form.required("email", EMAIL_MAX_CHARS);
        let code = form.required("code", crate::otp::OTP_DIGITS);
        let email =
            email.and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
        let code = code.and_then(|raw| {
            crate::otp::OtpCode::parse(&raw).or_else(|| {
                form.error("code", "Enter a 6-digit code.");
                None
            })
        });
        Some(Self::Code {
            email: email?,
            code: code?,
        })
    }
}
