//! The public routing table (docs/api.md): one row per route, read by the router, the throttle
//! checks, the flows that forward to the origin and the contract test.

use shared::internal::InternalRoute;
use shared::throttle::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists; `allow` lists its methods for the `Allow` header.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Whom a throttle check counts. Each is counted as soon as the flow knows it: the client on
/// arrival, the user once the Bearer token is verified, the email once the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The client's network (`CF-Connecting-IP`), or a wider one for the nested reset budgets
    /// (`shared::client::throttle_identity`).
    Client,
    /// The user id of a verified access token.
    User,
    /// The normalised email a reset is for: nobody can make us mail one inbox more than the
    /// rate allows, whatever networks they ask from. Guessing is bounded per code instead
    /// (`OtpRecord::attempt`).
    Email,
}

/// How a route is answered: which flow runs, and what it forwards to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The client's JSON body, forwarded as it came, anonymously.
    Forward(InternalRoute),
    /// A Bearer route: forwarded with the caller's identity (and the JSON body when `body`).
    User {
        to: InternalRoute,
        body: bool,
    },
    /// `jwt/verify/`: access tokens here, refresh tokens also at the origin.
    Verify,
    /// The reset and activation flows that hold codes at the edge.
    ResetRequest,
    ResetVerifyOtp,
    ResetConfirm,
    ResendActivation,
    /// The public keys, from the configuration.
    Jwks,
    /// The Worker answers, configured: its release and commit (`x-auth-api-version`).
    Health,
    /// A file of the assets (the OpenAPI document), an API resource like the others.
    Asset(&'static str),
    /// A page of the API docs or one of its files, from the assets (`None`: the request's own
    /// path); pages for a browser, so `GET` only (no CORS preflight).
    Docs(Option<&'static str>),
}

/// One public route: method, path (`{id}` stands for one segment), what answers it, and the
/// throttle checks it is counted in, in order. Everything that routes, throttles, forwards or
/// checks the contract reads this table.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub method: &'static str,
    pub path: &'static str,
    pub answer: Answer,
    pub checks: &'static [(Scope, Who)],
}

use shared::throttle::Scope::{
    Anon, Auth, PasswordReset, PasswordResetAll, PasswordResetProvider, PasswordResetSite, User,
};
use InternalRoute as To;

const NONE: &[(Scope, Who)] = &[];
const ANON: &[(Scope, Who)] = &[(Anon, Who::Client)];
const CREDENTIALS: &[(Scope, Who)] = &[(Anon, Who::Client), (Auth, Who::Client)];
const BEARER: &[(Scope, Who)] = &[(User, Who::User)];
/// Every code guess (and every request that makes a code) is counted per client, per site, per
/// provider and once for the whole service: the last is the bound on guesses per hour from
/// everywhere (docs/security.md).
const CODES: &[(Scope, Who)] = &[
    (Anon, Who::Client),
    (PasswordReset, Who::Client),
    (PasswordResetSite, Who::Client),
    (PasswordResetProvider, Who::Client),
    (PasswordResetAll, Who::Client),
];
/// [`CODES`], and per email: a request that mails an inbox. Account activation shares the reset
/// request's per-email budget (one bound on mails to one inbox).
const MAILS: &[(Scope, Who)] = &[
    (Anon, Who::Client),
    (PasswordReset, Who::Client),
    (PasswordResetSite, Who::Client),
    (PasswordResetProvider, Who::Client),
    (PasswordResetAll, Who::Client),
    (PasswordReset, Who::Email),
];

const fn row(
    method: &'static str,
    path: &'static str,
    answer: Answer,
    checks: &'static [(Scope, Who)],
) -> Row {
    Row {
        method,
        path,
        answer,
        checks,
    }
}

const fn user(to: To, body: bool) -> Answer {
    Answer::User { to, body }
}

