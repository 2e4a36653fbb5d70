//! Accounts: registration, the current user (`current`, `current_admin`: what the HTTP
//! extractors load), the profile, Djoser's self-service (`delete_account`, `set_username`,
//! `set_password`), the admin list, and the operator's steps (`origin create-superuser`,
//! `set-role`, `deactivate-user`, `reactivate-user`, `revoke-sessions`). The operator's steps take
//! the pool (and the hasher when they hash) rather than the whole application, so the CLI runs
//! them without a server.

use crate::db::Pool;
use secrecy::SecretString;
use serde_json::json;
use shared::validate::{Email, Username};

use super::login::{attempt, Attempt};
use super::{Bearer, Error, Result};
use crate::password::PasswordHasher;
use crate::state::AppState;
use crate::store::attempts;
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason};
use crate::store::users::{self, User};

/// A registration, parsed and checked against the password policy by the caller (the policy's
/// messages belong with the form's other field errors).
pub struct NewAccount {
    pub email: Email,
    pub username: Username,
    pub password: SecretString,
}

/// Djoser's `users/` create: a `user` account. With SEND_ACTIVATION_EMAIL on it waits for
/// activation (inactive), and its activation email is queued in the same transaction, its code
/// bound to the client's `network`.
pub async fn register(state: &AppState, new: NewAccount, network: &str) -> Result<User> {
    let (pool, hasher) = (&state.pool, &state.hasher);
    // The connection goes back to the pool before the hash waits in its queue (a registration
    // flood must not starve other requests of connections), and a fresh one is taken after.
    let taken = {
        let client = pool.get().await?;
        users::taken(&client, new.email.as_str(), new.username.as_str()).await?
    };
    if !taken.is_empty() {
        return Err(Error::Taken(taken));
    }
    let hash = hasher.hash(new.password).await?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // The unique indexes decide races between concurrent registrations of one email.
    let user = users::insert(
        &tx,
        new.email.as_str(),
        new.username.as_str(),
        &hash,
        "user",
        state.activation.is_some(),
    )
    .await?;
    if let Some(activation) = &state.activation {
        super::activation::queue_email(state, activation, &tx, &user, network).await?;
    }
    audit::record(
        &tx,
        Some(user.id),
        Event::Register,
        json!({ "pending_activation": user.pending_activation }),
    )
    .await?;
    tx.commit().await?;
    if state.activation.is_some() {
        super::email_queued(state);
    }
    Ok(user)
}

/// The account a superuser step wrote.
#[derive(Debug, Clone, Copy)]
pub struct Superuser {
    pub id: i64,
    /// False when an account with the email existed and was made admin with this password.
    pub created: bool,
}

/// `create-superuser`: creates the admin, or gives an existing account with that email the
/// `admin` role and this password (the seed command's behaviour). The password is not checked
/// against the policy, as the original command does not.
pub async fn set_superuser(
    pool: &Pool,
    hasher: &PasswordHasher,
    email: &Email,
    username: &Username,
    password: SecretString,
) -> Result<Superuser> {
    let hash = hasher.hash(password).await?;
    let client = pool.get().await?;
    let (id, created) =
        users::upsert_superuser(&client, email.as_str(), username.as_str(), &hash).await?;
    audit::record(
        &client,
        Some(id),
        Event::SuperuserSet,
        json!({ "created": created }),
    )
    .await?;
    Ok(Superuser { id, created })
}

/// What `set_role` changed.
#[derive(Debug, Clone)]
pub struct RoleChange {
    pub id: i64,
    pub from: String,
}

/// Gives the account with `email` the `role` (`admin` or `user`); `None` when there is no such
/// account. Only an actual change is audited.
pub async fn set_role(pool: &Pool, email: &str, role: &str) -> Result<Option<RoleChange>> {
    let client = pool.get().await?;
    let Some((id, from)) = users::set_role(&client, email, role).await? else {
        return Ok(None);
    };
    if from != role {
        audit::record(
            &client,
            Some(id),
            Event::RoleChanged,
            json!({ "from": from, "to": role }),
        )
        .await?;
    }
    Ok(Some(RoleChange { id, from }))
}

