//! The flows, natively, over the fakes: what the client gets, what the origin, the limiter and
//! the code store were asked, and what runs after the response.

use serde_json::{json, Value};
use shared::internal::InternalRoute;
use shared::keys::SigningKey;
use shared::signing::{Identity, SessionId};
use shared::throttle::Scope;
use shared::token::{Audience, Subject, TokenIssuer, TokenKind};

use super::fakes::*;
use super::{finish, handle, request_id, Answer};
use crate::config::Config;
use crate::http::{EdgeRequest, Reply, ReplyBody, RequestBody};
use crate::ports::Verdict;
use crate::routes::{resolve, Who};

const JWT_SECRET: &str = "jwt-secret-jwt-secret-jwt-secret";
const CLIENT: &str = "203.0.113.7";
const EMAIL: &str = "ada@example.com";

fn config() -> Config {
    let vars = [
        ("JWT_ALGORITHM", "HS256".to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("ORIGIN_URL", "http://127.0.0.1:8000".to_owned()),
        ("ORIGIN_SIGNING_SECRET", "s".repeat(32)),
        ("RESET_TOKEN_SECRET", "r".repeat(32)),
        (
            "OTP_SECRET",
            String::from_utf8(OTP_SECRET.to_vec()).unwrap(),
        ),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com".to_owned()),
    ];
    Config::load(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

fn token(kind: TokenKind) -> String {
    let audience = Audience {
        issuer: "auth-api".into(),
        audience: "auth-api".into(),
    };
    let issuer = TokenIssuer::new(SigningKey::hs256(JWT_SECRET.as_bytes()).unwrap(), audience);
    let subject = Subject {
        user_id: 42,
        token_version: 3,
        role: "admin".into(),
    };
    let mut claims = issuer.claims(kind, &subject, "jti-1".into(), NOW, 300);
    if kind == TokenKind::Access {
        claims.sid = Some(SESSION.into());
    }
    issuer.sign(&claims).unwrap()
}

/// The session (refresh family) the test access tokens were issued in.
const SESSION: &str = "0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e";

fn request(method: &str, path: &str, body: &str) -> EdgeRequest {
    EdgeRequest {
        method: method.into(),
        path: path.into(),
        query: None,
        public_base: "https://api.example.com".into(),
        origin_header: None,
        authorization: None,
        cf_connecting_ip: Some(CLIENT.into()),
        user_agent: None,
        content_type: Some("application/json".into()),
        body: RequestBody::Read(body.as_bytes().to_vec()),
    }
}

fn post(path: &str, body: Value) -> EdgeRequest {
    request("POST", path, &body.to_string())
}

fn bearer(mut req: EdgeRequest, header: &str) -> EdgeRequest {
    req.authorization = Some(header.into());
    req
}

struct Edge {
    config: Config,
    fakes: Fakes,
}

impl Edge {
    fn new() -> Self {
        Self {
            config: config(),
            fakes: Fakes::default(),
        }
    }

    fn answer(&self, req: &EdgeRequest) -> Answer {
        ready(handle(req, &self.config, &self.fakes))
    }

    fn send(&self, req: &EdgeRequest) -> Reply {
        match self.answer(req) {
            Answer::Reply(reply) => reply,
            Answer::Asset(path) => panic!("asset {path}"),
        }
    }

    fn throttle_calls(&self) -> Vec<(Scope, String)> {
        self.fakes.limiter.calls.borrow().clone()
    }

    fn origin_calls(&self) -> Vec<OriginCall> {
        self.fakes.origin.calls.borrow().clone()
    }

    fn verify_otp(&self, otp: &str) -> Reply {
        self.send(&post(
            "/api/auth/password/reset/verify-otp/",
            json!({"email": EMAIL, "otp": otp}),
        ))
    }

    fn request_code(&self) -> Reply {
        self.send(&post("/api/auth/password/reset/", json!({"email": EMAIL})))
    }
}

/// Status and body as JSON.
fn parts(reply: &Reply) -> (u16, Option<Value>) {
    (reply.status, reply.json_body())
}

fn www_authenticate(reply: &Reply) -> Option<&str> {
    reply.header("WWW-Authenticate")
}

// --- Throttling ------------------------------------------------------------------------------

#[test]
fn each_route_is_counted_in_its_scopes() {
    let access = format!("Bearer {}", token(TokenKind::Access));
    let client = || CLIENT.to_owned();
    let user = || "42".to_owned();
    let email = || format!("email:{EMAIL}");
    // The client's own network, then its /24, its /16 and everyone.
    let nested = || {
        vec![
            (Scope::Anon, client()),
            (Scope::PasswordReset, client()),
            (Scope::PasswordResetSite, "203.0.113.0/24".to_owned()),
            (Scope::PasswordResetProvider, "203.0.0.0/16".to_owned()),
            (Scope::PasswordResetAll, "all".to_owned()),
        ]
    };
    let cases: Vec<(EdgeRequest, Vec<(Scope, String)>)> = vec![
        (
            post("/api/auth/jwt/verify/", json!({"token": "x"})),
            vec![(Scope::Anon, client())],
        ),
        (
            post("/api/auth/users/", json!({})),
            vec![(Scope::Anon, client()), (Scope::Auth, client())],
        ),
        (
            post("/api/auth/jwt/create/", json!({})),
            vec![(Scope::Anon, client()), (Scope::Auth, client())],
        ),
        (
            post("/api/auth/jwt/refresh/", json!({})),
            vec![(Scope::Anon, client()), (Scope::Auth, client())],
        ),
        (
            bearer(request("GET", "/api/auth/me/", ""), &access),
            vec![(Scope::User, user())],
        ),
        (
            bearer(post("/api/auth/me/", json!({})), &access).with_method("PATCH"),
            vec![(Scope::User, user())],
        ),
        (
            bearer(post("/api/auth/users/me/", json!({})), &access).with_method("DELETE"),
            vec![(Scope::User, user())],
        ),
        (
            bearer(post("/api/auth/users/set_username/", json!({})), &access),
            vec![(Scope::User, user())],
        ),
        (
            bearer(post("/api/auth/users/set_password/", json!({})), &access),
            vec![(Scope::User, user())],
        ),
        (
            bearer(request("GET", "/api/auth/sessions/", ""), &access),
            vec![(Scope::User, user())],
        ),
        (
            bearer(
                request("DELETE", &format!("/api/auth/sessions/{SESSION}/"), ""),
                &access,
            ),
            vec![(Scope::User, user())],
        ),
        (
            bearer(
                post("/api/auth/sessions/revoke-others/", json!({})),
                &access,
            ),
            vec![(Scope::User, user())],
        ),
        (
            bearer(post("/api/auth/logout/", json!({})), &access),
            vec![(Scope::User, user())],
        ),
        (
            bearer(request("GET", "/api/auth/users/", ""), &access),
            vec![(Scope::User, user())],
        ),
        (
            post("/api/auth/password/reset/", json!({"email": EMAIL})),
            [nested(), vec![(Scope::PasswordReset, email())]].concat(),
        ),
        (
            post(
                "/api/auth/password/reset/verify-otp/",
                json!({"email": EMAIL, "otp": "1"}),
            ),
            nested(),
        ),
        (
            post("/api/auth/password/reset/confirm/", json!({})),
            nested(),
        ),
        (post("/api/auth/users/activation/", json!({})), nested()),
        (
            post(
                "/api/auth/users/resend_activation/",
                json!({"email": EMAIL}),
            ),
            [nested(), vec![(Scope::PasswordReset, email())]].concat(),
        ),
        (request("GET", "/.well-known/jwks.json", ""), vec![]),
        (request("GET", "/healthz", ""), vec![]),
    ];
    for (req, expected) in cases {
        let edge = Edge::new();
        edge.send(&req);
        assert_eq!(
            edge.throttle_calls(),
            expected,
            "{} {}",
            req.method,
            req.path
        );
    }
}

trait WithMethod {
    fn with_method(self, method: &str) -> Self;
}

impl WithMethod for EdgeRequest {
    fn with_method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }
}

#[test]
fn the_throttle_table_names_every_scope_of_docs_api_md() {
    let checks = |method, path| resolve(method, path).unwrap().checks;
    assert_eq!(
        checks("POST", "/api/auth/password/reset/"),
        &[
            (Scope::Anon, Who::Client),
            (Scope::PasswordReset, Who::Client),
            (Scope::PasswordResetSite, Who::Client),
            (Scope::PasswordResetProvider, Who::Client),
            (Scope::PasswordResetAll, Who::Client),
            (Scope::PasswordReset, Who::Email),
        ]
    );
    for path in [
        "/.well-known/jwks.json",
        "/api/schema/",
        "/swagger/",
        "/redoc/",
    ] {
        assert!(checks("GET", path).is_empty(), "{path}");
    }
}

/// 50 /64s of one /48, each within its own `password_reset` budget (3 an hour), guessing codes:
/// the /48's budget (30 an hour) ends it, whatever /64 asks next; the operator is told; another
/// site is not affected.
#[test]
fn one_site_of_many_64s_is_stopped_by_its_48_budget() {
    let edge = Edge::new();
    *edge.fakes.limiter.counting.borrow_mut() = true;
    let guess = |subnet: u32| {
        let mut req = post(
            "/api/auth/password/reset/verify-otp/",
            json!({"email": EMAIL, "otp": "123456"}),
        );
        req.cf_connecting_ip = Some(format!("2001:db8:77:{subnet:x}::1"));
        edge.send(&req).status
    };
    let answers: Vec<u16> = (0..50)
        .flat_map(|subnet| [guess(subnet), guess(subnet)])
        .collect();
    let (let_through, refused): (Vec<u16>, Vec<u16>) = answers.iter().partition(|s| **s != 429);
    assert_eq!(let_through.len(), 30, "the /48's budget: {answers:?}");
    assert_eq!(refused.len(), 70);
    // Each /64 made 2 requests, within its own budget: the refusals are the /48's.
    assert!(answers[60..].iter().all(|s| *s == 429), "{answers:?}");
    let logs = edge.fakes.runtime.logs.borrow().clone();
    assert!(
        logs.iter().any(|l| l.contains("throttle budget spent")
            && l.contains("password_reset_site 2001:db8:77::/48 30/hour")),
        "{logs:?}"
    );
    // Another /48 of the same /32 still has its budget.
    let mut req = post(
        "/api/auth/password/reset/verify-otp/",
        json!({"email": EMAIL, "otp": "123456"}),
    );
    req.cf_connecting_ip = Some("2001:db8:78::1".into());
    assert_ne!(edge.send(&req).status, 429);
}

#[test]
fn over_the_rate_is_429_with_retry_after() {
    let edge = Edge::new();
    edge.fakes
        .limiter
        .verdicts
        .borrow_mut()
        .insert(Scope::Auth, Verdict::Throttled(42));
    let reply = edge.send(&post("/api/auth/jwt/create/", json!({})));
    assert_eq!(
        parts(&reply),
        (
            429,
            Some(json!({"detail": "Request was throttled. Expected available in 42 seconds."}))
        )
    );
    assert_eq!(reply.header("Retry-After"), Some("42"));
    assert!(edge.origin_calls().is_empty());
}

#[test]
fn a_limiter_that_cannot_answer_fails_closed_only_for_credentials_and_resets() {
    let edge = Edge::new();
    let mut verdicts = edge.fakes.limiter.verdicts.borrow_mut();
    verdicts.insert(Scope::Anon, Verdict::Unavailable);
    verdicts.insert(Scope::Auth, Verdict::Unavailable);
    drop(verdicts);
    let reply = edge.send(&post("/api/auth/jwt/create/", json!({})));
    assert_eq!(
        parts(&reply),
        (
            503,
            Some(json!({"detail": "Service temporarily unavailable."}))
        )
    );
    // `anon` fails open: the access token is answered.
    let reply = edge.send(&post(
        "/api/auth/jwt/verify/",
        json!({"token": token(TokenKind::Access)}),
    ));
    assert_eq!(parts(&reply), (200, Some(json!({}))));
}

#[test]
fn without_cf_connecting_ip_credentials_are_refused_and_anon_is_unknown() {
    let edge = Edge::new();
    let mut req = post("/api/auth/users/", json!({}));
    req.cf_connecting_ip = None;
    let reply = edge.send(&req);
    assert_eq!(
        parts(&reply),
        (
            403,
            Some(json!({"detail": "Could not determine the client address."}))
        )
    );
    assert_eq!(edge.throttle_calls(), vec![(Scope::Anon, "unknown".into())]);
}

// --- Bearer ----------------------------------------------------------------------------------

#[test]
fn bearer_header_cases_answer_simplejwts_bodies() {
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    let bad_header = json!({
        "detail": "Authorization header must contain two space-delimited values",
        "code": "bad_authorization_header",
    });
    let not_valid = json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{
            "token_class": "AccessToken",
            "token_type": "access",
            "message": "Token is invalid or expired",
        }],
    });
    let refresh = format!("Bearer {}", token(TokenKind::Refresh));
    let cases = [
        (None, &not_provided),
        (Some("Token abc"), &not_provided),
        (Some("Bearer"), &bad_header),
        (Some("Bearer a b"), &bad_header),
        (Some("Bearer not-a-jwt"), &not_valid),
        (Some(refresh.as_str()), &not_valid),
    ];
    for (header, body) in cases {
        let edge = Edge::new();
        let mut req = request("GET", "/api/auth/me/", "");
        req.authorization = header.map(str::to_owned);
        let reply = edge.send(&req);
        assert_eq!(parts(&reply), (401, Some(body.clone())), "{header:?}");
        assert_eq!(www_authenticate(&reply), Some("Bearer realm=\"api\""));
        assert!(edge.origin_calls().is_empty());
        assert!(edge.throttle_calls().is_empty());
    }
}

