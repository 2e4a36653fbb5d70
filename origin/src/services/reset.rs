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
use crate::store::{outbox, resets, users};

/// Queues the email with `code` only when an active account has `email`, in the transaction
/// that records the request. The outcome is the same either way, so a caller cannot tell
/// (and cannot answer differently) whether the account exists.
pub async fn send_code(state: &AppState, email: &Email, code: &OtpCode) -> Result<()> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(user) = users::by_email(&tx, email.as_str())
        .await?
        .filter(|u| u.is_active)
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

/// Sets `new_password` for the account the reset token names: the token is spent, every token
/// of the account outdated and every refresh family revoked.
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
            .filter(|u| u.is_active)
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
