//! The HTTP layer: the internal API the edge calls (all under `/internal`, all signed), the
//! health probes and `/metrics`. A request passes `router` (below: one row per internal route),
//! the signature middleware (`signature`), the extractors a handler names (`extract`), the
//! handler (one module per resource), and comes back through `error`, the one place a failure
//! becomes a response.

pub mod admin;
pub mod error;
pub mod extract;
pub mod health;
pub mod monitoring;
pub mod password_reset;
pub mod sessions;
pub mod signature;
pub mod tokens;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::{middleware, Router};
use shared::api::{UserProfile, MAX_BODY_BYTES};
use shared::internal::{InternalMethod, InternalRoute};
use shared::problem::Problem;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::store::users::User;

/// The handler of each internal route, with the route's own method: a route of the contract
/// without a handler here does not compile, and the method cannot disagree with the edge's.
fn internal_handler(route: InternalRoute) -> MethodRouter<AppState> {
    let filter = match route.method() {
        InternalMethod::Get => MethodFilter::GET,
        InternalMethod::Post => MethodFilter::POST,
        InternalMethod::Patch => MethodFilter::PATCH,
        InternalMethod::Delete => MethodFilter::DELETE,
    };
    match route {
        InternalRoute::Register => on(filter, users::register),
        InternalRoute::Activate => on(filter, users::activate),
        InternalRoute::ResendActivation => on(filter, users::resend_activation),
        InternalRoute::ListUsers => on(filter, admin::list_users),
        InternalRoute::Login => on(filter, tokens::login),
        InternalRoute::Refresh => on(filter, tokens::refresh),
        InternalRoute::Logout => on(filter, tokens::logout),
        InternalRoute::VerifyRefresh => on(filter, tokens::verify),
        InternalRoute::Me => on(filter, users::me),
        InternalRoute::PatchMe => on(filter, users::patch_me),
        InternalRoute::DeleteMe => on(filter, users::delete_me),
        InternalRoute::SetUsername => on(filter, users::set_username),
        InternalRoute::SetPassword => on(filter, users::set_password),
        InternalRoute::ListSessions => on(filter, sessions::list),
        InternalRoute::RevokeSession => on(filter, sessions::revoke),
        InternalRoute::RevokeOtherSessions => on(filter, sessions::revoke_others),
        InternalRoute::SendResetCode => on(filter, password_reset::send_code),
        InternalRoute::ResetConfirm => on(filter, password_reset::confirm),
    }
}

pub fn router(state: AppState) -> Router {
    let internal = InternalRoute::ALL
        .iter()
        .copied()
        .fold(Router::new(), |router, route| {
            // Routes sharing a path (`/users`, `/me`) merge into one method router.
            router.route(route.nested_path(), internal_handler(route))
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            signature::require_edge_signature,
        ));
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .nest(InternalRoute::PREFIX, internal)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            monitoring::track,
        ))
        .fallback(|| async { error::render(&Problem::NotFound) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::make_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// The operational listener's routes (METRICS_BIND): `/metrics`, and nothing the edge calls.
pub fn operations_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(monitoring::scrape))
        .fallback(|| async { error::render(&Problem::NotFound) })
        .with_state(state)
}

/// The public shape of a user (`me/` and the admin list).
pub fn profile(user: &User) -> UserProfile {
    UserProfile {
        id: user.id,
        email: user.email.clone(),
        username: user.username.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        role: user.role.clone(),
        date_joined: drf_datetime(user.date_joined),
    }
}

/// A time as DRF renders a `DateTimeField`: UTC, ISO 8601 with microseconds and a `Z`.
pub fn drf_datetime(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