#[test]
fn a_valid_access_token_forwards_the_user_identity() {
    let edge = Edge::new();
    let user = r#"{"id":42,"email":"ada@example.com"}"#;
    edge.fakes.origin.answer(InternalRoute::Me, 200, user);
    let reply = edge.send(&bearer(
        request("GET", "/api/auth/me/", ""),
        &format!("Bearer {}", token(TokenKind::Access)),
    ));
    assert_eq!(reply.status, 200);
    // Passed on byte for byte.
    assert_eq!(
        reply.body,
        ReplyBody::Bytes {
            content_type: Some("application/json".into()),
            bytes: user.as_bytes().to_vec(),
        }
    );
    let calls = edge.origin_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, InternalRoute::Me);
    assert_eq!(
        calls[0].identity,
        Identity::User {
            id: 42,
            token_version: 3,
            session: SessionId::parse(SESSION),
        }
    );
    assert_eq!(calls[0].body, None);
}

/// `users/set_password/` forwards the body; the session routes forward nothing but the
/// caller's identity (with its session) and, for one session, its id.
#[test]
fn set_password_and_the_session_routes_reach_their_internal_routes() {
    let access = format!("Bearer {}", token(TokenKind::Access));
    let edge = Edge::new();
    edge.fakes
        .origin
        .answer(InternalRoute::SetPassword, 204, "");
    let body = json!({"new_password": "58203917", "re_new_password": "58203917", "current_password": "73926481"});
    let reply = edge.send(&bearer(
        post("/api/auth/users/set_password/", body.clone()),
        &access,
    ));
    assert_eq!(reply.status, 204);
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::SetPassword);
    assert_eq!(
        calls[0]
            .body
            .as_deref()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
        Some(body)
    );

    let edge = Edge::new();
    edge.fakes
        .origin
        .answer(InternalRoute::ListSessions, 200, "[]");
    let reply = edge.send(&bearer(request("GET", "/api/auth/sessions/", ""), &access));
    assert_eq!(reply.status, 200);
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::ListSessions);
    assert_eq!(
        calls[0].identity,
        Identity::User {
            id: 42,
            token_version: 3,
            session: SessionId::parse(SESSION),
        }
    );

    let edge = Edge::new();
    edge.fakes
        .origin
        .answer(InternalRoute::RevokeOtherSessions, 200, r#"{"revoked":2}"#);
    let reply = edge.send(&bearer(
        post("/api/auth/sessions/revoke-others/", json!({})),
        &access,
    ));
    assert_eq!(reply.status, 200);
    assert_eq!(
        edge.origin_calls()[0].route,
        InternalRoute::RevokeOtherSessions
    );

    let edge = Edge::new();
    edge.fakes
        .origin
        .answer(InternalRoute::RevokeSession, 204, "");
    let other = "7d1e4c2a-9b3f-4e5d-8c6b-1a2f3e4d5c6b";
    let path = format!("/api/auth/sessions/{other}/");
    let reply = edge.send(&bearer(request("DELETE", &path, ""), &access));
    assert_eq!(reply.status, 204);
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::RevokeSession);
    assert_eq!(
        calls[0].query.as_deref(),
        Some(format!("id={other}").as_str())
    );
}

