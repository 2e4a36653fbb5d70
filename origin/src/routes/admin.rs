//! The admin-only user list, paginated like DRF's `PageNumberPagination`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use shared::api::{Page, UserProfile};
use shared::signing::Identity;

use super::profile;
use super::users::current_user;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;
use crate::store::users;

pub const PAGE_SIZE: i64 = 20;
/// The public path the edge serves this list under; `next`/`previous` are relative to it.
const PUBLIC_PATH: &str = "/api/auth/users/";

/// `GET /internal/users?page=N`.
pub async fn list_users(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<UserProfile>>> {
    let requester = current_user(&state, identity).await?;
    if !requester.is_admin() {
        return Err(ApiError::PermissionDenied);
    }
    let page: i64 = match query.get("page") {
        None => 1,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or(ApiError::NotFound("Invalid page."))?,
    };
    let client = state.pool.get().await?;
    let count = users::count(&client).await?;
    let last_page = ((count + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    if page > last_page {
        return Err(ApiError::NotFound("Invalid page."));
    }
    let results = users::page(&client, (page - 1) * PAGE_SIZE, PAGE_SIZE).await?;
    let link = |p: i64| {
        if p == 1 {
            PUBLIC_PATH.to_owned()
        } else {
            format!("{PUBLIC_PATH}?page={p}")
        }
    };
    Ok(Json(Page {
        count,
        next: (page < last_page).then(|| link(page + 1)),
        previous: (page > 1).then(|| link(page - 1)),
        results: results.iter().map(profile).collect(),
    }))
}
