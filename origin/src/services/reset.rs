//! Password reset, origin side: emailing a code the edge generated, and setting the new
//! password with a single-use reset token.

use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use shared::otp::OtpCode;
use shared::validate::Email;

use super::{Error, Result};
use crate::state::AppState;
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason};
use crate::store::{activations, outbox, resets, users};

/// Queues the email with `code` only when an active account, or one waiting for activation, has
/// `email`, in the transaction that records the request. The outcome is the same either way,
/// so a caller cannot tell (and cannot answer differently) whether the account exists. A
/// waiting account is included so the address's owner can claim it from whoever signed up
/// with it (see [`confirm`]).
pub async fn send_code(state: &AppState, email: &Email, code: &OtpCode) -> Result<()> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(user) = users::by_email(&tx, email.as_str())
        .await?
        .filter(claimable)
    {
        let message = state
            .templates
            .password_reset(&user.email, &user.username, code)?;
        outbox::enqueue(&tx, &message).await?;
        audit::record(&tx, Some(user.id), Event::ResetRequested, json!({})).await?;
        tx.commit().await?;
        super::email_queued(state);
    }
    Ok(())
}

/// Whether a reset can set the account's password: an active account, or one waiting for
/// activation (not one an operator deactivated).
fn claimable(user: &users::User) -> bool {
    user.is_active || user.pending_activation
}

/// Sets `new_password` for the account the reset token names: the token is spent, every token
/// of the account outdated and every refresh family revoked. An account waiting for activation
/// is activated by it: whoever holds the reset token proved they read the address's mail, so
/// the address's owner can take an account someone else signed up with in their name, with a
/// password of their own (the one chosen at sign-up is gone).
pub async fn confirm(
    state: &AppState,
    reset_token: &str,
    new_password: SecretString,
) -> Result<()> {
    let claims = state
        .tokens
        .resets
        .verify(reset_token, Utc::now().timestamp())
        .map_err(|e| {
            tracing::debug!(reason = %e, "reset token refused");
            Error::ResetTokenNotValid
        })?;
    // The connection goes back to the pool before the hash waits in its queue. Single use is
    // enforced atomically under the transaction below (`resets::consume`).
    let user = {
        let client = state.pool.get().await?;
        let user = users::by_email(&client, &claims.email)
            .await?
            .filter(claimable)
            .ok_or(Error::ResetTokenNotValid)?;
        // A token minted before the last password change is spent, whoever changed it.
        if claims.iat < user.password_changed_at.timestamp()
            || resets::is_used(&client, &claims.jti).await?
        {
            return Err(Error::ResetTokenNotValid);
        }
        user
    };
    let hash = super::new_password_hash(state, &user, new_password).await?;

    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !resets::consume(&tx, &claims.jti, user.id).await? {
        return Err(Error::ResetTokenNotValid);
    }
    users::set_password(&tx, user.id, &hash, users::Tokens::Outdate).await?;
    if user.pending_activation && users::activate(&tx, user.id).await? {
        activations::remove(&tx, user.id).await?;
        audit::record(
            &tx,
            Some(user.id),
            Event::Activated,
            json!({ "by": "reset" }),
        )
        .await?;
    }
    let revoked = tokens::revoke_all(&tx, user.id, RevokeReason::PasswordReset).await?;
    audit::record(
        &tx,
        Some(user.id),
        Event::ResetCompleted,
        json!({ "families_revoked": revoked }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
