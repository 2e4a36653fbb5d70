//! One handler per route. Each one authenticates, throttles, validates, then answers at the
//! edge or forwards to the origin.

use std::rc::Rc;

use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use shared::api::{self, FieldErrors};
use shared::client;
use shared::form::Form;
use shared::internal::InternalRoute;
use shared::otp::OtpCode;
use shared::signing::Identity;
use shared::throttle::Scope;
use shared::token::{TokenKind, MAX_TOKEN_BYTES};
use shared::validate::{Email, EMAIL_MAX_CHARS};
use worker::{Context, Date, Env, Method, Request, Response, Result};

use crate::body::read_json;
use crate::config::Config;
use crate::cors;
use crate::limiter::{self, Verdict};
use crate::origin::{self, OriginReply};
use crate::otp_store;
use crate::reply;
use crate::routes::{resolve, Miss, Route};

/// Reset tokens live 15 minutes.
const RESET_TOKEN_TTL_SECS: i64 = 900;

fn now() -> i64 {
    (Date::now().as_millis() / 1_000) as i64
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    shared::hex::encode(&buf)
}

/// The client's `X-Request-Id` when well-formed (1–64 of `[A-Za-z0-9._-]`), else a new one.
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get("X-Request-Id")
        .ok()
        .flatten()
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .unwrap_or_else(|| random_hex(16))
}

/// Adds the request id and CORS headers to every answer; an error inside a handler becomes a
/// JSON 500, never a Worker exception page.
pub fn finish(
    response: Result<Response>,
    request_id: &str,
    config: Option<&Config>,
    origin: Option<&str>,
) -> Result<Response> {
    let response = response.or_else(|e| {
        crate::log::error(request_id, "handler failed", &e.to_string());
        reply::json(500, &api::detail(api::DETAIL_SERVER_ERROR))
    })?;
    let headers = response.headers();
    headers.set("X-Request-Id", request_id)?;
    if let (Some(config), Some(origin)) = (config, origin) {
        if let Some(allowed) = config.cors.allow(origin) {
            headers.set("Access-Control-Allow-Origin", &allowed)?;
            headers.set("Access-Control-Expose-Headers", cors::EXPOSE_HEADERS)?;
            headers.append("Vary", "Origin")?;
        }
    }
    Ok(response)
}

struct Call<'a> {
    env: &'a Env,
    config: &'a Config,
    request_id: &'a str,
    /// The client's network for anonymous throttling (`shared::client::network_key`) from
    /// Cloudflare's `CF-Connecting-IP`, never `X-Forwarded-For` (which the client controls);
    /// `None` when the request did not come through Cloudflare.
    client: Option<String>,
}

/// Who a throttle check counts: the anonymous client's network, or a named key.
#[derive(Clone, Copy)]
enum Who<'a> {
    Client,
    Key(&'a str),
}

impl Call<'_> {
    /// Counts the request in each scope; the first refusal answers.
    async fn throttle(&self, checks: &[(Scope, Who<'_>)]) -> Option<Result<Response>> {
        for &(scope, who) in checks {
            // A scope configured `none` is not throttled: no limiter call.
            let Some(rate) = self.config.rates.get(scope) else {
                continue;
            };
            let identity = match who {
                Who::Key(key) => key,
                Who::Client => match client::throttle_identity(self.client.as_deref(), scope) {
                    Ok(identity) => identity,
                    Err(client::UnknownClient) => return Some(reply::client_unknown()),
                },
            };
            match limiter::check(self.env, scope, rate, identity).await {
                Verdict::Allowed => {}
                Verdict::Throttled(wait) => return Some(reply::throttled(wait)),
                Verdict::Unavailable => return Some(reply::unavailable()),
            }
        }
        None
    }

    async fn origin(
        &self,
        route: InternalRoute,
        query: Option<&str>,
        identity: Identity,
        body: Option<&[u8]>,
    ) -> Result<Response> {
        match origin::call(
            self.config,
            route,
            query,
            identity,
            body,
            self.request_id,
            self.client.as_deref(),
        )
        .await
        {
            Ok(reply) => relay(reply),
            Err(e) => {
                crate::log::error(self.request_id, "origin unavailable", &e.0);
                reply::unavailable()
            }
        }
    }
}

/// The origin's answer as it is (its bodies are already in the public shapes).
fn relay(origin: OriginReply) -> Result<Response> {
    let response = if origin.body.is_empty() {
        Response::empty()?.with_status(origin.status)
    } else {
        let response = Response::from_bytes(origin.body)?.with_status(origin.status);
        response.headers().set("Content-Type", "application/json")?;
        response
    };
    if origin.status == 401 {
        response
            .headers()
            .set("WWW-Authenticate", api::WWW_AUTHENTICATE)?;
    }
    Ok(response)
}

macro_rules! try_reply {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(response) => return Ok(response),
        }
    };
}

