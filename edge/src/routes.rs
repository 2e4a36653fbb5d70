//! The public routing table (docs/api.md): which route a method and path name, or why none does.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Activation,
    ResendActivation,
    ListUsers,
    JwtCreate,
    JwtRefresh,
    JwtVerify,
    Logout,
    Me,
    PatchMe,
    DeleteMe,
    SetUsername,
    SetPassword,
    ListSessions,
    /// `DELETE sessions/{id}/`: the id is the path's last segment ([`session_id`]).
    RevokeSession,
    RevokeOtherSessions,
    ResetRequest,
    ResetVerifyOtp,
    ResetConfirm,
    Jwks,
    Schema,
    Swagger,
    Redoc,
    /// A script or stylesheet of the docs pages, under `/swagger/` or `/redoc/`.
    DocsAsset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists; `allow` lists its methods for the `Allow` header.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Routes by path (a missing trailing slash is the same route, not a redirect) and method.
/// `HEAD` is served as `GET` where `GET` is allowed.
pub fn resolve(method: &str, path: &str) -> Result<Route, Miss> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let method = if method == "HEAD" { "GET" } else { method };
    let (allow, table): (&'static str, &[(&str, Route)]) = match path {
        "/api/auth/users" => (
            "GET, POST, OPTIONS",
            &[("POST", Route::Register), ("GET", Route::ListUsers)],
        ),
        "/api/auth/users/activation" => ("POST, OPTIONS", &[("POST", Route::Activation)]),
        "/api/auth/users/resend_activation" => {
            ("POST, OPTIONS", &[("POST", Route::ResendActivation)])
        }
        "/api/auth/users/set_username" => ("POST, OPTIONS", &[("POST", Route::SetUsername)]),
        "/api/auth/users/set_password" => ("POST, OPTIONS", &[("POST", Route::SetPassword)]),
        "/api/auth/sessions" => ("GET, OPTIONS", &[("GET", Route::ListSessions)]),
        "/api/auth/sessions/revoke-others" => {
            ("POST, OPTIONS", &[("POST", Route::RevokeOtherSessions)])
        }
        p if session_id(p).is_some() => ("DELETE, OPTIONS", &[("DELETE", Route::RevokeSession)]),
        "/api/auth/jwt/create" => ("POST, OPTIONS", &[("POST", Route::JwtCreate)]),
        "/api/auth/jwt/refresh" => ("POST, OPTIONS", &[("POST", Route::JwtRefresh)]),
        "/api/auth/jwt/verify" => ("POST, OPTIONS", &[("POST", Route::JwtVerify)]),
        "/api/auth/logout" => ("POST, OPTIONS", &[("POST", Route::Logout)]),
        // `users/me/` is Djoser's name for the same resource.
        "/api/auth/me" | "/api/auth/users/me" => (
            "GET, PATCH, DELETE, OPTIONS",
            &[
                ("GET", Route::Me),
                ("PATCH", Route::PatchMe),
                ("DELETE", Route::DeleteMe),
            ],
        ),
        "/api/auth/password/reset" => ("POST, OPTIONS", &[("POST", Route::ResetRequest)]),
        "/api/auth/password/reset/verify-otp" => {
            ("POST, OPTIONS", &[("POST", Route::ResetVerifyOtp)])
        }
        "/api/auth/password/reset/confirm" => ("POST, OPTIONS", &[("POST", Route::ResetConfirm)]),
        "/.well-known/jwks.json" => ("GET, OPTIONS", &[("GET", Route::Jwks)]),
        "/api/schema" => ("GET, OPTIONS", &[("GET", Route::Schema)]),
        "/swagger" => ("GET", &[("GET", Route::Swagger)]),
        "/redoc" => ("GET", &[("GET", Route::Redoc)]),
        p if (p.starts_with("/swagger/") || p.starts_with("/redoc/")) && !p.contains("..") => {
            ("GET", &[("GET", Route::DocsAsset)])
        }
        _ => return Err(Miss::NotFound),
    };
    table
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, route)| *route)
        .ok_or(Miss::MethodNotAllowed { allow })
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

    #[test]
    fn every_api_md_row_resolves_with_and_without_trailing_slash() {
        let rows = [
            ("POST", "/api/auth/users/", Route::Register),
            ("GET", "/api/auth/users/", Route::ListUsers),
            ("POST", "/api/auth/users/activation/", Route::Activation),
            (
                "POST",
                "/api/auth/users/resend_activation/",
                Route::ResendActivation,
            ),
            ("POST", "/api/auth/jwt/create/", Route::JwtCreate),
            ("POST", "/api/auth/jwt/refresh/", Route::JwtRefresh),
            ("POST", "/api/auth/jwt/verify/", Route::JwtVerify),
            ("POST", "/api/auth/logout/", Route::Logout),
            ("GET", "/api/auth/me/", Route::Me),
            ("PATCH", "/api/auth/me/", Route::PatchMe),
            ("GET", "/api/auth/users/me/", Route::Me),
            ("PATCH", "/api/auth/users/me/", Route::PatchMe),
            ("DELETE", "/api/auth/me/", Route::DeleteMe),
            ("DELETE", "/api/auth/users/me/", Route::DeleteMe),
            ("POST", "/api/auth/users/set_username/", Route::SetUsername),
            ("POST", "/api/auth/users/set_password/", Route::SetPassword),
            ("GET", "/api/auth/sessions/", Route::ListSessions),
            (
                "DELETE",
                "/api/auth/sessions/0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e/",
                Route::RevokeSession,
            ),
            (
                "POST",
                "/api/auth/sessions/revoke-others/",
                Route::RevokeOtherSessions,
            ),
            ("POST", "/api/auth/password/reset/", Route::ResetRequest),
            (
                "POST",
                "/api/auth/password/reset/verify-otp/",
                Route::ResetVerifyOtp,
            ),
            (
                "POST",
                "/api/auth/password/reset/confirm/",
                Route::ResetConfirm,
            ),
            ("GET", "/.well-known/jwks.json", Route::Jwks),
            ("GET", "/api/schema/", Route::Schema),
            ("GET", "/swagger/", Route::Swagger),
            ("GET", "/redoc/", Route::Redoc),
        ];
        for (method, path, route) in rows {
            assert_eq!(resolve(method, path), Ok(route), "{method} {path}");
            let bare = path.strip_suffix('/').unwrap_or(path);
            assert_eq!(resolve(method, bare), Ok(route), "{method} {bare}");
        }
        assert_eq!(resolve("HEAD", "/api/auth/me/"), Ok(Route::Me));
        assert_eq!(
            resolve("GET", "/swagger/swagger-ui.css"),
            Ok(Route::DocsAsset)
        );
        assert_eq!(
            resolve("GET", "/redoc/redoc.standalone.js"),
            Ok(Route::DocsAsset)
        );
        assert_eq!(
            resolve("GET", "/swagger/../wrangler.toml"),
            Err(Miss::NotFound)
        );
    }

    /// Every route but the docs pages' assets (one row per page in the contract).
    const CONTRACT_ROUTES: [Route; 23] = [
        Route::Register,
        Route::Activation,
        Route::ResendActivation,
        Route::ListUsers,
        Route::JwtCreate,
        Route::JwtRefresh,
        Route::JwtVerify,
        Route::Logout,
        Route::Me,
        Route::PatchMe,
        Route::DeleteMe,
        Route::SetUsername,
        Route::SetPassword,
        Route::ListSessions,
        Route::RevokeSession,
        Route::RevokeOtherSessions,
        Route::ResetRequest,
        Route::ResetVerifyOtp,
        Route::ResetConfirm,
        Route::Jwks,
        Route::Schema,
        Route::Swagger,
        Route::Redoc,
    ];

    /// A new variant does not compile until it is placed here, and so in `CONTRACT_ROUTES`.
    fn in_contract(route: Route) -> bool {
        match route {
            Route::DocsAsset => false,
            Route::Register
            | Route::Activation
            | Route::ResendActivation
            | Route::ListUsers
            | Route::JwtCreate
            | Route::JwtRefresh
            | Route::JwtVerify
            | Route::Logout
            | Route::Me
            | Route::PatchMe
            | Route::DeleteMe
            | Route::SetUsername
            | Route::SetPassword
            | Route::ListSessions
            | Route::RevokeSession
            | Route::RevokeOtherSessions
            | Route::ResetRequest
            | Route::ResetVerifyOtp
            | Route::ResetConfirm
            | Route::Jwks
            | Route::Schema
            | Route::Swagger
            | Route::Redoc => CONTRACT_ROUTES.contains(&route),
        }
    }

    #[test]
    fn docs_api_md_and_the_routing_table_agree() {
        let contract = include_str!("../../docs/api.md");
        let mut documented = Vec::new();
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
                        let route = resolve(method, path).unwrap_or_else(|miss| {
                            panic!("docs/api.md: {method} {path}: {miss:?}")
                        });
                        if !documented.contains(&route) {
                            documented.push(route);
                        }
                    }
                }
            }
        }
        for route in CONTRACT_ROUTES {
            assert!(in_contract(route));
            assert!(
                documented.contains(&route),
                "{route:?} is routed but has no row in docs/api.md"
            );
        }
        for route in &documented {
            assert!(
                CONTRACT_ROUTES.contains(route),
                "{route:?} has a row but is not a contract route"
            );
        }
        assert_eq!(documented.len(), CONTRACT_ROUTES.len(), "{documented:?}");
    }

    #[test]
    fn misses() {
        assert_eq!(resolve("GET", "/api/auth/nope/"), Err(Miss::NotFound));
        assert_eq!(resolve("GET", "/api/auth/users//"), Err(Miss::NotFound));
        assert_eq!(
            resolve("DELETE", "/api/auth/sessions//"),
            Err(Miss::NotFound)
        );
        assert_eq!(
            resolve("DELETE", "/api/auth/sessions/a/b/"),
            Err(Miss::NotFound)
        );
        assert_eq!(
            resolve("GET", "/api/auth/sessions/x/"),
            Err(Miss::MethodNotAllowed {
                allow: "DELETE, OPTIONS"
            })
        );
        assert_eq!(
            resolve("DELETE", "/api/auth/sessions/revoke-others/"),
            Err(Miss::MethodNotAllowed {
                allow: "POST, OPTIONS"
            })
        );
        assert_eq!(session_id("/api/auth/sessions/abc/"), Some("abc"));
        assert_eq!(
            resolve("PUT", "/api/auth/me/"),
            Err(Miss::MethodNotAllowed {
                allow: "GET, PATCH, DELETE, OPTIONS"
            })
        );
        assert_eq!(
            resolve("GET", "/api/auth/jwt/create/"),
            Err(Miss::MethodNotAllowed {
                allow: "POST, OPTIONS"
            })
        );
    }
}
