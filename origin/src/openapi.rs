//! The OpenAPI 3.1 document of the public API (docs/api.md), generated from the wire types in
//! `shared::api`. `origin openapi --out edge/assets/api/schema/index.json` writes the file the
//! edge serves at `/api/schema/`; a test fails when that file is stale.
//!
//! The functions below carry no code: each one is the description of one public operation,
//! which the edge serves (the origin only implements their internal counterparts).

use shared::api::{
    ActivationRequest, DeleteMeRequest, Detail, FieldErrors, LoginRequest, Page, PatchMeRequest,
    RefreshRequest, RegisterRequest, RegisteredUser, ResendActivationRequest, ResetConfirmRequest,
    ResetRequest, ResetTokenIssued, SessionInfo, SessionsRevoked, SetPasswordRequest,
    SetUsernameRequest, TokenErrorBody, TokenPair, UserProfile, VerifyOtpRequest, VerifyRequest,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Register a user.
#[utoipa::path(post, path = "/api/auth/users/", tag = "users", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created", body = RegisteredUser,
            example = json!({"email": "ada@example.com", "username": "ada", "id": 1})),
        (status = 400, description = "Field errors: duplicate email or username, invalid email, password policy, mismatch", body = FieldErrors,
            example = json!({"email": ["user with this email address already exists."], "password": ["Password must be exactly 8 digits."]})),
        (status = 429, description = "Throttled (anon, auth)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"detail": "Request was throttled. Expected available in 42 seconds."})),
    ))]
pub fn register() {}

/// Activate a new account (Djoser), with `{uid, token}` from the emailed link or `{email, code}`
/// with its 6-digit code. Only with `SEND_ACTIVATION_EMAIL=true`.
#[utoipa::path(post, path = "/api/auth/users/activation/", tag = "users", request_body = ActivationRequest,
    responses(
        (status = 204, description = "Active"),
        (status = 400, description = "A uid naming no account or a token not for it or expired (one answer, `token`; `uid` only for a uid that is no encoded id), or a code refused (unknown email, not waiting, wrong, expired, or 5 tries spent: one answer)", body = FieldErrors,
            example = json!({"token": ["Invalid token for given user."]})),
        (status = 403, description = "A valid link of an account that no longer waits for activation", body = Detail,
            example = json!({"detail": "Stale token for given user."})),
    ))]
pub fn activation() {}

/// Send the activation email again (a new link and code). The same answer for any email.
#[utoipa::path(post, path = "/api/auth/users/resend_activation/", tag = "users", request_body = ResendActivationRequest,
    responses(
        (status = 204, description = "Accepted (mailed only to an account waiting for activation)"),
        (status = 400, description = "Malformed email", body = FieldErrors, example = json!({"email": ["Enter a valid email address."]})),
    ))]
pub fn resend_activation() {}

/// List users (admin only), 20 per page.
#[utoipa::path(get, path = "/api/auth/users/", tag = "users", security(("bearer" = [])),
    params(("page" = Option<u32>, Query, description = "Page number, from 1")),
    responses(
        (status = 200, description = "A page of users", body = Page<UserProfile>),
        (status = 401, description = "Not authenticated or token not valid", body = Detail,
            example = json!({"detail": "Authentication credentials were not provided."})),
        (status = 403, description = "Not an admin", body = Detail,
            example = json!({"detail": "You do not have permission to perform this action."})),
        (status = 404, description = "No such page", body = Detail, example = json!({"detail": "Invalid page."})),
    ))]
pub fn list_users() {}