/// The public API (docs/api.md): one row per method and path.
#[rustfmt::skip]
pub static ROUTES: &[Row] = &[
    row("POST",   "/api/auth/users",                       Answer::Forward(To::Register),          CREDENTIALS),
    row("GET",    "/api/auth/users",                       user(To::ListUsers, false),             BEARER),
    row("POST",   "/api/auth/users/activation",            Answer::Forward(To::Activate),          CODES),
    row("POST",   "/api/auth/users/resend_activation",     Answer::ResendActivation,               MAILS),
    row("POST",   "/api/auth/users/set_username",          user(To::SetUsername, true),            BEARER),
    row("POST",   "/api/auth/users/set_password",          user(To::SetPassword, true),            BEARER),
    row("GET",    "/api/auth/sessions",                    user(To::ListSessions, false),          BEARER),
    row("POST",   "/api/auth/sessions/revoke-others",      user(To::RevokeOtherSessions, false),   BEARER),
    // The id is the path's last segment ([`session_id`]), forwarded as `?id=`.
    row("DELETE", "/api/auth/sessions/{id}",               user(To::RevokeSession, false),         BEARER),
    row("POST",   "/api/auth/jwt/create",                  Answer::Forward(To::Login),             CREDENTIALS),
    row("POST",   "/api/auth/jwt/refresh",                 Answer::Forward(To::Refresh),           CREDENTIALS),
    row("POST",   "/api/auth/jwt/verify",                  Answer::Verify,                         ANON),
    row("POST",   "/api/auth/logout",                      user(To::Logout, true),                 BEARER),
    row("GET",    "/api/auth/me",                          user(To::Me, false),                    BEARER),
    row("PATCH",  "/api/auth/me",                          user(To::PatchMe, true),                BEARER),
    row("DELETE", "/api/auth/me",                          user(To::DeleteMe, true),               BEARER),
    // `users/me/` is Djoser's name for the same resource.
    row("GET",    "/api/auth/users/me",                    user(To::Me, false),                    BEARER),
    row("PATCH",  "/api/auth/users/me",                    user(To::PatchMe, true),                BEARER),
    row("DELETE", "/api/auth/users/me",                    user(To::DeleteMe, true),               BEARER),
    row("POST",   "/api/auth/password/reset",              Answer::ResetRequest,                   MAILS),
    row("POST",   "/api/auth/password/reset/verify-otp",   Answer::ResetVerifyOtp,                 CODES),
    row("POST",   "/api/auth/password/reset/confirm",      Answer::ResetConfirm,                   CODES),
    row("GET",    "/.well-known/jwks.json",                Answer::Jwks,                           NONE),
    row("GET",    "/healthz",                              Answer::Health,                         NONE),
    row("GET",    "/api/schema",                           Answer::Asset("/api/schema/index.json"), NONE),
    row("GET",    "/swagger",                              Answer::Docs(Some("/swagger/")),        NONE),
    row("GET",    "/redoc",                                Answer::Docs(Some("/redoc/")),          NONE),
    // The scripts and stylesheets of the docs pages.
    row("GET",    "/swagger/{file}",                       Answer::Docs(None),                     NONE),
    row("GET",    "/redoc/{file}",                         Answer::Docs(None),                     NONE),
];