macro_rules! throttle {
    ($call:expr, $checks:expr) => {
        if let Some(answer) = $call.throttle($checks).await {
            return answer;
        }
    };
}

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    config: &Rc<Config>,
    request_id: &str,
) -> Result<Response> {
    let method = req.method();
    let url = req.url()?;
    if method == Method::Options {
        return preflight(&req, config, url.path());
    }
    let route = match resolve(method.as_ref(), url.path()) {
        Ok(route) => route,
        Err(Miss::NotFound) => return reply::not_found(),
        Err(Miss::MethodNotAllowed { allow }) => {
            return reply::method_not_allowed(method.as_ref(), allow)
        }
    };
    let client = req
        .headers()
        .get("CF-Connecting-IP")?
        .and_then(|raw| client::network_key(&raw, config.ipv6_prefix));
    let call = Call {
        env,
        config,
        request_id,
        client,
    };

    match route {
        Route::Jwks => reply::json(200, &serde_json::to_value(config.verifier.keys().jwks())?),
        Route::Schema => asset(env, &req, "/api/schema/index.json").await,
        Route::Swagger => asset(env, &req, "/swagger/").await,
        Route::Redoc => asset(env, &req, "/redoc/").await,
        Route::DocsAsset => asset(env, &req, url.path()).await,
        Route::JwtVerify => {
            throttle!(call, &[(Scope::Anon, Who::Client)]);
            let (body, _) = try_reply!(read_json(&mut req).await?);
            let token = try_reply!(required_token(&body, "token")?);
            match config.verifier.session(&token, now()) {
                // A refresh token can be revoked (rotated out, logged out, reset) long before
                // it expires, and only the origin knows its family: it answers 400 "Token is
                // blacklisted" for those, as SimpleJWT's blacklist does. Access tokens are
                // short-lived and answered here alone.
                Ok(claims) if claims.token_type == TokenKind::Refresh => {
                    let bytes = serde_json::to_vec(&json!({ "token": token }))?;
                    call.origin(
                        InternalRoute::VerifyRefresh,
                        None,
                        Identity::Anonymous,
                        Some(&bytes),
                    )
                    .await
                }
                Ok(_) => reply::json(200, &json!({})),
                Err(_) => reply::unauthorized(&api::token_not_valid()),
            }
        }
        Route::Register | Route::JwtCreate | Route::JwtRefresh => {
            throttle!(
                call,
                &[(Scope::Anon, Who::Client), (Scope::Auth, Who::Client)]
            );
            let (_, bytes) = try_reply!(read_json(&mut req).await?);
            let internal = match route {
                Route::Register => InternalRoute::Register,
                Route::JwtCreate => InternalRoute::Login,
                _ => InternalRoute::Refresh,
            };
            call.origin(internal, None, Identity::Anonymous, Some(&bytes))
                .await
        }
        Route::Logout | Route::Me | Route::PatchMe | Route::ListUsers => {
            let identity = try_reply!(bearer(&req, config)?);
            let Identity::User { id, .. } = identity else {
                return reply::unauthorized(&api::bearer_not_valid());
            };
            throttle!(call, &[(Scope::User, Who::Key(&id.to_string()))]);
            match route {
                Route::Me => call.origin(InternalRoute::Me, None, identity, None).await,
                Route::ListUsers => {
                    let response = call
                        .origin(InternalRoute::ListUsers, url.query(), identity, None)
                        .await?;
                    absolute_page_links(response, &url).await
                }
                _ => {
                    let (_, bytes) = try_reply!(read_json(&mut req).await?);
                    let internal = if route == Route::Logout {
                        InternalRoute::Logout
                    } else {
                        InternalRoute::PatchMe
                    };
                    call.origin(internal, None, identity, Some(&bytes)).await
                }
            }
        }
        Route::ResetRequest => {
            throttle!(
                call,
                &[
                    (Scope::Anon, Who::Client),
                    (Scope::PasswordReset, Who::Client)
                ]
            );
            let (body, _) = try_reply!(read_json(&mut req).await?);
            let email = try_reply!(email_field(&body)?);
            // Per email as well as per client network: nobody can make us mail one inbox more
            // than the rate allows. Guessing is bounded per code instead (`OtpRecord::attempt`).
            let key = email.lookup_key();
            let network = call.client.clone().unwrap_or_default();
            throttle!(
                call,
                &[(Scope::PasswordReset, Who::Key(&format!("email:{key}")))]
            );
            let code = OtpCode::generate(&mut OsRng);
            match otp_store::issue(env, &key, &code, &network).await {
                Ok(true) => {}
                // The live code asked for from another network stays, and nothing is sent:
                // the same answer, so the request reveals nothing either.
                Ok(false) => return reply::json(200, &api::detail(api::DETAIL_RESET_REQUESTED)),
                Err(e) => {
                    crate::log::error(request_id, "otp store unavailable", &e.to_string());
                    return reply::unavailable();
                }
            }
            // The origin emails the code only if the account exists; the client gets the same
            // answer at the same time either way, so that call runs after the response.
            let payload = serde_json::to_vec(&api::SendResetCode {
                email: email.to_string(),
                code: code.expose().to_owned(),
            })?;
            let config = Rc::clone(config);
            let request_id = request_id.to_owned();
            ctx.wait_until(async move {
                if let Err(e) = origin::call(
                    &config,
                    InternalRoute::SendResetCode,
                    None,
                    Identity::Anonymous,
                    Some(&payload),
                    &request_id,
                    Some(network.as_str()),
                )
                .await
                {
                    crate::log::error(&request_id, "reset email not queued", &e.0);
                }
            });
            reply::json(200, &api::detail(api::DETAIL_RESET_REQUESTED))
        }
        Route::ResetVerifyOtp => {
            throttle!(
                call,
                &[
                    (Scope::Anon, Who::Client),
                    (Scope::PasswordReset, Who::Client)
                ]
            );
            let (body, _) = try_reply!(read_json(&mut req).await?);
            let (email, code) = try_reply!(email_and_code(&body)?);
            let token = try_reply!(exchange_code(&call, &email, code).await?);
            reply::json(
                200,
                &serde_json::to_value(api::ResetTokenIssued { reset_token: token })?,
            )
        }
        Route::ResetConfirm => {
            throttle!(
                call,
                &[
                    (Scope::Anon, Who::Client),
                    (Scope::PasswordReset, Who::Client)
                ]
            );
            let (mut body, bytes) = try_reply!(read_json(&mut req).await?);
            let has_token = body
                .get("reset_token")
                .is_some_and(|t| t.as_str().is_some_and(|s| !s.is_empty()));
            if has_token {
                return call
                    .origin(
                        InternalRoute::ResetConfirm,
                        None,
                        Identity::Anonymous,
                        Some(&bytes),
                    )
                    .await;
            }
            if body.get("email").is_none() || body.get("otp").is_none() {
                return reply::bad_request(
                    &json!({"non_field_errors": ["Provide reset_token, or email and otp."]}),
                );
            }
            let (email, code) = try_reply!(email_and_code(&body)?);
            // The new passwords are checked before the code is spent: a typo in
            // `re_new_password` must not cost the user their code.
            try_reply!(new_passwords(&body)?);
            let token = try_reply!(exchange_code(&call, &email, code.clone()).await?);
            if let Some(fields) = body.as_object_mut() {
                fields.remove("email");
                fields.remove("otp");
                fields.insert("reset_token".into(), Value::String(token));
            }
            let bytes = serde_json::to_vec(&body)?;
            let response = call
                .origin(
                    InternalRoute::ResetConfirm,
                    None,
                    Identity::Anonymous,
                    Some(&bytes),
                )
                .await?;
            // The origin refused the new password (policy, similarity to the account): the
            // code was only spent for a reset that did not happen, so it is given back.
            if response.status_code() == 400 {
                if let Some(code) = &code {
                    if let Err(e) = otp_store::reinstate(env, &email.lookup_key(), code).await {
                        crate::log::error(request_id, "otp not reinstated", &e.to_string());
                    }
                }
            }
            Ok(response)
        }
    }
}