/// Log in: a refresh and an access token.
#[utoipa::path(post, path = "/api/auth/jwt/create/", tag = "tokens", request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens", body = TokenPair),
        (status = 400, description = "Missing fields", body = FieldErrors, example = json!({"password": ["This field is required."]})),
        (status = 401, description = "Unknown email, wrong password, inactive or locked out: one answer", body = Detail,
            example = json!({"detail": "No active account found with the given credentials"})),
        (status = 429, description = "Throttled (anon, auth)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn jwt_create() {}

/// Rotate a refresh token: a new pair; the old refresh token is spent.
#[utoipa::path(post, path = "/api/auth/jwt/refresh/", tag = "tokens", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens (rotated)", body = TokenPair),
        (status = 401, description = "Invalid, expired, reused or revoked", body = TokenErrorBody,
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
        (status = 429, description = "Throttled (anon, auth)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn jwt_refresh() {}

/// Check an access or refresh token (a refresh token also against its revocation).
#[utoipa::path(post, path = "/api/auth/jwt/verify/", tag = "tokens", request_body = VerifyRequest,
    responses(
        (status = 200, description = "Valid", body = Object, example = json!({})),
        (status = 400, description = "A refresh token that was rotated out, logged out or revoked (or a malformed body)", body = FieldErrors,
            example = json!({"non_field_errors": ["Token is blacklisted"]})),
        (status = 401, description = "Not valid", body = TokenErrorBody,
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
        (status = 429, description = "Throttled (anon)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn jwt_verify() {}

/// Log out: revokes the token family of this login.
#[utoipa::path(post, path = "/api/auth/logout/", tag = "tokens", request_body = RefreshRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not authenticated (`{\"detail\"}`), or the refresh token is not valid (`{\"detail\", \"code\": \"token_not_valid\"}`)", body = Detail),
    ))]
pub fn logout() {}

/// The current user.
#[utoipa::path(get, path = "/api/auth/me/", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = UserProfile),
        (status = 401, description = "Not authenticated or token not valid", body = Detail,
            example = json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"})),
    ))]
pub fn me() {}

/// Update the current user's username and names; other fields are read-only.
#[utoipa::path(patch, path = "/api/auth/me/", tag = "users", request_body = PatchMeRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated profile", body = UserProfile),
        (status = 400, description = "Field errors", body = FieldErrors,
            example = json!({"username": ["A user with that username already exists."]})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn patch_me() {}

/// Djoser's name for `GET /api/auth/me/`: the same answer.
#[utoipa::path(get, path = "/api/auth/users/me/", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = UserProfile),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn users_me() {}

/// Djoser's name for `PATCH /api/auth/me/`: the same rules and answer.
#[utoipa::path(patch, path = "/api/auth/users/me/", tag = "users", request_body = PatchMeRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated profile", body = UserProfile),
        (status = 400, description = "Field errors", body = FieldErrors),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn patch_users_me() {}

/// Delete the current user's account (Djoser), with its password. Every session ends; what is
/// kept (the audit log, detached from the account) is in docs/security.md. The email is free
/// for a new sign-up at once.
#[utoipa::path(delete, path = "/api/auth/me/", tag = "users", request_body = DeleteMeRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Wrong or missing current password (also while the network is locked out)", body = FieldErrors,
            example = json!({"current_password": ["Invalid password."]})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn delete_me() {}

/// Djoser's name for `DELETE /api/auth/me/`: the same rules and answer.
#[utoipa::path(delete, path = "/api/auth/users/me/", tag = "users", request_body = DeleteMeRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Wrong or missing current password", body = FieldErrors,
            example = json!({"current_password": ["Invalid password."]})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn delete_users_me() {}

/// Change the current user's username (Djoser), with its password. Tokens stay valid.
#[utoipa::path(post, path = "/api/auth/users/set_username/", tag = "users", request_body = SetUsernameRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Wrong current password (also while the network is locked out), or the new username is invalid or taken", body = FieldErrors,
            example = json!({"new_username": ["A user with that username already exists."]})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn set_username() {}

/// Change the current user's password (Djoser), with the current one. The policy is the
/// sign-up's. Every other session of the account ends (its refresh and access tokens are refused
/// at once; only `/jwt/verify/` accepts such an access token until it expires); the caller's
/// session goes on.
#[utoipa::path(post, path = "/api/auth/users/set_password/", tag = "users", request_body = SetPasswordRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; the other sessions ended"),
        (status = 400, description = "Wrong current password (also while the network is locked out), the new password fails the policy, or the two new passwords differ", body = FieldErrors,
            example = json!({"current_password": ["Invalid password."]})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn set_password() {}

/// The current user's live sessions (one per login), the most recently used first; `current`
/// marks the one of the access token that asks.
#[utoipa::path(get, path = "/api/auth/sessions/", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = Vec<SessionInfo>,
            example = json!([{"id": "0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e", "created": "2026-12-01T09:30:00.000000Z",
                "last_used": "2026-12-03T08:12:44.120000Z", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                "client_network": "203.0.113.7", "current": true}])),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn sessions() {}

/// End one of the current user's sessions (the caller's own too, as a logout). Its refresh and
/// access tokens are refused at once (only `/jwt/verify/` accepts such an access token until it
/// expires).
#[utoipa::path(delete, path = "/api/auth/sessions/{id}/", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "A session's `id` from `GET /api/auth/sessions/`")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
        (status = 404, description = "Not a live session of the caller's (malformed, unknown, another account's, or ended)", body = Detail,
            example = json!({"detail": "Not found."})),
    ))]
pub fn revoke_session() {}

/// End every session of the current user but the caller's.
#[utoipa::path(post, path = "/api/auth/sessions/revoke-others/", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "How many ended", body = SessionsRevoked, example = json!({"revoked": 2})),
        (status = 401, description = "Not authenticated or token not valid", body = Detail),
    ))]
pub fn revoke_other_sessions() {}

