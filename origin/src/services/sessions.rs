//! The account owner's view of their sessions (one per login: a refresh family): the list, and
//! ending one or all but the caller's. Ending a session revokes its family, so its refresh token
//! is refused at once; access tokens already issued in it live until they expire.

use serde_json::json;
use uuid::Uuid;

use super::{Error, Result};
use crate::db::Pool;
use crate::store::audit::{self, Event};
use crate::store::tokens::{self, RevokeReason, Session};

/// The live sessions of `user_id`, the most recently used first.
pub async fn list(pool: &Pool, user_id: i64) -> Result<Vec<Session>> {
    let client = pool.get().await?;
    Ok(tokens::live_sessions(&client, user_id).await?)
}

/// Ends the session `id` of `user_id` (the caller's own included, as a logout would);
/// [`Error::NoSuchSession`] when it is not a live session of theirs.
pub async fn revoke(pool: &Pool, user_id: i64, id: Uuid) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if !tokens::revoke_owned(&tx, id, user_id, RevokeReason::Owner).await? {
        return Err(Error::NoSuchSession);
    }
    audit::record(
        &tx,
        Some(user_id),
        Event::SessionRevoked,
        json!({ "family": id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of `user_id` but `current` (all of them when the caller's token names
/// none); how many ended.
pub async fn revoke_others(pool: &Pool, user_id: i64, current: Option<Uuid>) -> Result<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let revoked = tokens::revoke_all_but(&tx, user_id, current, RevokeReason::Owner).await?;
    audit::record(
        &tx,
        Some(user_id),
        Event::SessionsRevoked,
        json!({ "by": "owner", "families_revoked": revoked, "kept_current": current.is_some() }),
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}