/// A correct live code is exchanged (once) for a reset token; anything else is one 400.
async fn exchange_code(
    call: &Call<'_>,
    email: &Email,
    code: Option<OtpCode>,
) -> Result<std::result::Result<String, Response>> {
    let invalid = || {
        reply::bad_request(
            &serde_json::to_value(FieldErrors::single("otp", api::MSG_OTP_INVALID))
                .unwrap_or_default(),
        )
    };
    let Some(code) = code else {
        return Ok(Err(invalid()?));
    };
    let network = call.client.as_deref().unwrap_or_default();
    match otp_store::accept(call.env, &email.lookup_key(), &code, network).await {
        Ok(true) => {
            let token = call
                .config
                .resets
                .issue(
                    &email.lookup_key(),
                    random_hex(16),
                    now(),
                    RESET_TOKEN_TTL_SECS,
                )
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            Ok(Ok(token))
        }
        Ok(false) => Ok(Err(invalid()?)),
        Err(e) => {
            crate::log::error(call.request_id, "otp store unavailable", &e.to_string());
            Ok(Err(reply::unavailable()?))
        }
    }
}

fn form_errors(errors: FieldErrors) -> Result<Response> {
    reply::bad_request(&serde_json::to_value(errors)?)
}

fn required_token(body: &Value, field: &str) -> Result<std::result::Result<String, Response>> {
    let mut form = match Form::new(body) {
        Ok(form) => form,
        Err(errors) => return Ok(Err(form_errors(errors)?)),
    };
    let token = form.required(field, MAX_TOKEN_BYTES);
    match (form.finish(), token) {
        (Ok(()), Some(token)) => Ok(Ok(token)),
        (Err(errors), _) => Ok(Err(form_errors(errors)?)),
        (Ok(()), None) => Ok(Err(reply::unauthorized(&api::token_not_valid())?)),
    }
}