/// Ask for a reset code by email. The answer is the same whether the account exists.
#[utoipa::path(post, path = "/api/auth/password/reset/", tag = "password reset", request_body = ResetRequest,
    responses(
        (status = 200, description = "Accepted", body = Detail,
            example = json!({"detail": "If an account exists for this email, a code has been sent."})),
        (status = 400, description = "Malformed email", body = FieldErrors, example = json!({"email": ["Enter a valid email address."]})),
        (status = 429, description = "Throttled (anon, password_reset per address and per email)", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn reset_request() {}

/// Exchange the emailed code (once) for a reset token valid 15 minutes.
#[utoipa::path(post, path = "/api/auth/password/reset/verify-otp/", tag = "password reset", request_body = VerifyOtpRequest,
    responses(
        (status = 200, description = "Reset token", body = ResetTokenIssued),
        (status = 400, description = "Wrong, expired, used, or burned after 5 tries", body = FieldErrors,
            example = json!({"otp": ["Invalid or expired code."]})),
        (status = 429, description = "Throttled (anon, password_reset)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn reset_verify_otp() {}

/// Set a new password with a reset token (or with email and code).
#[utoipa::path(post, path = "/api/auth/password/reset/confirm/", tag = "password reset", request_body = ResetConfirmRequest,
    responses(
        (status = 204, description = "Password changed; every session of the user ended"),
        (status = 400, description = "Field errors", body = FieldErrors,
            example = json!({"reset_token": ["Invalid or expired reset token."]})),
        (status = 429, description = "Throttled (anon, password_reset)", body = Detail, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub fn reset_confirm() {}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    responses((status = 200, description = "JWKS", body = Object,
        example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "alg": "EdDSA", "use": "sig"}]}))))]
pub fn jwks() {}

/// This document.
#[utoipa::path(get, path = "/api/schema/", tag = "docs", responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub fn schema() {}

/// Swagger UI (assets served locally).
#[utoipa::path(get, path = "/swagger/", tag = "docs", responses((status = 200, description = "HTML", content_type = "text/html")))]
pub fn swagger() {}

/// ReDoc (assets served locally).
#[utoipa::path(get, path = "/redoc/", tag = "docs", responses((status = 200, description = "HTML", content_type = "text/html")))]
pub fn redoc() {}

/// Answers every operation can give besides its own, added to each one so the document lists
/// every status the edge really sends (Schemathesis checks this): 400 with `{"detail"}` for a
/// body that is not JSON (beside the field errors), 413 and 415 for bodies, 429 when
/// throttled, 503 when the origin or the rate limiter cannot answer.
struct CommonResponses;

fn detail_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Detail")))
                .build(),
        )
        .build()
        .into()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::OneOfBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/auth/") {
                continue;
            }
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    let field_or_detail = OneOfBuilder::new()
                        .item(Ref::from_schema_name("FieldErrors"))
                        .item(Ref::from_schema_name("Detail"));
                    let description = match responses.get("400") {
                        Some(RefOr::T(existing)) => format!(
                            "{}; or `{{\"detail\"}}` when the body is not JSON",
                            existing.description
                        ),
                        _ => "Field errors (missing or blank field, too long); or `{\"detail\"}` when the body is not JSON".to_owned(),
                    };
                    let example = match responses.get("400") {
                        Some(RefOr::T(existing)) => existing
                            .content
                            .get("application/json")
                            .and_then(|c| c.example.clone()),
                        _ => None,
                    };
                    let mut content = ContentBuilder::new().schema(Some(field_or_detail));
                    if let Some(example) = example {
                        content = content.example(Some(example));
                    }
                    responses.insert(
                        "400".into(),
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/json", content.build())
                            .build()
                            .into(),
                    );
                    responses.insert("413".into(), detail_response("Body larger than 64 KiB"));
                    responses.insert(
                        "415".into(),
                        detail_response("Body missing or not `application/json`"),
                    );
                }
                responses
                    .entry("429".into())
                    .or_insert_with(|| detail_response("Throttled"));
                responses.entry("503".into()).or_insert_with(|| {
                    detail_response(
                        "The origin or the rate limiter cannot answer (`auth` and `password_reset` fail closed)",
                    )
                });
            }
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Auth API", description = "JWT authentication API, wire-compatible with Django REST Framework + Djoser + SimpleJWT. \
        Every error body is JSON; every 401 carries `WWW-Authenticate: Bearer realm=\"api\"`; every response carries `X-Request-Id`."),
    paths(register, activation, resend_activation, list_users, jwt_create, jwt_refresh, jwt_verify, logout, me, patch_me, users_me, patch_users_me, delete_me, delete_users_me, set_username,
          set_password, sessions, revoke_session, revoke_other_sessions, reset_request, reset_verify_otp, reset_confirm, jwks, schema, swagger, redoc),
    components(schemas(FieldErrors, Detail, TokenErrorBody)),
    modifiers(&BearerAuth, &CommonResponses),
)]
struct ApiDoc;

/// The document as written to the schema file: pretty JSON and a final newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
