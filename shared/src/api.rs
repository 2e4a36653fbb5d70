//! Wire types: response bodies of the public API (DRF/Djoser/SimpleJWT shapes) and of the
//! internal edge→origin API, plus the one builder per DRF error shape.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::form::{Form, FromForm};
use crate::token::MAX_TOKEN_BYTES;
use crate::validate::{
    Email, Username, EMAIL_MAX_CHARS, NAME_MAX_CHARS, PASSWORD_MAX_CHARS, USERNAME_MAX_CHARS,
};

pub const DETAIL_NO_ACTIVE_ACCOUNT: &str = "No active account found with the given credentials";
pub const DETAIL_TOKEN_INVALID: &str = "Token is invalid or expired";
pub const DETAIL_NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
pub const DETAIL_NO_TOKEN_TYPE: &str = "Given token not valid for any token type";
pub const DETAIL_PERMISSION_DENIED: &str = "You do not have permission to perform this action.";
pub const DETAIL_RESET_REQUESTED: &str =
    "If an account exists for this email, a code has been sent.";
pub const DETAIL_UNAVAILABLE: &str = "Service temporarily unavailable.";
pub const DETAIL_NOT_FOUND: &str = "Not found.";
/// A request to a credential or reset endpoint without `CF-Connecting-IP` (it did not come
/// through Cloudflare's edge): refused, see `client::throttle_identity`.
pub const DETAIL_CLIENT_UNKNOWN: &str = "Could not determine the client address.";
pub const MSG_EMAIL_TAKEN: &str = "user with this email address already exists.";
pub const MSG_USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const MSG_OTP_INVALID: &str = "Invalid or expired code.";
/// Djoser's activation answers.
pub const MSG_ACTIVATION_UID_INVALID: &str = "Invalid user id or user doesn't exist.";
pub const MSG_ACTIVATION_TOKEN_INVALID: &str = "Invalid token for given user.";
pub const DETAIL_STALE_ACTIVATION: &str = "Stale token for given user.";
/// Djoser's answer to a wrong `current_password`.
pub const MSG_INVALID_PASSWORD: &str = "Invalid password.";
/// SimpleJWT's `TokenVerifySerializer` with the blacklist app: a refresh token that was rotated
/// out, logged out or revoked (`non_field_errors`, 400).
pub const MSG_TOKEN_BLACKLISTED: &str = "Token is blacklisted";
pub const MSG_RESET_TOKEN_INVALID: &str = "Invalid or expired reset token.";
pub const CODE_TOKEN_NOT_VALID: &str = "token_not_valid";
/// Every 401 carries this, as DRF's `authenticate_header` does.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";

pub use crate::form::FieldErrors;

/// Request bodies above this are refused with 413 (docs/api.md: 64 KiB), by the edge and again
/// by the origin.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DETAIL_TOO_LARGE: &str = "Request body too large.";
pub const DETAIL_SERVER_ERROR: &str = "A server error occurred.";

/// DRF's 415 message (its `JSONParser` is the only parser).
pub fn unsupported_media_type_message(content_type: &str) -> String {
    format!("Unsupported media type \"{content_type}\" in request.")
}

/// The 400 message for a body the client did not send whole (cut short of its
/// `Content-Length`, or the connection reset mid-body): in the shape of DRF's parse errors.
pub const MSG_BODY_NOT_WHOLE: &str =
    "JSON parse error - the request body ended before it was whole";

/// DRF's 400 message for a body that is not JSON.
pub fn json_parse_error_message(error: &serde_json::Error) -> String {
    format!("JSON parse error - {error}")
}

/// `{"detail": "..."}`.
pub fn detail(message: &str) -> Value {
    json!({ "detail": message })
}

/// SimpleJWT's body for a refresh or verify token that fails any check.
pub fn token_not_valid() -> Value {
    json!({ "detail": DETAIL_TOKEN_INVALID, "code": CODE_TOKEN_NOT_VALID })
}

/// SimpleJWT's body for a Bearer token that is not a valid access token.
pub fn bearer_not_valid() -> Value {
    json!({
        "detail": DETAIL_NO_TOKEN_TYPE,
        "code": CODE_TOKEN_NOT_VALID,
        "messages": [{
            "token_class": "AccessToken",
            "token_type": "access",
            "message": DETAIL_TOKEN_INVALID,
        }],
    })
}

