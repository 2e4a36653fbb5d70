//! Logging in (SimpleJWT's `jwt/create/`): one refusal for an unknown email, a wrong password,
//! an inactive or a locked-out account, each costing one argon2 verification.

use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use shared::api::TokenPair;
use uuid::Uuid;

use super::issue::{access_token, refresh_token};
use super::{Error, Result};
use crate::metrics::Login;
use crate::password::Verified;
use crate::state::AppState;
use crate::store::attempts::{self, Decision};
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, LoginClient};
use crate::store::users::{self, User};

/// A password attempt on an account and its outcome.
pub(super) struct Attempt {
    pub decision: Decision,
    pub verified: Verified,
}

/// Checks `password` against `user`'s hash from `network`. The attempt is counted as a failure,
/// and the lockout decided, before the password is hashed (`attempts::count_attempt`), so
/// parallel guesses cannot outrun the count; no connection is held while the hash waits in its
/// queue. A refused attempt (and one for no account) is verified against the dummy hash: it
/// costs the same time as a check of the real one, and its password is never compared. One for
/// no account is counted too, with writes of the same cost (`attempts::count_unknown`), so the
/// work before the hash does not depend on whether the email has an account. Used by login and
/// by every step that asks for the current password again.
pub(super) async fn attempt(
    state: &AppState,
    user: Option<&User>,
    password: SecretString,
    network: &str,
) -> Result<Attempt> {
    let client = state.pool.get().await?;
    let decision = match user {
        Some(user) => attempts::count_attempt(&client, user.id, network, state.lockout).await?,
        None => {
            attempts::count_unknown(&client, network).await?;
            Decision::Verify
        }
    };
    drop(client);
    let stored = user
        .filter(|_| !decision.refused())
        .map(|u| u.password_hash.clone());
    let verified = state.hasher.verify(password, stored).await?;
    Ok(Attempt { decision, verified })
}

/// A new refresh family and a token pair for the account with `email`, if `password` is its
/// password and the attempt from `from.network` (the client's network, `""` when unknown) is
/// not locked out. The session remembers `from` for its owner's list.
///
/// The attempt is counted as a failure, and the lockout decided, before the password is hashed
/// (`attempts::count_attempt`), so parallel guesses cannot outrun the count. No database
/// connection is held while the hash waits in its queue: a login flood must not starve the
/// pool that `/me`, refresh and the admin list need.
pub async fn login(
    state: &AppState,
    email: &str,
    password: SecretString,
    from: LoginClient<'_>,
) -> Result<TokenPair> {
    let network = from.network;
    let user = {
        let client = state.pool.get().await?;
        users::by_email(&client, email).await?
    };
    let Attempt { decision, verified } =
        attempt(state, user.as_ref(), password.clone(), network).await?;
    let Some(user) = user else {
        // Recorded (without the address tried) so an unknown email costs the same writes as a
        // wrong password: timing does not tell them apart.
        let detail = json!({ "reason": "unknown_account" });
        return Err(refuse(state, None, Event::LoginFailed, detail, Login::Failed).await?);
    };
    if decision.refused() {
        let detail = json!({ "reason": decision.reason() });
        return Err(refuse(
            state,
            Some(user.id),
            Event::LoginLocked,
            detail,
            Login::Locked,
        )
        .await?);
    }
    if !verified.ok {
        // Already counted before hashing.
        return Err(refuse(
            state,
            Some(user.id),
            Event::LoginFailed,
            json!({}),
            Login::Failed,
        )
        .await?);
    }
    if !user.is_active {
        // Audited like a wrong password: the same write, so the same time.
        let detail = json!({ "reason": "inactive" });
        return Err(refuse(
            state,
            Some(user.id),
            Event::LoginFailed,
            detail,
            Login::Failed,
        )
        .await?);
    }
    // Hashed before taking a connection (see above).
    let new_hash = if verified.needs_rehash {
        Some(state.hasher.hash(password).await?)
    } else {
        None
    };

    let client = state.pool.get().await?;
    if let Some(new_hash) = new_hash {
        store_rehash(state, &client, &user, &new_hash).await?;
    }

    let now = Utc::now().timestamp();
    let (family, jti) = (Uuid::new_v4(), Uuid::new_v4());
    let exp = now + state.tokens.refresh_ttl;
    tokens::open_family(
        &client,
        family,
        jti,
        user.id,
        from,
        now,
        exp,
        Event::LoginOk.as_str(),
        &json!({ "family": family }),
    )
    .await?;
    state.metrics.login(Login::Ok);
    Ok(TokenPair {
        refresh: refresh_token(&state.tokens, &user, jti, now, exp)?,
        access: access_token(&state.tokens, &user, now, family)?,
    })
}

/// A refused login: audited and counted, answered with the one error every refusal gets.
async fn refuse(
    state: &AppState,
    user_id: Option<i64>,
    event: Event,
    detail: serde_json::Value,
    outcome: Login,
) -> Result<Error> {
    let client = state.pool.get().await?;
    audit::record(&client, user_id, event, detail).await?;
    state.metrics.login(outcome);
    Ok(Error::InvalidCredentials)
}

/// Replaces an outdated hash (an imported Django one, or older argon2 parameters) with the new
/// one, unless another login did it first; audited once.
async fn store_rehash(
    state: &AppState,
    client: &impl crate::db::Sql,
    user: &users::User,
    new_hash: &str,
) -> Result<()> {
    if users::upgrade_hash(client, user.id, &user.password_hash, new_hash).await? {
        let from = user.password_hash.split('$').next().unwrap_or_default();
        audit::record(
            client,
            Some(user.id),
            Event::PasswordRehashed,
            json!({ "from": if from.is_empty() { "argon2id" } else { from } }),
        )
        .await?;
        state.metrics.rehashed();
    }
    Ok(())
}
