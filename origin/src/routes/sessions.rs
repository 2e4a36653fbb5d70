//! The caller's sessions: `GET sessions/`, `DELETE sessions/{id}/` and
//! `sessions/revoke-others/`, answered from `services::sessions`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use shared::api::{SessionInfo, SessionsRevoked};
use shared::signing::{Identity, SessionId};

use super::drf_datetime;
use super::users::current_user;
use crate::edge_auth::{family_of, session_of};
use crate::error::ApiResult;
use crate::services::{self, sessions};
use crate::state::AppState;

/// `GET /internal/sessions` — the caller's live sessions, `current` marking theirs.
pub async fn list(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let user = current_user(&state, identity).await?;
    let current = session_of(identity);
    let listed = sessions::list(&state.pool, user.id).await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|s| SessionInfo {
                id: s.id.hyphenated().to_string(),
                created: drf_datetime(s.created_at),
                last_used: drf_datetime(s.last_used_at),
                user_agent: s.user_agent,
                client_network: s.client_network,
                current: Some(s.id) == current,
            })
            .collect(),
    ))
}

/// `DELETE /internal/sessions?id={id}` — ends one of the caller's sessions; 404 for an id that
/// is not a live session of theirs, whatever the reason.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let user = current_user(&state, identity).await?;
    let id = query
        .as_deref()
        .and_then(|q| q.strip_prefix("id="))
        .and_then(SessionId::parse)
        .map(family_of)
        .ok_or(services::Error::NoSuchSession)?;
    sessions::revoke(&state.pool, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/sessions/revoke-others` — ends every session of the caller but theirs;
/// `{"revoked": n}`.
pub async fn revoke_others(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> ApiResult<Json<SessionsRevoked>> {
    let user = current_user(&state, identity).await?;
    let revoked = sessions::revoke_others(&state.pool, user.id, session_of(identity)).await?;
    Ok(Json(SessionsRevoked { revoked }))
}