fn new_passwords(body: &Value) -> Result<std::result::Result<(), Response>> {
    let mut form = match Form::new(body) {
        Ok(form) => form,
        Err(errors) => return Ok(Err(form_errors(errors)?)),
    };
    shared::form::new_password_pair(&mut form);
    match form.finish() {
        Ok(()) => Ok(Ok(())),
        Err(errors) => Ok(Err(form_errors(errors)?)),
    }
}

fn email_field(body: &Value) -> Result<std::result::Result<Email, Response>> {
    let mut form = match Form::new(body) {
        Ok(form) => form,
        Err(errors) => return Ok(Err(form_errors(errors)?)),
    };
    let email = form
        .required("email", EMAIL_MAX_CHARS)
        .and_then(|raw| Email::parse(&raw).map_err(|m| form.error("email", m)).ok());
    match (form.finish(), email) {
        (Ok(()), Some(email)) => Ok(Ok(email)),
        (Err(errors), _) => Ok(Err(form_errors(errors)?)),
        (Ok(()), None) => Ok(Err(form_errors(FieldErrors::single(
            "email",
            shared::validate::MSG_INVALID_EMAIL,
        ))?)),
    }
}

/// `email` must be valid; a malformed `otp` is not a field error but simply a wrong code
/// (`None`), so the answer does not reveal anything about the format rules being hit.
fn email_and_code(body: &Value) -> Result<std::result::Result<(Email, Option<OtpCode>), Response>> {
    let email = match email_field(body)? {
        Ok(email) => email,
        Err(response) => return Ok(Err(response)),
    };
    let code = match body.get("otp") {
        None => {
            return Ok(Err(form_errors(FieldErrors::single(
                "otp",
                shared::form::MSG_REQUIRED,
            ))?))
        }
        Some(Value::String(s)) => OtpCode::parse(s),
        Some(Value::Number(n)) => OtpCode::parse(&n.to_string()),
        Some(_) => None,
    };
    Ok(Ok((email, code)))
}