/// DRF's throttled body; `wait` is already rounded up to whole seconds.
pub fn throttled(wait: u64) -> Value {
    let unit = if wait == 1 { "second" } else { "seconds" };
    detail(&format!(
        "Request was throttled. Expected available in {wait} {unit}."
    ))
}

/// `201` body of registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredUser {
    pub email: String,
    pub username: String,
    pub id: i64,
}

/// Login answer (`jwt/create/`) and refresh answer (`jwt/refresh/`, with the rotated refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
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

/// DRF's `PageNumberPagination` envelope. `next`/`previous` are absolute URLs at the edge;
/// the origin gives them as paths with a query (`/api/auth/users/?page=2`) since only the edge
/// knows the public host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// `verify-otp/` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetTokenIssued {
    pub reset_token: String,
}

/// `jwt/create/` limits: generous (SimpleJWT has none), only to bound the work per request.
pub const LOGIN_EMAIL_MAX_CHARS: usize = 320;
pub const LOGIN_PASSWORD_MAX_CHARS: usize = 1024;

// The request bodies below read themselves (`FromForm`, DRF's field rules) and derive their
// OpenAPI schema from the same struct. The schema's `max_length`s are literals (the derive takes
// no constants); `origin/tests/openapi.rs` checks every one against what `parse` accepts.

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

/// One live session (a login's refresh family) in `GET sessions/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// What `DELETE sessions/{id}/` takes.
    pub id: String,
    /// When the login happened (ISO 8601, UTC).
    pub created: String,
    /// The last refresh (the login itself until the first one).
    pub last_used: String,
    /// The `User-Agent` the login came with (as the client stated it; `""` when none).
    pub user_agent: String,
    /// The client network the login came from, as the edge keys it (an IPv4 address or an IPv6
    /// prefix; `""` when unknown).
    pub client_network: String,
    /// Whether this is the session of the access token that asked.
    pub current: bool,
}

/// `sessions/revoke-others/` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsRevoked {
    /// How many sessions ended.
    pub revoked: u64,
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

/// `{"detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detail {
    pub detail: String,
}

/// SimpleJWT's token error: `{"detail": "...", "code": "token_not_valid"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenErrorBody {
    pub detail: String,
    pub code: String,
}

/// Internal: the edge asks the origin to email a reset code it generated (and stored hashed
/// in its `OtpStore`). The origin sends it only if the account exists and is active, and
/// answers the same `202` either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResetCode {
    pub email: String,
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_bodies_are_drfs_words() {
        // What DRF answers (clients match on these); edge and origin both render them from here.
        assert_eq!(
            detail(&unsupported_media_type_message("text/plain")),
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        );
        let e = serde_json::from_str::<Value>("{").unwrap_err();
        assert_eq!(
            json_parse_error_message(&e),
            "JSON parse error - EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(DETAIL_TOO_LARGE, "Request body too large.");
        assert_eq!(DETAIL_SERVER_ERROR, "A server error occurred.");
        assert_eq!(MAX_BODY_BYTES, 65_536);
    }

    #[test]
    fn throttled_message_uses_drf_plural_rule() {
        assert_eq!(
            throttled(1),
            json!({"detail": "Request was throttled. Expected available in 1 second."})
        );
        assert_eq!(
            throttled(60),
            json!({"detail": "Request was throttled. Expected available in 60 seconds."})
        );
    }

    #[test]
    fn field_errors_accumulate_per_field() {
        let mut e = FieldErrors::single("password", "a");
        e.extend("password", ["b".to_owned()]);
        e.add("email", "c");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"email": ["c"], "password": ["a", "b"]})
        );
        assert_eq!(
            e.get("password"),
            Some(&["a".to_owned(), "b".to_owned()][..])
        );
    }

    #[test]
    fn bearer_not_valid_matches_simplejwt() {
        let body = bearer_not_valid();
        assert_eq!(body["detail"], DETAIL_NO_TOKEN_TYPE);
        assert_eq!(body["code"], CODE_TOKEN_NOT_VALID);
        assert_eq!(body["messages"][0]["token_type"], "access");
    }
}