/// An id that is not a session id in its one spelling is no session: 404 from the edge, after
/// the caller is authenticated, with nothing sent to the origin.
#[test]
fn revoking_a_malformed_session_id_is_not_found_without_the_origin() {
    let access = format!("Bearer {}", token(TokenKind::Access));
    for id in [
        "x",
        "0B9C6D2E-5F1A-4C3B-9D8E-7F6A5B4C3D2E",
        "0b9c6d2e5f1a4c3b9d8e7f6a5b4c3d2e",
        "%00",
    ] {
        let edge = Edge::new();
        let path = format!("/api/auth/sessions/{id}/");
        let reply = edge.send(&bearer(request("DELETE", &path, ""), &access));
        assert_eq!(reply.status, 404, "{id}");
        assert!(edge.origin_calls().is_empty(), "{id}");
    }
    let edge = Edge::new();
    let reply = edge.send(&request(
        "DELETE",
        &format!("/api/auth/sessions/{SESSION}/"),
        "",
    ));
    assert_eq!(reply.status, 401);
    assert!(edge.origin_calls().is_empty());
}

/// Djoser's `users/me/` is `me/` under another name, and both delete with the body forwarded.
#[test]
fn users_me_is_me_and_delete_forwards_the_current_password() {
    let access = format!("Bearer {}", token(TokenKind::Access));
    for path in ["/api/auth/me/", "/api/auth/users/me/", "/api/auth/users/me"] {
        let edge = Edge::new();
        edge.fakes.origin.answer(InternalRoute::DeleteMe, 204, "");
        let body = json!({"current_password": "73926481"});
        let reply = edge.send(&bearer(post(path, body.clone()), &access).with_method("DELETE"));
        assert_eq!(reply.status, 204, "{path}");
        let calls = edge.origin_calls();
        assert_eq!(calls.len(), 1, "{path}");
        assert_eq!(calls[0].route, InternalRoute::DeleteMe);
        assert_eq!(
            calls[0]
                .body
                .as_deref()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
            Some(body)
        );

        let edge = Edge::new();
        edge.fakes.origin.answer(InternalRoute::Me, 200, "{}");
        assert_eq!(
            edge.send(&bearer(request("GET", path, ""), &access)).status,
            200
        );
        assert_eq!(edge.origin_calls()[0].route, InternalRoute::Me);
    }
    // Without a token nothing reaches the origin.
    let edge = Edge::new();
    let reply = edge.send(&post("/api/auth/users/me/", json!({})).with_method("DELETE"));
    assert_eq!(reply.status, 401);
    assert!(edge.origin_calls().is_empty());
}