/// What an operator's step on one account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminStep {
    pub id: i64,
    /// Whether the account was active before the step.
    pub was_active: bool,
    /// Refresh families (logins) that were live and are now revoked.
    pub sessions_revoked: u64,
}

/// `deactivate-user` / `reactivate-user`: sets `is_active` of the account with `email` (`None`
/// when there is none). Deactivating also ends every session (refresh families revoked, access
/// tokens outdated), so a later reactivation does not bring old logins back. Audited.
pub async fn set_active(pool: &Pool, email: &str, active: bool) -> Result<Option<AdminStep>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some((id, was_active)) = users::set_active(&tx, email, active).await? else {
        return Ok(None);
    };
    let sessions_revoked = if active {
        0
    } else {
        end_sessions(&tx, id).await?
    };
    let event = if active {
        Event::UserReactivated
    } else {
        Event::UserDeactivated
    };
    audit::record(
        &tx,
        Some(id),
        event,
        json!({ "was_active": was_active, "families_revoked": sessions_revoked }),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(AdminStep {
        id,
        was_active,
        sessions_revoked,
    }))
}

/// `revoke-sessions`: ends every session of the account with `email` (`None` when there is
/// none): its refresh families are revoked at once and its access tokens are refused by the
/// origin from now on (the edge's own `/jwt/verify/` accepts them until they expire). Audited.
pub async fn revoke_sessions(pool: &Pool, email: &str) -> Result<Option<AdminStep>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(user) = users::by_email(&tx, email).await? else {
        return Ok(None);
    };
    let sessions_revoked = end_sessions(&tx, user.id).await?;
    audit::record(
        &tx,
        Some(user.id),
        Event::SessionsRevoked,
        json!({ "families_revoked": sessions_revoked }),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(AdminStep {
        id: user.id,
        was_active: user.is_active,
        sessions_revoked,
    }))
}

async fn end_sessions(client: &impl crate::db::Sql, id: i64) -> Result<u64> {
    let revoked = tokens::revoke_all(client, id, RevokeReason::Admin).await?;
    users::bump_token_version(client, id).await?;
    Ok(revoked)
}

/// The account the edge forwarded: still active, with the token version it verified, and the
/// token's session still live. An ended session's access token loses the account's powers at
/// once, not when it expires; and since a session belongs to one account, an access token can
/// never be revived by a new account that gets a deleted one's id.
pub async fn current(pool: &Pool, caller: Bearer) -> Result<User> {
    let client = pool.get().await?;
    match users::by_id_in_session(&client, caller.id, caller.session).await? {
        Some((user, true)) if user.is_active && user.token_version == caller.token_version => {
            Ok(user)
        }
        _ => Err(Error::StaleAccessToken),
    }
}

/// [`current`], which must also be an admin.
pub async fn current_admin(pool: &Pool, caller: Bearer) -> Result<User> {
    let user = current(pool, caller).await?;
    if !user.is_admin() {
        return Err(Error::NotAdmin);
    }
    Ok(user)
}