/// Whether `path` is `pattern`, where a `{…}` segment stands for one non-empty segment other
/// than `..`.
fn matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('{') {
        return pattern == path;
    }
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() || g == ".." {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The `Allow` header of a path served by `rows` (a docs page: `GET` only).
fn allow(rows: impl Iterator<Item = &'static Row>) -> &'static str {
    const ALLOW: [&str; 16] = [
        "OPTIONS",
        "GET, OPTIONS",
        "POST, OPTIONS",
        "GET, POST, OPTIONS",
        "PATCH, OPTIONS",
        "GET, PATCH, OPTIONS",
        "POST, PATCH, OPTIONS",
        "GET, POST, PATCH, OPTIONS",
        "DELETE, OPTIONS",
        "GET, DELETE, OPTIONS",
        "POST, DELETE, OPTIONS",
        "GET, POST, DELETE, OPTIONS",
        "PATCH, DELETE, OPTIONS",
        "GET, PATCH, DELETE, OPTIONS",
        "POST, PATCH, DELETE, OPTIONS",
        "GET, POST, PATCH, DELETE, OPTIONS",
    ];
    let (mut mask, mut pages) = (0usize, true);
    for row in rows {
        mask |= match row.method {
            "GET" => 1,
            "POST" => 2,
            "PATCH" => 4,
            _ => 8,
        };
        pages &= matches!(row.answer, Answer::Docs(_));
    }
    if pages {
        "GET"
    } else {
        ALLOW[mask]
    }
}

/// Routes by path (a missing trailing slash is the same route, not a redirect) and method.
/// `HEAD` is served as `GET` where `GET` is allowed. A path named exactly wins over a pattern
/// (`sessions/revoke-others/` is not a session id).
pub fn resolve(method: &str, path: &str) -> Result<&'static Row, Miss> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let method = if method == "HEAD" { "GET" } else { method };
    let exact = ROUTES.iter().any(|row| row.path == path);
    let on_path = || {
        ROUTES.iter().filter(move |row| {
            if exact {
                row.path == path
            } else {
                matches(row.path, path)
            }
        })
    };
    if on_path().next().is_none() {
        return Err(Miss::NotFound);
    }
    on_path()
        .find(|row| row.method == method)
        .ok_or_else(|| Miss::MethodNotAllowed {
            allow: allow(on_path()),
        })
}

/// The `{id}` of `/api/auth/sessions/{id}/` (one non-empty segment; whether it names a session
/// is for the flow to decide).
pub fn session_id(path: &str) -> Option<&str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.strip_prefix("/api/auth/sessions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(method: &str, path: &str) -> Result<Answer, Miss> {
        resolve(method, path).map(|row| row.answer)
    }

    #[test]
    fn every_api_md_row_resolves_with_and_without_trailing_slash() {
        let user = |to, body| Answer::User { to, body };
        let rows = [
            ("POST", "/api/auth/users/", Answer::Forward(To::Register)),
            ("GET", "/api/auth/users/", user(To::ListUsers, false)),
            (
                "POST",
                "/api/auth/users/activation/",
                Answer::Forward(To::Activate),
            ),
            (
                "POST",
                "/api/auth/users/resend_activation/",
                Answer::ResendActivation,
            ),
            ("POST", "/api/auth/jwt/create/", Answer::Forward(To::Login)),
            (
                "POST",
                "/api/auth/jwt/refresh/",
                Answer::Forward(To::Refresh),
            ),
            ("POST", "/api/auth/jwt/verify/", Answer::Verify),
            ("POST", "/api/auth/logout/", user(To::Logout, true)),
            ("GET", "/api/auth/me/", user(To::Me, false)),
            ("PATCH", "/api/auth/me/", user(To::PatchMe, true)),
            ("GET", "/api/auth/users/me/", user(To::Me, false)),
            ("PATCH", "/api/auth/users/me/", user(To::PatchMe, true)),
            ("DELETE", "/api/auth/me/", user(To::DeleteMe, true)),
            ("DELETE", "/api/auth/users/me/", user(To::DeleteMe, true)),
            (
                "POST",
                "/api/auth/users/set_username/",
                user(To::SetUsername, true),
            ),
            (
                "POST",
                "/api/auth/users/set_password/",
                user(To::SetPassword, true),
            ),
            ("GET", "/api/auth/sessions/", user(To::ListSessions, false)),
            (
                "DELETE",
                "/api/auth/sessions/0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e/",
                user(To::RevokeSession, false),
            ),
            (
                "POST",
                "/api/auth/sessions/revoke-others/",
                user(To::RevokeOtherSessions, false),
            ),
            ("POST", "/api/auth/password/reset/", Answer::ResetRequest),
            (
                "POST",
                "/api/auth/password/reset/verify-otp/",
                Answer::ResetVerifyOtp,
            ),
            (
                "POST",
                "/api/auth/password/reset/confirm/",
                Answer::ResetConfirm,
            ),
            ("GET", "/.well-known/jwks.json", Answer::Jwks),
            ("GET", "/healthz/", Answer::Health),
            (
                "GET",
                "/api/schema/",
                Answer::Asset("/api/schema/index.json"),
            ),
            ("GET", "/swagger/", Answer::Docs(Some("/swagger/"))),
            ("GET", "/redoc/", Answer::Docs(Some("/redoc/"))),
        ];
        for (method, path, expected) in rows {
            assert_eq!(answer(method, path), Ok(expected), "{method} {path}");
            let bare = path.strip_suffix('/').unwrap_or(path);
            assert_eq!(answer(method, bare), Ok(expected), "{method} {bare}");
        }
        assert_eq!(answer("HEAD", "/api/auth/me/"), Ok(user(To::Me, false)));
        assert_eq!(
            answer("GET", "/swagger/swagger-ui.css"),
            Ok(Answer::Docs(None))
        );
        assert_eq!(
            answer("GET", "/redoc/redoc.standalone.js"),
            Ok(Answer::Docs(None))
        );
        for escape in ["/swagger/../wrangler.toml", "/swagger/..", "/redoc/a/b.js"] {
            assert_eq!(answer("GET", escape), Err(Miss::NotFound), "{escape}");
        }
    }

    /// Each (method, path) has one row, and each row is reachable.
    #[test]
    fn every_row_is_its_own() {
        for (i, row) in ROUTES.iter().enumerate() {
            let concrete = row.path.replace("{id}", "x").replace("{file}", "x.js");
            assert!(
                std::ptr::eq(resolve(row.method, &concrete).unwrap(), row),
                "{} {} is shadowed",
                row.method,
                row.path
            );
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|r| r.method == row.method && r.path == row.path),
                "{} {} twice",
                row.method,
                row.path
            );
        }
    }

    /// Every internal route is reached from the public API: forwarded by a row, or called by
    /// the flow a row names. A new internal route without a way in fails here.
    #[test]
    fn every_internal_route_has_a_way_in() {
        for &route in InternalRoute::ALL {
            let forwarded = ROUTES.iter().any(|row| match row.answer {
                Answer::Forward(to) | Answer::User { to, .. } => to == route,
                _ => false,
            });
            // The flows that call the origin themselves, and the rows that name them.
            let by_flow = match route {
                To::VerifyRefresh => Some(Answer::Verify),
                To::SendResetCode => Some(Answer::ResetRequest),
                To::ResetConfirm => Some(Answer::ResetConfirm),
                To::ResendActivation => Some(Answer::ResendActivation),
                _ => None,
            }
            .is_some_and(|flow| ROUTES.iter().any(|row| row.answer == flow));
            assert!(forwarded || by_flow, "{route:?} has no public route");
        }
    }

    /// Every row of the table but the docs pages' files is a row of docs/api.md, and every
    /// method and path of docs/api.md is a row of the table.
    #[test]
    fn docs_api_md_and_the_routing_table_agree() {
        let contract = include_str!("../../docs/api.md");
        let mut documented: Vec<*const Row> = Vec::new();
        for row in contract.lines().filter(|l| l.starts_with("| ")) {
            let cell = row.split('|').nth(1).unwrap_or_default().trim();
            // `GET, PATCH `/path/`` names each method on each path of the cell.
            let (methods, rest) = cell.split_once('`').unwrap_or((cell, ""));
            let methods: Vec<&str> = methods
                .split([',', ' '])
                .filter(|m| !m.is_empty())
                .collect();
            if methods.is_empty()
                || !methods
                    .iter()
                    .all(|m| ["GET", "POST", "PATCH", "PUT", "DELETE"].contains(m))
            {
                continue;
            }
            let rest = format!("`{rest}");
            for path in rest.split('`').skip(1).step_by(2) {
                if path.starts_with('/') {
                    for method in &methods {
                        let row = resolve(method, path).unwrap_or_else(|miss| {
                            panic!("docs/api.md: {method} {path}: {miss:?}")
                        });
                        if !documented.contains(&(row as *const Row)) {
                            documented.push(row);
                        }
                    }
                }
            }
        }
        for row in ROUTES.iter().filter(|r| !r.path.contains("{file}")) {
            assert!(
                documented.contains(&(row as *const Row)),
                "{} {} is routed but has no row in docs/api.md",
                row.method,
                row.path
            );
        }
        assert_eq!(
            documented.len(),
            ROUTES.iter().filter(|r| !r.path.contains("{file}")).count()
        );
    }

    /// Every API route the Worker answers is in the OpenAPI document it serves (the committed
    /// `edge/assets/api/schema/index.json`, kept fresh by `cargo xtask openapi --check`), with
    /// its method; the docs pages and the schema itself are not API operations.
    #[test]
    fn the_openapi_document_has_every_api_route() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../assets/api/schema/index.json")).unwrap();
        let paths = schema["paths"].as_object().unwrap();
        for row in ROUTES
            .iter()
            .filter(|r| r.path.starts_with("/api/auth/") || r.path.starts_with("/.well-known/"))
        {
            let public = match row.path {
                "/.well-known/jwks.json" => row.path.to_owned(),
                path => format!("{path}/"),
            };
            let operation = paths
                .get(&public)
                .and_then(|p| p.get(row.method.to_ascii_lowercase()));
            assert!(
                operation.is_some(),
                "{} {public} is routed but not in the OpenAPI document (origin/src/openapi.rs)",
                row.method
            );
        }
    }

    #[test]
    fn misses() {
        assert_eq!(answer("GET", "/api/auth/nope/"), Err(Miss::NotFound));
        assert_eq!(answer("GET", "/api/auth/users//"), Err(Miss::NotFound));
        assert_eq!(
            answer("DELETE", "/api/auth/sessions//"),
            Err(Miss::NotFound)
        );
        assert_eq!(
            answer("DELETE", "/api/auth/sessions/a/b/"),
            Err(Miss::NotFound)
        );
        assert_eq!(
            answer("GET", "/api/auth/sessions/x/"),
            Err(Miss::MethodNotAllowed {
                allow: "DELETE, OPTIONS"
            })
        );
        assert_eq!(
            answer("DELETE", "/api/auth/sessions/revoke-others/"),
            Err(Miss::MethodNotAllowed {
                allow: "POST, OPTIONS"
            })
        );
        assert_eq!(session_id("/api/auth/sessions/abc/"), Some("abc"));
        assert_eq!(
            answer("PUT", "/api/auth/me/"),
            Err(Miss::MethodNotAllowed {
                allow: "GET, PATCH, DELETE, OPTIONS"
            })
        );
        assert_eq!(
            answer("PUT", "/api/auth/users/"),
            Err(Miss::MethodNotAllowed {
                allow: "GET, POST, OPTIONS"
            })
        );
        assert_eq!(
            answer("GET", "/api/auth/jwt/create/"),
            Err(Miss::MethodNotAllowed {
                allow: "POST, OPTIONS"
            })
        );
        assert_eq!(
            answer("POST", "/swagger/"),
            Err(Miss::MethodNotAllowed { allow: "GET" })
        );
    }
}