/// SimpleJWT's `JWTAuthentication`: no `Authorization: Bearer` header is "not provided"; a
/// Bearer token that is not a valid access token is "not valid for any token type".
fn bearer(req: &Request, config: &Config) -> Result<std::result::Result<Identity, Response>> {
    let header = req.headers().get("Authorization")?.unwrap_or_default();
    let mut parts = header.split_whitespace();
    if parts.next() != Some("Bearer") {
        return Ok(Err(reply::unauthorized(&api::detail(
            api::DETAIL_NOT_AUTHENTICATED,
        ))?));
    }
    let (Some(token), None) = (parts.next(), parts.next()) else {
        let body = json!({
            "detail": "Authorization header must contain two space-delimited values",
            "code": "bad_authorization_header",
        });
        return Ok(Err(reply::unauthorized(&body)?));
    };
    match config.verifier.access(token, now()) {
        Ok(claims) => Ok(Ok(Identity::User {
            id: claims.user_id,
            token_version: claims.ver,
        })),
        Err(_) => Ok(Err(reply::unauthorized(&api::bearer_not_valid())?)),
    }
}

/// CORS preflight, answered here without touching the origin.
fn preflight(req: &Request, config: &Config, path: &str) -> Result<Response> {
    let origin = req.headers().get("Origin")?;
    let allowed = origin.as_deref().and_then(|o| config.cors.allow(o));
    let allow = match resolve("GET", path).or_else(|_| resolve("POST", path)) {
        Ok(_) | Err(Miss::MethodNotAllowed { .. }) => match resolve("OPTIONS", path) {
            Err(Miss::MethodNotAllowed { allow }) => allow,
            _ => "GET, OPTIONS",
        },
        Err(Miss::NotFound) => return reply::not_found(),
    };
    let response = Response::empty()?.with_status(204);
    let headers = response.headers();
    headers.set("Allow", allow)?;
    if allowed.is_some() {
        headers.set("Access-Control-Allow-Methods", allow)?;
        headers.set("Access-Control-Allow-Headers", cors::ALLOW_HEADERS)?;
        headers.set("Access-Control-Max-Age", cors::MAX_AGE_SECS)?;
    }
    Ok(response)
}

/// The origin gives `next`/`previous` as public paths; clients expect absolute URLs (DRF).
async fn absolute_page_links(mut response: Response, url: &worker::Url) -> Result<Response> {
    if response.status_code() != 200 {
        return Ok(response);
    }
    let mut page: Value = response.json().await?;
    let base = url.origin().ascii_serialization();
    for key in ["next", "previous"] {
        if let Some(Value::String(link)) = page.get_mut(key) {
            if link.starts_with('/') {
                *link = format!("{base}{link}");
            }
        }
    }
    reply::json(200, &page)
}

/// A file from the Workers static assets (the API docs). The assets binding answers with
/// immutable headers, so the file is copied into a response of our own (request id, CORS).
async fn asset(env: &Env, req: &Request, path: &str) -> Result<Response> {
    let mut url = req.url()?;
    url.set_path(path);
    url.set_query(None);
    let mut found = env.assets("ASSETS")?.fetch(url.to_string(), None).await?;
    if found.status_code() != 200 {
        return reply::not_found();
    }
    let content_type = found.headers().get("Content-Type")?;
    let response = Response::from_bytes(found.bytes().await?)?;
    if let Some(content_type) = content_type {
        response.headers().set("Content-Type", &content_type)?;
    }
    Ok(response)
}
