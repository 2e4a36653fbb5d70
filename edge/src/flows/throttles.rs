//! Which throttle scopes count each route, and as whom (docs/api.md, "Throttle scopes").

use shared::throttle::Scope;

use crate::routes::Route;

/// Whom a throttle check counts. Each is counted as soon as the flow knows it: the client on
/// arrival, the user once the Bearer token is verified, the email once the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The client's network (`CF-Connecting-IP`).
    Client,
    /// The user id of a verified access token.
    User,
    /// The normalised email a reset is for: nobody can make us mail one inbox more than the
    /// rate allows, whatever networks they ask from. Guessing is bounded per code instead
    /// (`OtpRecord::attempt`).
    Email,
}

/// The checks of `route`, in the order they are counted.
pub fn checks(route: Route) -> &'static [(Scope, Who)] {
    use Scope::{Anon, Auth, PasswordReset, PasswordResetAll, PasswordResetProvider};
    use Scope::{PasswordResetSite, User};
    match route {
        Route::JwtVerify => &[(Anon, Who::Client)],
        Route::Register | Route::JwtCreate | Route::JwtRefresh => {
            &[(Anon, Who::Client), (Auth, Who::Client)]
        }
        Route::Logout
        | Route::Me
        | Route::PatchMe
        | Route::DeleteMe
        | Route::SetUsername
        | Route::SetPassword
        | Route::ListSessions
        | Route::RevokeSession
        | Route::RevokeOtherSessions
        | Route::ListUsers => &[(User, Who::User)],
        // Account activation is guarded as the reset codes are; a resend mails an inbox, and
        // shares the reset request's per-email budget (one bound on mails to one inbox).
        Route::ResetRequest | Route::ResendActivation => &[
            (Anon, Who::Client),
            (PasswordReset, Who::Client),
            (PasswordResetSite, Who::Client),
            (PasswordResetProvider, Who::Client),
            (PasswordResetAll, Who::Client),
            (PasswordReset, Who::Email),
        ],
        // Every code guess (and every request that makes a code) is counted per client, per
        // site, per provider and once for the whole service: the last is the bound on guesses
        // per hour from everywhere (docs/security.md).
        Route::ResetVerifyOtp | Route::ResetConfirm | Route::Activation => &[
            (Anon, Who::Client),
            (PasswordReset, Who::Client),
            (PasswordResetSite, Who::Client),
            (PasswordResetProvider, Who::Client),
            (PasswordResetAll, Who::Client),
        ],
        Route::Jwks | Route::Schema | Route::Swagger | Route::Redoc | Route::DocsAsset => &[],
    }
}
