//! The caller's sessions (`sessions/`).

use serde::{Deserialize, Serialize};

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