#[test]
fn an_origin_401_carries_www_authenticate_and_an_empty_body_stays_empty() {
    let edge = Edge::new();
    let access = format!("Bearer {}", token(TokenKind::Access));
    edge.fakes
        .origin
        .answer(InternalRoute::Me, 401, r#"{"detail":"x"}"#);
    let reply = edge.send(&bearer(request("GET", "/api/auth/me/", ""), &access));
    assert_eq!(reply.status, 401);
    assert_eq!(www_authenticate(&reply), Some("Bearer realm=\"api\""));

    edge.fakes.origin.answer(InternalRoute::Logout, 204, "");
    let reply = edge.send(&bearer(
        post("/api/auth/logout/", json!({"refresh": "r"})),
        &access,
    ));
    assert_eq!(reply, Reply::empty(204));
    assert_eq!(
        edge.origin_calls()[1].body.as_deref(),
        Some(br#"{"refresh":"r"}"#.as_slice())
    );
}

// --- jwt/verify ------------------------------------------------------------------------------

#[test]
fn verify_answers_access_tokens_here_and_asks_the_origin_about_refresh_tokens() {
    let edge = Edge::new();
    let reply = edge.send(&post(
        "/api/auth/jwt/verify/",
        json!({"token": token(TokenKind::Access)}),
    ));
    assert_eq!(parts(&reply), (200, Some(json!({}))));
    assert!(edge.origin_calls().is_empty());

    let blacklisted = r#"{"non_field_errors":["Token is blacklisted"]}"#;
    edge.fakes
        .origin
        .answer(InternalRoute::VerifyRefresh, 400, blacklisted);
    let refresh = token(TokenKind::Refresh);
    let reply = edge.send(&post("/api/auth/jwt/verify/", json!({"token": refresh})));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(json!({"non_field_errors": ["Token is blacklisted"]}))
        )
    );
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::VerifyRefresh);
    assert_eq!(calls[0].identity, Identity::Anonymous);
    assert_eq!(calls[0].json(), json!({"token": refresh}));
}

