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
        // DRF renders DateTimeField in UTC as ISO 8601 with microseconds and a `Z`.
        date_joined: user
            .date_joined
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}
