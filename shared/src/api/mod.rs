//! Wire types: response bodies of the public API (DRF/Djoser/SimpleJWT shapes) and of the
//! internal edge→origin API, plus the one builder per DRF error shape.
//!
//! The request bodies read themselves (`FromForm`, DRF's field rules) and derive their OpenAPI
//! schema from the same struct. The schema's `max_length`s are literals (the derive takes no
//! constants); `origin/tests/openapi.rs` checks every one against what `parse` accepts. They live
//! by resource: `users`, `tokens`, `sessions`, `reset`; this module holds the messages and the
//! bodies every resource shares.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod reset;
mod sessions;
mod tokens;
mod users;

pub use reset::*;
pub use sessions::*;
pub use tokens::*;
pub use users::*;

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