#[test]
fn verify_refuses_bad_tokens_with_simplejwts_body() {
    let edge = Edge::new();
    let reply = edge.send(&post("/api/auth/jwt/verify/", json!({"token": "x.y.z"})));
    assert_eq!(
        parts(&reply),
        (
            401,
            Some(json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}))
        )
    );
    assert_eq!(www_authenticate(&reply), Some("Bearer realm=\"api\""));
    let reply = edge.send(&post("/api/auth/jwt/verify/", json!({})));
    assert_eq!(
        parts(&reply),
        (400, Some(json!({"token": ["This field is required."]})))
    );
}

// --- Forwarded routes ------------------------------------------------------------------------

#[test]
fn register_login_refresh_forward_the_bytes_as_sent() {
    let cases = [
        ("/api/auth/users/", InternalRoute::Register),
        ("/api/auth/jwt/create/", InternalRoute::Login),
        ("/api/auth/jwt/refresh/", InternalRoute::Refresh),
    ];
    for (path, route) in cases {
        let edge = Edge::new();
        let raw = r#"{ "email" : "a@b.c",  "password":"12345678" }"#;
        edge.fakes.origin.answer(route, 201, r#"{"id":1}"#);
        let reply = edge.send(&request("POST", path, raw));
        assert_eq!(parts(&reply), (201, Some(json!({"id": 1}))));
        let calls = edge.origin_calls();
        assert_eq!(calls[0].route, route);
        assert_eq!(calls[0].body.as_deref(), Some(raw.as_bytes()));
    }
}

#[test]
fn an_unreachable_origin_is_503() {
    let edge = Edge::new();
    edge.fakes.origin.unreachable(InternalRoute::Login);
    let reply = edge.send(&post("/api/auth/jwt/create/", json!({})));
    assert_eq!(
        parts(&reply),
        (
            503,
            Some(json!({"detail": "Service temporarily unavailable."}))
        )
    );
    assert_eq!(
        *edge.fakes.runtime.logs.borrow(),
        ["origin unavailable: connection refused"]
    );
}

// --- Bad input -------------------------------------------------------------------------------

#[test]
fn bad_bodies_get_drfs_messages() {
    let edge = Edge::new();
    let mut req = post("/api/auth/jwt/create/", json!({}));
    req.content_type = Some("text/plain".into());
    req.body = RequestBody::TooLarge;
    // The media type is judged first, as DRF does.
    assert_eq!(
        parts(&edge.send(&req)),
        (
            415,
            Some(json!({"detail": "Unsupported media type \"text/plain\" in request."}))
        )
    );
    req.content_type = None;
    assert_eq!(
        parts(&edge.send(&req)),
        (
            415,
            Some(json!({"detail": "Unsupported media type \"\" in request."}))
        )
    );
    req.content_type = Some("Application/JSON; charset=utf-8".into());
    assert_eq!(
        parts(&edge.send(&req)),
        (413, Some(json!({"detail": "Request body too large."})))
    );
    req.body = RequestBody::Read(b"{".to_vec());
    assert_eq!(
        parts(&edge.send(&req)),
        (
            400,
            Some(
                json!({"detail": "JSON parse error - EOF while parsing an object at line 1 column 1"})
            )
        )
    );
    req.body = RequestBody::Read(Vec::new());
    assert_eq!(
        parts(&edge.send(&req)),
        (
            400,
            Some(
                json!({"detail": "JSON parse error - EOF while parsing a value at line 1 column 0"})
            )
        )
    );
    // Cut short of its Content-Length, or the client went away: the client's fault, 400.
    req.body = RequestBody::Failed("client went away".into());
    assert_eq!(
        parts(&edge.send(&req)),
        (
            400,
            Some(
                json!({"detail": "JSON parse error - the request body ended before it was whole"})
            )
        )
    );
    assert!(edge.origin_calls().is_empty());
}

#[test]
fn a_json_body_that_is_not_an_object_is_a_non_field_error() {
    let edge = Edge::new();
    let reply = edge.send(&post("/api/auth/password/reset/", json!([1])));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(
                json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
            )
        )
    );
}

#[test]
fn unknown_paths_and_methods() {
    let edge = Edge::new();
    let reply = edge.send(&request("GET", "/api/auth/nope/", ""));
    assert_eq!(parts(&reply), (404, Some(json!({"detail": "Not found."}))));
    let reply = edge.send(&request("PUT", "/api/auth/me/", ""));
    assert_eq!(
        parts(&reply),
        (405, Some(json!({"detail": "Method \"PUT\" not allowed."})))
    );
    assert_eq!(reply.header("Allow"), Some("GET, PATCH, DELETE, OPTIONS"));
}

