//! The admin-only user list, paginated like DRF's `PageNumberPagination`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use shared::api::{Page, UserProfile};

use super::error::{ApiError, ApiResult};
use super::extract::CurrentAdmin;
use super::profile;
use crate::services::{self, account};
use crate::state::AppState;

/// The public path the edge serves this list under; `next`/`previous` are relative to it.
const PUBLIC_PATH: &str = "/api/auth/users/";

/// `GET /internal/users?page=N`.
pub async fn list_users(
    State(state): State<AppState>,
    _admin: CurrentAdmin,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<UserProfile>>> {
    let page: i64 = match query.get("page") {
        None => 1,
        Some(raw) => raw
            .parse()
            .map_err(|_| ApiError::from(services::Error::NoSuchPage))?,
    };
    let page = account::users_page(&state.pool, page).await?;
    let link = |p: i64| {
        if p == 1 {
            PUBLIC_PATH.to_owned()
        } else {
            format!("{PUBLIC_PATH}?page={p}")
        }
    };
    Ok(Json(Page {
        count: page.count,
        next: (page.page < page.last_page).then(|| link(page.page + 1)),
        previous: (page.page > 1).then(|| link(page.page - 1)),
        results: page.users.iter().map(profile).collect(),
    }))
}
