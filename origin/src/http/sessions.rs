//! The caller's sessions: `GET sessions/`, `DELETE sessions/{id}/` and
//! `sessions/revoke-others/`, answered from `services::sessions`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use shared::api::{SessionInfo, SessionsRevoked};
use shared::signing::SessionId;

use super::drf_datetime;
use super::error::ApiResult;
use super::extract::{family_of, Caller, CurrentUser};
use crate::services::{self, sessions};
use crate::state::AppState;

/// `GET /internal/sessions` — the caller's live sessions, `current` marking theirs.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let listed = sessions::list(&state.pool, caller.user.id).await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|s| SessionInfo {
                id: s.id.hyphenated().to_string(),
                created: drf_datetime(s.created_at),
                last_used: drf_datetime(s.last_used_at),
                user_agent: s.user_agent,
                client_network: s.client_network,
                current: s.id == caller.session,
            })
            .collect(),
    ))
}

/// `DELETE /internal/sessions?id={id}` — ends one of the caller's sessions; 404 for an id that
/// is not a live session of theirs, whatever the reason.
pub async fn revoke(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
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
    caller: Caller,
) -> ApiResult<Json<SessionsRevoked>> {
    let revoked =
        sessions::revoke_others(&state.pool, caller.user.id, Some(caller.session)).await?;
    Ok(Json(SessionsRevoked { revoked }))
}