// --- Users list ------------------------------------------------------------------------------

#[test]
fn list_users_page_links_are_absolute() {
    let edge = Edge::new();
    let page = r#"{"count":3,"next":"/api/auth/users/?page=3","previous":"/api/auth/users/?page=1","results":[]}"#;
    edge.fakes
        .origin
        .answer(InternalRoute::ListUsers, 200, page);
    let mut req = request("GET", "/api/auth/users/", "");
    req.query = Some("page=2".into());
    let reply = edge.send(&bearer(
        req,
        &format!("Bearer {}", token(TokenKind::Access)),
    ));
    assert_eq!(
        parts(&reply),
        (
            200,
            Some(json!({
                "count": 3,
                "next": "https://api.example.com/api/auth/users/?page=3",
                "previous": "https://api.example.com/api/auth/users/?page=1",
                "results": [],
            }))
        )
    );
    assert_eq!(edge.origin_calls()[0].query.as_deref(), Some("page=2"));

    let forbidden = r#"{"detail":"You do not have permission to perform this action."}"#;
    edge.fakes
        .origin
        .answer(InternalRoute::ListUsers, 403, forbidden);
    let reply = edge.send(&bearer(
        request("GET", "/api/auth/users/", ""),
        &format!("Bearer {}", token(TokenKind::Access)),
    ));
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        ReplyBody::Bytes {
            content_type: Some("application/json".into()),
            bytes: forbidden.as_bytes().to_vec(),
        }
    );
}

// --- Reset request ---------------------------------------------------------------------------

#[test]
fn a_reset_request_stores_a_code_and_asks_for_the_email_after_the_answer() {
    let edge = Edge::new();
    let reply = edge.request_code();
    let requested = json!({"detail": "If an account exists for this email, a code has been sent."});
    assert_eq!(parts(&reply), (200, Some(requested)));
    assert!(edge.fakes.otp_store.records.borrow().contains_key(EMAIL));
    // Nothing reached the origin before the answer.
    assert!(edge.origin_calls().is_empty());
    edge.fakes.runtime.run_deferred();
    let calls = edge.origin_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, InternalRoute::SendResetCode);
    assert_eq!(calls[0].identity, Identity::Anonymous);
    assert_eq!(calls[0].json(), json!({"email": EMAIL, "code": CODE}));
}

/// `resend_activation/` answers 204 before anything reaches the origin (the same for any
/// email), then asks the origin to mail the account if it waits for activation.
#[test]
fn a_resend_answers_at_once_and_asks_the_origin_after_the_answer() {
    let edge = Edge::new();
    let reply = edge.send(&post(
        "/api/auth/users/resend_activation/",
        json!({"email": EMAIL}),
    ));
    assert_eq!(reply, Reply::empty(204));
    assert!(edge.origin_calls().is_empty());
    edge.fakes.runtime.run_deferred();
    let calls = edge.origin_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, InternalRoute::ResendActivation);
    assert_eq!(calls[0].identity, Identity::Anonymous);
    assert_eq!(calls[0].json(), json!({"email": EMAIL}));
    // A malformed email is the one field error, and nothing is asked.
    let edge = Edge::new();
    let reply = edge.send(&post(
        "/api/auth/users/resend_activation/",
        json!({"email": "nope"}),
    ));
    assert_eq!(reply.status, 400);
    edge.fakes.runtime.run_deferred();
    assert!(edge.origin_calls().is_empty());
}

/// `users/activation/` is the origin's to answer, with the body as sent.
#[test]
fn activation_is_forwarded_as_sent() {
    let edge = Edge::new();
    edge.fakes.origin.answer(InternalRoute::Activate, 204, "");
    let body = json!({"uid": "NDI", "token": "1-ab"});
    let reply = edge.send(&post("/api/auth/users/activation/", body.clone()));
    assert_eq!(reply.status, 204);
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::Activate);
    assert_eq!(calls[0].identity, Identity::Anonymous);
    assert_eq!(calls[0].json(), body);
}

#[test]
fn a_live_code_from_another_network_is_kept_with_the_same_answer_and_no_email() {
    let edge = Edge::new();
    let first = edge.request_code();
    edge.fakes.runtime.run_deferred();
    let mut other = post("/api/auth/password/reset/", json!({"email": EMAIL}));
    other.cf_connecting_ip = Some("198.51.100.9".into());
    let second = edge.send(&other);
    assert_eq!(first, second);
    assert!(edge.fakes.runtime.deferred.borrow().is_empty());
    assert_eq!(edge.origin_calls().len(), 1);
}

#[test]
fn a_reset_request_for_a_malformed_email_is_400_and_a_down_store_503() {
    let edge = Edge::new();
    let reply = edge.send(&post("/api/auth/password/reset/", json!({"email": "nope"})));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(json!({"email": ["Enter a valid email address."]}))
        )
    );
    *edge.fakes.otp_store.down.borrow_mut() = true;
    let reply = edge.request_code();
    assert_eq!(reply.status, 503);
    assert!(edge.fakes.runtime.deferred.borrow().is_empty());
}

