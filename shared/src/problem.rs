//! Every answer the API gives that is not a success, as one type: its status, headers and
//! DRF-shaped body are decided here, so the edge renders any problem with one function (and an
//! axum `IntoResponse` can be written over the same three methods).

use serde_json::{json, Value};

use crate::api::{self, FieldErrors};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// 400 `{"field": ["message", ...]}`.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 400 `{"detail": "JSON parse error - ..."}`; the message is DRF's, see
    /// [`Problem::malformed_json`].
    #[error("malformed JSON")]
    MalformedJson(String),
    /// 401, SimpleJWT's body for a refresh or verify token that fails any check.
    #[error("token not valid")]
    TokenNotValid,
    /// 401, SimpleJWT's body for a Bearer token that is not a valid access token.
    #[error("bearer token not valid")]
    BearerNotValid,
    /// 401, SimpleJWT's answer to an `Authorization: Bearer` header without exactly one token.
    #[error("bad authorization header")]
    BadAuthorizationHeader,
    /// 401, no `Authorization: Bearer` header.
    #[error("not authenticated")]
    NotAuthenticated,
    /// 401, SimpleJWT's answer to a login with a wrong password or an unknown or inactive
    /// account (one answer for all three: no enumeration).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 401 from the origin to a request without a valid edge signature, marked with
    /// `X-Edge-Signature-Refused` so the edge answers 503 and logs the misconfiguration.
    #[error("edge signature refused")]
    SignatureRefused,
    /// 403, the account lacks the role.
    #[error("permission denied")]
    PermissionDenied,
    /// 403, Djoser's answer to a valid activation link of an account already activated.
    #[error("stale activation token")]
    StaleActivation,
    /// 404 for a page number past the last (DRF's pagination).
    #[error("invalid page")]
    InvalidPage,
    /// 403, a credential or reset route reached without the client's address.
    #[error("client address unknown")]
    ClientUnknown,
    #[error("not found")]
    NotFound,
    /// 405 with `Allow`; `method` is echoed in DRF's message.
    #[error("method {method} not allowed")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// 413.
    #[error("request body too large")]
    TooLarge,
    /// 415; `content_type` is what the request declared (echoed in DRF's message).
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`; `wait_secs` is already rounded up to whole seconds.
    #[error("throttled for {wait_secs} s")]
    Throttled { wait_secs: u64 },
    /// 500; the cause goes to the log, never to the client.
    #[error("server error")]
    ServerError,
    /// 500 naming the variable at fault (never its value).
    #[error("configuration variable {variable} invalid")]
    Misconfigured { variable: &'static str },
    /// 503: a dependency (origin, limiter, code store, database) could not answer.
    #[error("service unavailable")]
    Unavailable,
    /// 503 with `Retry-After`: the password-hashing queue is full; it drains within seconds.
    #[error("overloaded, retry after {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
}

const DETAIL_BAD_AUTHORIZATION_HEADER: &str =
    "Authorization header must contain two space-delimited values";
const CODE_BAD_AUTHORIZATION_HEADER: &str = "bad_authorization_header";
const DETAIL_SIGNATURE_REFUSED: &str = "Request signature missing, invalid or expired.";
const DETAIL_INVALID_PAGE: &str = "Invalid page.";

impl Problem {
    /// DRF's answer to a body that is not JSON.
    pub fn malformed_json(error: &serde_json::Error) -> Self {
        Self::MalformedJson(api::json_parse_error_message(error))
    }

    /// One field, one message: `{"field": ["message"]}`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::single(field, message))
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::MalformedJson(_) => 400,
            Self::TokenNotValid
            | Self::BearerNotValid
            | Self::BadAuthorizationHeader
            | Self::NotAuthenticated
            | Self::InvalidCredentials
            | Self::SignatureRefused => 401,
            Self::ClientUnknown | Self::PermissionDenied | Self::StaleActivation => 403,
            Self::NotFound | Self::InvalidPage => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::TooLarge => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Throttled { .. } => 429,
            Self::ServerError | Self::Misconfigured { .. } => 500,
            Self::Unavailable | Self::Overloaded { .. } => 503,
        }
    }

    /// The headers the answer carries besides its `Content-Type`: every 401 carries
    /// `WWW-Authenticate`, as DRF's `authenticate_header` does.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Throttled { wait_secs } => vec![("Retry-After", wait_secs.to_string())],
            Self::Overloaded { retry_after_secs } => {
                vec![("Retry-After", retry_after_secs.to_string())]
            }
            Self::SignatureRefused => vec![
                ("WWW-Authenticate", api::WWW_AUTHENTICATE.to_owned()),
                (crate::signing::HEADER_SIGNATURE_REFUSED, "1".to_owned()),
            ],
            Self::MethodNotAllowed { allow, .. } => vec![("Allow", (*allow).to_owned())],
            _ if self.status() == 401 => {
                vec![("WWW-Authenticate", api::WWW_AUTHENTICATE.to_owned())]
            }
            _ => Vec::new(),
        }
    }

    /// The JSON body, in DRF's shapes.
    pub fn body(&self) -> Value {
        match self {
            Self::Validation(errors) => serde_json::to_value(errors).unwrap_or_default(),
            Self::MalformedJson(message) => api::detail(message),
            Self::TokenNotValid => api::token_not_valid(),
            Self::BearerNotValid => api::bearer_not_valid(),
            Self::BadAuthorizationHeader => json!({
                "detail": DETAIL_BAD_AUTHORIZATION_HEADER,
                "code": CODE_BAD_AUTHORIZATION_HEADER,
            }),
            Self::NotAuthenticated => api::detail(api::DETAIL_NOT_AUTHENTICATED),
            Self::InvalidCredentials => api::detail(api::DETAIL_NO_ACTIVE_ACCOUNT),
            Self::SignatureRefused => api::detail(DETAIL_SIGNATURE_REFUSED),
            Self::PermissionDenied => api::detail(api::DETAIL_PERMISSION_DENIED),
            Self::StaleActivation => api::detail(api::DETAIL_STALE_ACTIVATION),
            Self::InvalidPage => api::detail(DETAIL_INVALID_PAGE),
            Self::ClientUnknown => api::detail(api::DETAIL_CLIENT_UNKNOWN),
            Self::NotFound => api::detail(api::DETAIL_NOT_FOUND),
            Self::MethodNotAllowed { method, .. } => {
                api::detail(&format!("Method \"{method}\" not allowed."))
            }
            Self::TooLarge => api::detail(api::DETAIL_TOO_LARGE),
            Self::UnsupportedMediaType(content_type) => {
                api::detail(&api::unsupported_media_type_message(content_type))
            }
            Self::Throttled { wait_secs } => api::throttled(*wait_secs),
            Self::ServerError => api::detail(api::DETAIL_SERVER_ERROR),
            Self::Misconfigured { variable } => {
                api::detail(&format!("Server misconfigured: {variable}."))
            }
            Self::Unavailable | Self::Overloaded { .. } => api::detail(api::DETAIL_UNAVAILABLE),
        }
    }
}

impl From<FieldErrors> for Problem {
    fn from(errors: FieldErrors) -> Self {
        Self::Validation(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers = Vec<(&'static str, String)>;

    fn www_authenticate() -> Headers {
        vec![("WWW-Authenticate", "Bearer realm=\"api\"".to_owned())]
    }

    /// Each variant's status, headers and exact body (the words clients match on).
    #[test]
    fn every_problem_renders_drfs_answer() {
        let json_error = serde_json::from_str::<Value>("{").unwrap_err();
        let cases: Vec<(Problem, u16, Headers, Value)> = vec![
            (
                Problem::field("email", "Enter a valid email address."),
                400,
                vec![],
                json!({"email": ["Enter a valid email address."]}),
            ),
            (
                Problem::malformed_json(&json_error),
                400,
                vec![],
                json!({"detail": "JSON parse error - EOF while parsing an object at line 1 column 1"}),
            ),
            (
                Problem::TokenNotValid,
                401,
                www_authenticate(),
                json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
            ),
            (
                Problem::BearerNotValid,
                401,
                www_authenticate(),
                json!({
                    "detail": "Given token not valid for any token type",
                    "code": "token_not_valid",
                    "messages": [{
                        "token_class": "AccessToken",
                        "token_type": "access",
                        "message": "Token is invalid or expired",
                    }],
                }),
            ),
            (
                Problem::BadAuthorizationHeader,
                401,
                www_authenticate(),
                json!({
                    "detail": "Authorization header must contain two space-delimited values",
                    "code": "bad_authorization_header",
                }),
            ),
            (
                Problem::NotAuthenticated,
                401,
                www_authenticate(),
                json!({"detail": "Authentication credentials were not provided."}),
            ),
            (
                Problem::InvalidCredentials,
                401,
                www_authenticate(),
                json!({"detail": "No active account found with the given credentials"}),
            ),
            (
                Problem::SignatureRefused,
                401,
                vec![
                    ("WWW-Authenticate", "Bearer realm=\"api\"".to_owned()),
                    ("x-edge-signature-refused", "1".to_owned()),
                ],
                json!({"detail": "Request signature missing, invalid or expired."}),
            ),
            (
                Problem::PermissionDenied,
                403,
                vec![],
                json!({"detail": "You do not have permission to perform this action."}),
            ),
            (
                Problem::StaleActivation,
                403,
                vec![],
                json!({"detail": "Stale token for given user."}),
            ),
            (
                Problem::InvalidPage,
                404,
                vec![],
                json!({"detail": "Invalid page."}),
            ),
            (
                Problem::ClientUnknown,
                403,
                vec![],
                json!({"detail": "Could not determine the client address."}),
            ),
            (
                Problem::NotFound,
                404,
                vec![],
                json!({"detail": "Not found."}),
            ),
            (
                Problem::MethodNotAllowed {
                    method: "PUT".into(),
                    allow: "GET, PATCH, OPTIONS",
                },
                405,
                vec![("Allow", "GET, PATCH, OPTIONS".to_owned())],
                json!({"detail": "Method \"PUT\" not allowed."}),
            ),
            (
                Problem::TooLarge,
                413,
                vec![],
                json!({"detail": "Request body too large."}),
            ),
            (
                Problem::UnsupportedMediaType("text/plain".into()),
                415,
                vec![],
                json!({"detail": "Unsupported media type \"text/plain\" in request."}),
            ),
            (
                Problem::Throttled { wait_secs: 42 },
                429,
                vec![("Retry-After", "42".to_owned())],
                json!({"detail": "Request was throttled. Expected available in 42 seconds."}),
            ),
            (
                Problem::Throttled { wait_secs: 1 },
                429,
                vec![("Retry-After", "1".to_owned())],
                json!({"detail": "Request was throttled. Expected available in 1 second."}),
            ),
            (
                Problem::ServerError,
                500,
                vec![],
                json!({"detail": "A server error occurred."}),
            ),
            (
                Problem::Misconfigured {
                    variable: "ORIGIN_URL",
                },
                500,
                vec![],
                json!({"detail": "Server misconfigured: ORIGIN_URL."}),
            ),
            (
                Problem::Unavailable,
                503,
                vec![],
                json!({"detail": "Service temporarily unavailable."}),
            ),
            (
                Problem::Overloaded {
                    retry_after_secs: 1,
                },
                503,
                vec![("Retry-After", "1".to_owned())],
                json!({"detail": "Service temporarily unavailable."}),
            ),
        ];
        for (problem, status, headers, body) in cases {
            assert_eq!(problem.status(), status, "{problem:?}");
            assert_eq!(problem.headers(), headers, "{problem:?}");
            assert_eq!(problem.body(), body, "{problem:?}");
        }
    }

    #[test]
    fn field_errors_become_a_validation_problem() {
        let mut errors = FieldErrors::single("new_password", "a");
        errors.add("re_new_password", "b");
        let problem = Problem::from(errors);
        assert_eq!(problem.status(), 400);
        assert_eq!(
            problem.body(),
            json!({"new_password": ["a"], "re_new_password": ["b"]})
        );
    }
}
