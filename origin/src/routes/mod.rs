//! The internal API the edge calls (all under `/internal`, all signed) and the health probes.

pub mod admin;
pub mod health;
pub mod monitoring;
pub mod password_reset;
pub mod sessions;
pub mod tokens;
pub mod users;

use shared::api::UserProfile;

use crate::store::users::User;

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
