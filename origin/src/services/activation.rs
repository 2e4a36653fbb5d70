//! Email verification at sign-up (Djoser's activation, SEND_ACTIVATION_EMAIL): a new account is
//! inactive until activated by the emailed link (`{uid}/{token}`, `shared::activation`) or the
//! emailed 6-digit code (the reset codes' rules: hashed, 5 attempts, 10 minutes). Only an
//! account still waiting can be activated; an operator's deactivation is not undone here.

use chrono::Utc;
use rand_core::OsRng;
use serde_json::json;
use shared::activation::{decode_uid, encode_uid};
use shared::otp::{self, OtpCode, OTP_MAX_ATTEMPTS, OTP_OTHER_NETWORK_ATTEMPTS, OTP_TTL_SECS};
use shared::validate::Email;

use super::{Error, Result};
use crate::config::Activation;
use crate::db::Sql;
use crate::state::AppState;
use crate::store::audit::{self, Event};
use crate::store::users::{self, User};
use crate::store::{activations, outbox};

/// Queues the activation email of `user` (a new code and a new link), asked for from `network`,
/// in the caller's transaction; the caller wakes the sender after committing. `false` (nothing
/// queued) when a live code asked for from another network stands: a resend from elsewhere
/// cannot void the owner's code (`activations::replace`).
pub async fn queue_email(
    state: &AppState,
    activation: &Activation,
    client: &impl Sql,
    user: &User,
    network: &str,
) -> Result<bool> {
    let code = OtpCode::generate(&mut OsRng);
    let email_key = user.email.to_lowercase();
    let hash = otp::hash(activation.keys.code_secret(), &email_key, &code);
    if !activations::replace(
        client,
        user.id,
        &hash,
        OTP_TTL_SECS,
        network,
        OTP_MAX_ATTEMPTS as i32,
    )
    .await?
    {
        return Ok(false);
    }
    let token = activation
        .keys
        .token(user.id, &email_key, Utc::now().timestamp());
    let link = activation.link(&encode_uid(user.id), &token);
    let message = state.templates.activation(
        &user.email,
        &user.username,
        &link,
        &code,
        activation.pending_days,
    )?;
    outbox::enqueue(client, &message).await?;
    Ok(true)
}

/// `{uid, token}`: activates the account the link names. [`Error::ActivationUidInvalid`] only
/// for a uid that is not an encoded id at all (which tells nothing about accounts);
/// [`Error::ActivationTokenInvalid`] alike for a uid that names no account, a token that was not
/// made for it or expired, and every link while activation is off, so the answer never tells
/// which ids exist. [`Error::ActivationStale`] for a valid link of an account not waiting for
/// activation (only the link's holder can learn that).
pub async fn with_token(state: &AppState, uid: &str, token: &str) -> Result<()> {
    let id = decode_uid(uid).ok_or(Error::ActivationUidInvalid)?;
    let Some(activation) = &state.activation else {
        return Err(Error::ActivationTokenInvalid);
    };
    let mut client = state.pool.get().await?;
    let user = users::by_id(&client, id).await?;
    let now = Utc::now().timestamp();
    // An unknown id is checked against a made-up account, so both cost one MAC.
    let (check_id, email_key) = user
        .as_ref()
        .map_or((0, String::new()), |u| (u.id, u.email.to_lowercase()));
    let valid = activation.keys.check(check_id, &email_key, token, now);
    match user {
        Some(user) if valid => activate(&mut client, &user, "link").await,
        _ => Err(Error::ActivationTokenInvalid),
    }
}

/// `{email, code}` from `network`: activates the account with `email` if `code` is its live
/// code. Every refusal is the same [`Error::ActivationCodeInvalid`]: unknown email, an account
/// not waiting, a wrong, expired or spent code (each attempt counted, 5 at most, of which at
/// most 2 from networks other than the one that asked for the code).
pub async fn with_code(
    state: &AppState,
    email: &Email,
    code: &OtpCode,
    network: &str,
) -> Result<()> {
    let Some(activation) = &state.activation else {
        return Err(Error::ActivationCodeInvalid);
    };
    let mut client = state.pool.get().await?;
    let user = users::by_email(&client, email.as_str())
        .await?
        .filter(|u| u.pending_activation)
        .ok_or(Error::ActivationCodeInvalid)?;
    let stored = activations::attempt(
        &client,
        user.id,
        network,
        OTP_MAX_ATTEMPTS as i32,
        OTP_OTHER_NETWORK_ATTEMPTS as i32,
    )
    .await?
    .ok_or(Error::ActivationCodeInvalid)?;
    if !otp::matches_any(
        activation.keys.code_secrets(),
        &email.lookup_key(),
        code,
        &stored,
    ) {
        return Err(Error::ActivationCodeInvalid);
    }
    activate(&mut client, &user, "code").await
}

/// The account active, its code gone and the step audited, in one transaction.
async fn activate(client: &mut crate::db::Client, user: &User, by: &str) -> Result<()> {
    let tx = client.transaction().await?;
    if !users::activate(&tx, user.id).await? {
        return Err(Error::ActivationStale);
    }
    activations::remove(&tx, user.id).await?;
    audit::record(&tx, Some(user.id), Event::Activated, json!({ "by": by })).await?;
    tx.commit().await?;
    Ok(())
}

/// `resend_activation/` from `network`: a new email (code and link) when an account with
/// `email` is waiting for activation and no live code asked for from another network stands;
/// nothing otherwise. The caller answers the same either way.
pub async fn resend(state: &AppState, email: &Email, network: &str) -> Result<()> {
    let Some(activation) = &state.activation else {
        return Ok(());
    };
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(user) = users::by_email(&tx, email.as_str())
        .await?
        .filter(|u| u.pending_activation)
    else {
        return Ok(());
    };
    if !queue_email(state, activation, &tx, &user, network).await? {
        return Ok(());
    }
    audit::record(&tx, Some(user.id), Event::ActivationResent, json!({})).await?;
    tx.commit().await?;
    super::email_queued(state);
    Ok(())
}