/// The profile fields a user may change; `None` leaves a field as it is. Role, email and flags
/// are not among them.
pub struct ProfileChanges {
    pub username: Option<Username>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

pub async fn update_profile(pool: &Pool, id: i64, changes: ProfileChanges) -> Result<User> {
    let client = pool.get().await?;
    users::update_profile(
        &client,
        id,
        changes.username.as_ref().map(Username::as_str),
        changes.first_name.as_deref(),
        changes.last_name.as_deref(),
    )
    .await?
    .ok_or(Error::StaleAccessToken)
}

/// The account's own password, asked again before a sensitive step (Djoser's
/// `current_password`). A wrong one counts toward the lockout as a failed login does, and a
/// locked-out network is refused without its password being compared; both are the same field
/// error, audited with the step's name.
async fn confirm_password(
    state: &AppState,
    user: &User,
    current_password: SecretString,
    network: &str,
    step: &'static str,
) -> Result<()> {
    let Attempt { decision, verified } =
        attempt(state, Some(user), current_password, network).await?;
    if decision.refused() || !verified.ok {
        let client = state.pool.get().await?;
        audit::record(
            &client,
            Some(user.id),
            Event::CurrentPasswordRefused,
            json!({ "step": step, "reason": decision.reason() }),
        )
        .await?;
        return Err(Error::CurrentPasswordInvalid);
    }
    // Counted as a failure before hashing; the owner's own password must not back them off.
    let client = state.pool.get().await?;
    attempts::undo_for_success(&client, user.id, network).await?;
    Ok(())
}

/// Djoser's `DELETE users/me/`: with the account's password, the account is deleted (see
/// [`users::delete`] for what goes and what stays).
pub async fn delete_account(
    state: &AppState,
    user: &User,
    current_password: SecretString,
    network: &str,
) -> Result<()> {
    confirm_password(state, user, current_password, network, "delete_account").await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !users::delete(&tx, user.id, &user.email).await? {
        return Err(Error::StaleAccessToken);
    }
    audit::record(
        &tx,
        None,
        Event::AccountDeleted,
        json!({ "user_id": user.id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Djoser's `users/set_username/`: with the account's password, a new username (unique, as at
/// sign-up). Tokens stay valid: the username is not in them.
pub async fn set_username(
    state: &AppState,
    user: &User,
    current_password: SecretString,
    new_username: &Username,
    network: &str,
) -> Result<()> {
    confirm_password(state, user, current_password, network, "set_username").await?;
    let client = state.pool.get().await?;
    users::update_profile(&client, user.id, Some(new_username.as_str()), None, None)
        .await?
        .ok_or(Error::StaleAccessToken)?;
    audit::record(&client, Some(user.id), Event::UsernameChanged, json!({})).await?;
    Ok(())
}

/// What a password change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChanged {
    /// The caller's other sessions, now revoked.
    pub sessions_revoked: u64,
}

/// Djoser's `users/set_password/`: with the account's password, a new one (the policy as at
/// sign-up). Every other session of the account is revoked at once; `session`, the caller's own
/// (from its access token), keeps working, and so do access tokens already issued until they
/// expire (the token version is not bumped: that would end the caller's session too). A token
/// that names no session (issued before sessions were named) keeps none: every session ends.
pub async fn set_password(
    state: &AppState,
    user: &User,
    current_password: SecretString,
    new_password: SecretString,
    network: &str,
    session: Option<uuid::Uuid>,
) -> Result<PasswordChanged> {
    confirm_password(state, user, current_password, network, "set_password").await?;
    let hash = super::new_password_hash(state, user, new_password).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    users::set_password(&tx, user.id, &hash, users::Tokens::Keep).await?;
    let sessions_revoked =
        tokens::revoke_all_but(&tx, user.id, session, RevokeReason::PasswordChange).await?;
    audit::record(
        &tx,
        Some(user.id),
        Event::PasswordChanged,
        json!({ "families_revoked": sessions_revoked, "kept_current": session.is_some() }),
    )
    .await?;
    tx.commit().await?;
    Ok(PasswordChanged { sessions_revoked })
}

/// Accounts per page of the admin list (DRF's `PAGE_SIZE`).
pub const PAGE_SIZE: i64 = 20;

/// One page of the admin list, by id.
pub struct UsersPage {
    /// Accounts in all.
    pub count: i64,
    pub page: i64,
    pub last_page: i64,
    pub users: Vec<User>,
}

/// Page `page` (from 1) of every account; [`Error::NoSuchPage`] past the last one (an empty
/// list still has page 1).
pub async fn users_page(pool: &Pool, page: i64) -> Result<UsersPage> {
    if page < 1 {
        return Err(Error::NoSuchPage);
    }
    let client = pool.get().await?;
    let count = users::count(&client).await?;
    let last_page = ((count + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    if page > last_page {
        return Err(Error::NoSuchPage);
    }
    let users = users::page(&client, (page - 1) * PAGE_SIZE, PAGE_SIZE).await?;
    Ok(UsersPage {
        count,
        page,
        last_page,
        users,
    })
}
