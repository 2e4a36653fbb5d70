//! The internal API between the edge and the origin, as one table both sides are built from:
//! the origin routes each [`InternalRoute`] to its handler (an exhaustive match, so a route
//! without a handler does not compile) and the edge forwards by naming the route, never by
//! writing its path. Renaming a path here renames it on both sides at once.

/// The HTTP methods of the internal API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InternalMethod {
    Get,
    Post,
    Patch,
    Delete,
}

impl InternalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// Declares [`InternalRoute`] from one row per route, its method and path below
/// [`InternalRoute::PREFIX`]: the enum, [`InternalRoute::ALL`] and the table are the same list, so
/// a route cannot be missing from either.
macro_rules! internal_routes {
    ($($(#[$doc:meta])* $route:ident => ($method:ident, $path:literal),)*) => {
        /// Every route of the origin's signed internal API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum InternalRoute {
            $($(#[$doc])* $route,)*
        }

        impl InternalRoute {
            pub const ALL: &'static [InternalRoute] = &[$(Self::$route,)*];

            /// The method and the path below [`Self::PREFIX`].
            fn entry(self) -> (InternalMethod, &'static str) {
                match self {
                    $(Self::$route => ($method, $path),)*
                }
            }
        }
    };
}

use InternalMethod::{Delete, Get, Patch, Post};

internal_routes! {
    /// Sign-up (Djoser `users/` create).
    Register => (Post, "/users"),
    /// `users/activation/`: `{uid, token}` or `{email, code}`.
    Activate => (Post, "/users/activation"),
    /// `users/resend_activation/`.
    ResendActivation => (Post, "/users/resend-activation"),
    /// The admin's paginated user list (`?page=N`).
    ListUsers => (Get, "/users"),
    /// `jwt/create/`.
    Login => (Post, "/tokens"),
    /// `jwt/refresh/`: rotation with reuse detection.
    Refresh => (Post, "/tokens/refresh"),
    /// `logout/`: revokes the token's family.
    Logout => (Post, "/tokens/logout"),
    /// The revocation half of `jwt/verify/` for refresh tokens.
    VerifyRefresh => (Post, "/tokens/verify"),
    /// `GET me/`.
    Me => (Get, "/me"),
    /// `PATCH me/`.
    PatchMe => (Patch, "/me"),
    /// `DELETE me/`: the account, with its current password.
    DeleteMe => (Delete, "/me"),
    /// `users/set_username/`, with the current password.
    SetUsername => (Post, "/me/username"),
    /// `users/set_password/`, with the current password; ends the caller's other sessions.
    SetPassword => (Post, "/me/password"),
    /// `GET sessions/`: the caller's live sessions.
    ListSessions => (Get, "/sessions"),
    /// `DELETE sessions/{id}/`: one of them, named by `?id=`.
    RevokeSession => (Delete, "/sessions"),
    /// `sessions/revoke-others/`: every one but the caller's.
    RevokeOtherSessions => (Post, "/sessions/revoke-others"),
    /// Emails a reset code the edge generated (only if the account exists).
    SendResetCode => (Post, "/password-reset/code"),
    /// Sets the new password with a reset token.
    ResetConfirm => (Post, "/password-reset/confirm"),
}

impl InternalRoute {
    /// Where the internal API is mounted.
    pub const PREFIX: &'static str = "/internal";

    pub fn method(self) -> InternalMethod {
        self.entry().0
    }

    /// Whether the origin keeps the caller's agent (`X-Client-Agent`): only a login, whose new
    /// session lists it. The edge signs and sends the agent for this route alone, so the hot
    /// paths neither clean it up nor carry it.
    pub fn keeps_client_agent(self) -> bool {
        matches!(self, Self::Login)
    }

    /// The path below [`Self::PREFIX`] (what a router nested at the prefix matches).
    pub fn nested_path(self) -> &'static str {
        self.entry().1
    }

    /// The full path the edge requests (`/internal/users`), with `query` when given.
    pub fn path_and_query(self, query: Option<&str>) -> String {
        match query {
            Some(query) => format!("{}{}?{query}", Self::PREFIX, self.nested_path()),
            None => format!("{}{}", Self::PREFIX, self.nested_path()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_is_listed_once_and_each_method_and_path_names_one_route() {
        let routes: HashSet<_> = InternalRoute::ALL.iter().collect();
        assert_eq!(routes.len(), InternalRoute::ALL.len());
        let endpoints: HashSet<_> = InternalRoute::ALL
            .iter()
            .map(|r| (r.method(), r.nested_path()))
            .collect();
        assert_eq!(endpoints.len(), InternalRoute::ALL.len());
    }

    #[test]
    fn paths_are_absolute_below_the_prefix() {
        for route in InternalRoute::ALL {
            let path = route.nested_path();
            assert!(path.starts_with('/') && !path.ends_with('/'), "{route:?}");
            assert_eq!(
                route.path_and_query(None),
                format!("/internal{path}"),
                "{route:?}"
            );
        }
        assert_eq!(
            InternalRoute::ListUsers.path_and_query(Some("page=2")),
            "/internal/users?page=2"
        );
        assert_eq!(InternalRoute::PatchMe.method().as_str(), "PATCH");
    }
}