#[test]
fn a_failed_reset_email_is_logged_not_answered() {
    let edge = Edge::new();
    edge.fakes.origin.unreachable(InternalRoute::SendResetCode);
    assert_eq!(edge.request_code().status, 200);
    edge.fakes.runtime.run_deferred();
    assert_eq!(
        *edge.fakes.runtime.logs.borrow(),
        ["reset email not queued: connection refused"]
    );
}

// --- verify-otp ------------------------------------------------------------------------------

fn otp_invalid() -> (u16, Option<Value>) {
    (400, Some(json!({"otp": ["Invalid or expired code."]})))
}

#[test]
fn the_right_code_is_exchanged_once_for_a_reset_token() {
    let edge = Edge::new();
    edge.request_code();
    let reply = edge.verify_otp(CODE);
    assert_eq!(reply.status, 200);
    let token = reply.json_body().unwrap()["reset_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = edge.config.resets.verify(&token, NOW).unwrap();
    assert_eq!(claims.email, EMAIL);
    assert_eq!(claims.exp, NOW + 900);
    assert_eq!(parts(&edge.verify_otp(CODE)), otp_invalid());
}

#[test]
fn a_wrong_or_malformed_code_is_one_400() {
    let edge = Edge::new();
    edge.request_code();
    assert_eq!(parts(&edge.verify_otp("654321")), otp_invalid());
    assert_eq!(
        edge.fakes.otp_store.records.borrow()[EMAIL].attempts,
        1,
        "a wrong code is counted"
    );
    assert_eq!(parts(&edge.verify_otp("12ab56")), otp_invalid());
    assert_eq!(
        edge.fakes.otp_store.records.borrow()[EMAIL].attempts,
        1,
        "a malformed code never reaches the store"
    );
    let reply = edge.send(&post(
        "/api/auth/password/reset/verify-otp/",
        json!({"email": EMAIL, "otp": true}),
    ));
    assert_eq!(parts(&reply), otp_invalid());
    let reply = edge.send(&post(
        "/api/auth/password/reset/verify-otp/",
        json!({"email": EMAIL}),
    ));
    assert_eq!(
        parts(&reply),
        (400, Some(json!({"otp": ["This field is required."]})))
    );
    // A number is read as its digits.
    let reply = edge.send(&post(
        "/api/auth/password/reset/verify-otp/",
        json!({"email": EMAIL, "otp": 123456}),
    ));
    assert_eq!(reply.status, 200);
}

// --- confirm ---------------------------------------------------------------------------------

fn confirm_with_code(new: &str, again: &str) -> EdgeRequest {
    post(
        "/api/auth/password/reset/confirm/",
        json!({"email": EMAIL, "otp": CODE, "new_password": new, "re_new_password": again}),
    )
}

#[test]
fn a_mismatched_new_password_pair_does_not_spend_the_code() {
    let edge = Edge::new();
    edge.request_code();
    let reply = edge.send(&confirm_with_code("84736251", "84736250"));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(json!({"re_new_password": ["The two password fields didn't match."]}))
        )
    );
    assert!(!edge.fakes.otp_store.records.borrow()[EMAIL].spent);
    assert_eq!(edge.verify_otp(CODE).status, 200);
}

#[test]
fn confirm_with_a_code_forwards_a_reset_token_and_spends_the_code() {
    let edge = Edge::new();
    edge.request_code();
    edge.fakes.runtime.run_deferred();
    edge.fakes
        .origin
        .answer(InternalRoute::ResetConfirm, 204, "");
    let reply = edge.send(&confirm_with_code("84736251", "84736251"));
    assert_eq!(reply, Reply::empty(204));
    let call = edge.origin_calls().pop().unwrap();
    assert_eq!(call.route, InternalRoute::ResetConfirm);
    let sent = call.json();
    assert_eq!(sent["new_password"], "84736251");
    assert_eq!(sent["re_new_password"], "84736251");
    assert!(sent.get("email").is_none() && sent.get("otp").is_none());
    let token = sent["reset_token"].as_str().unwrap();
    assert_eq!(edge.config.resets.verify(token, NOW).unwrap().email, EMAIL);
    assert_eq!(parts(&edge.verify_otp(CODE)), otp_invalid());
}

#[test]
fn an_origin_400_gives_the_code_back() {
    let edge = Edge::new();
    edge.request_code();
    let refused = r#"{"new_password":["This password is too common."]}"#;
    edge.fakes
        .origin
        .answer(InternalRoute::ResetConfirm, 400, refused);
    let reply = edge.send(&confirm_with_code("12345678", "12345678"));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(json!({"new_password": ["This password is too common."]}))
        )
    );
    assert_eq!(edge.verify_otp(CODE).status, 200);
}

#[test]
fn confirm_with_an_unreachable_origin_is_503_and_the_code_stays_spent() {
    let edge = Edge::new();
    edge.request_code();
    edge.fakes.origin.unreachable(InternalRoute::ResetConfirm);
    let reply = edge.send(&confirm_with_code("84736251", "84736251"));
    assert_eq!(reply.status, 503);
    assert_eq!(parts(&edge.verify_otp(CODE)), otp_invalid());
}

#[test]
fn confirm_with_a_reset_token_forwards_the_body_as_sent() {
    let edge = Edge::new();
    let raw = r#"{"reset_token":"t","new_password":"1","re_new_password":"2"}"#;
    edge.send(&request("POST", "/api/auth/password/reset/confirm/", raw));
    let calls = edge.origin_calls();
    assert_eq!(calls[0].route, InternalRoute::ResetConfirm);
    assert_eq!(calls[0].body.as_deref(), Some(raw.as_bytes()));
}

