//! The activation codes' hashes: one live code per account waiting for activation.

use tokio_postgres::types::Type;

use crate::db::Sql;

/// Stores the hash of a new code for `user_id`, replacing any earlier one, valid `ttl_secs`.
pub async fn replace(
    client: &impl Sql,
    user_id: i64,
    code_hash: &[u8],
    ttl_secs: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO activation_codes (user_id, code_hash, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3::bigint)) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, \
             expires_at = EXCLUDED.expires_at, attempts = 0",
            &[
                (&user_id, Type::INT8),
                (&code_hash, Type::BYTEA),
                (&ttl_secs, Type::INT8),
            ],
        )
        .await?;
    Ok(())
}

/// Counts an attempt on the live code of `user_id` and returns its hash to compare, or `None`
/// when there is none: never issued, expired, or its `max_attempts` spent. Counted before the
/// comparison, in one statement, so parallel guesses cannot outrun the count.
pub async fn attempt(
    client: &impl Sql,
    user_id: i64,
    max_attempts: i32,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "UPDATE activation_codes SET attempts = attempts + 1 \
             WHERE user_id = $1 AND expires_at > now() AND attempts < $2 RETURNING code_hash",
            &[(&user_id, Type::INT8), (&max_attempts, Type::INT4)],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Removes the code of `user_id` (spent by an activation).
pub async fn remove(client: &impl Sql, user_id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM activation_codes WHERE user_id = $1",
            &[(&user_id, Type::INT8)],
        )
        .await?;
    Ok(())
}