#[test]
fn confirm_without_a_token_or_a_code_says_which_to_give() {
    let edge = Edge::new();
    let reply = edge.send(&post(
        "/api/auth/password/reset/confirm/",
        json!({"email": EMAIL, "new_password": "1", "re_new_password": "1"}),
    ));
    assert_eq!(
        parts(&reply),
        (
            400,
            Some(json!({"non_field_errors": ["Provide reset_token, or email and otp."]}))
        )
    );
    // A wrong code after a good pair: one 400, nothing forwarded.
    edge.request_code();
    let reply = edge.send(&post(
        "/api/auth/password/reset/confirm/",
        json!({"email": EMAIL, "otp": "000000", "new_password": "84736251", "re_new_password": "84736251"}),
    ));
    assert_eq!(parts(&reply), otp_invalid());
    assert!(edge.origin_calls().is_empty());
}

// --- Around every answer ---------------------------------------------------------------------

#[test]
fn docs_routes_are_answered_from_the_assets() {
    let edge = Edge::new();
    let asset = |path: &str| edge.answer(&request("GET", path, ""));
    assert_eq!(
        asset("/api/schema/"),
        Answer::Asset("/api/schema/index.json".into())
    );
    assert_eq!(asset("/swagger"), Answer::Asset("/swagger/".into()));
    assert_eq!(asset("/redoc/"), Answer::Asset("/redoc/".into()));
    assert_eq!(
        asset("/swagger/init.js"),
        Answer::Asset("/swagger/init.js".into())
    );
    assert_eq!(
        resolve("GET", "/.well-known/jwks.json").map(|row| row.answer),
        Ok(crate::routes::Answer::Jwks),
        "answered here"
    );
    let jwks = edge.send(&request("GET", "/.well-known/jwks.json", ""));
    assert_eq!(jwks.status, 200);
    // The configured keys, as the published JWKS (`{"keys": []}` for HS256).
    assert_eq!(
        jwks.json_body(),
        Some(serde_json::to_value(edge.config.verifier.keys().jwks()).unwrap())
    );
    assert_eq!(jwks.json_body(), Some(json!({"keys": []})));
}

#[test]
fn healthz_names_the_workers_release_without_the_origin() {
    let edge = Edge::new();
    let reply = edge.send(&request("GET", "/healthz", ""));
    assert_eq!(reply.status, 200);
    let version = reply.header("x-auth-api-version").unwrap();
    let (release, commit) = version.split_once('+').unwrap();
    assert_eq!(release, env!("CARGO_PKG_VERSION"));
    assert!(!commit.is_empty() && commit.chars().all(|c| c.is_ascii_alphanumeric()));
    let body = reply.json_body().unwrap();
    assert_eq!(
        (body["version"].as_str(), body["commit"].as_str()),
        (Some(release), Some(commit))
    );
    assert!(
        edge.origin_calls().is_empty(),
        "answered by the Worker alone"
    );
}

#[test]
fn preflights_are_answered_here() {
    let edge = Edge::new();
    let mut req = request("OPTIONS", "/api/auth/me/", "");
    let reply = edge.send(&req);
    assert_eq!(
        reply,
        Reply::empty(204).with_header("Allow", "GET, PATCH, DELETE, OPTIONS")
    );
    req.origin_header = Some("https://app.example.com".into());
    let reply = edge.send(&req);
    assert_eq!(
        reply.header("Access-Control-Allow-Methods"),
        Some("GET, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(
        reply.header("Access-Control-Allow-Headers"),
        Some("authorization, content-type, x-request-id")
    );
    assert_eq!(reply.header("Access-Control-Max-Age"), Some("86400"));
    let reply = edge.send(&request("OPTIONS", "/nope", ""));
    assert_eq!(reply.status, 404);
    assert!(edge.throttle_calls().is_empty());
}

#[test]
fn every_answer_carries_the_request_id_and_cors_for_allowed_origins() {
    let config = config();
    let reply = finish(Reply::empty(204), "abc", Some(&config), None);
    assert_eq!(reply.headers, [("X-Request-Id", "abc".to_owned())]);
    let reply = finish(
        Reply::empty(204),
        "abc",
        Some(&config),
        Some("https://app.example.com"),
    );
    assert_eq!(
        reply.header("Access-Control-Allow-Origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        reply.header("Access-Control-Expose-Headers"),
        Some("retry-after, x-request-id, www-authenticate")
    );
    assert_eq!(reply.header("Vary"), Some("Origin"));
    let reply = finish(
        Reply::empty(204),
        "abc",
        Some(&config),
        Some("https://evil.example.com"),
    );
    assert_eq!(reply.headers.len(), 1);
}

#[test]
fn a_well_formed_request_id_is_kept_else_a_new_one() {
    let new = || "new".to_owned();
    assert_eq!(request_id(Some("req-1.a_B"), new), "req-1.a_B");
    assert_eq!(request_id(Some(""), new), "new");
    assert_eq!(request_id(Some("a b"), new), "new");
    assert_eq!(request_id(Some(&"x".repeat(65)), new), "new");
    assert_eq!(request_id(None, new), "new");
}
