//! The activation codes' hashes: one live code per account waiting for activation.

use tokio_postgres::types::Type;

use crate::db::Sql;

/// Stores the hash of a new code for `user_id`, asked for from `network`, valid `ttl_secs`,
/// unless a live code asked for from another network stands (then nothing changes and `false`
/// is returned): a code is replaced only when it expired, its `max_attempts` are spent, or the
/// same network asks again, so nobody elsewhere can void the owner's code.
pub async fn replace(
    client: &impl Sql,
    user_id: i64,
    code_hash: &[u8],
    ttl_secs: i64,
    network: &str,
    max_attempts: i32,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "INSERT INTO activation_codes (user_id, code_hash, expires_at, network) \
             VALUES ($1, $2, now() + make_interval(secs => $3::bigint), $4) \
             ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, \
             expires_at = EXCLUDED.expires_at, network = EXCLUDED.network, attempts = 0, \
             other_attempts = 0 \
             WHERE activation_codes.expires_at <= now() OR activation_codes.attempts >= $5 \
                OR activation_codes.network = EXCLUDED.network",
            &[
                (&user_id, Type::INT8),
                (&code_hash, Type::BYTEA),
                (&ttl_secs, Type::INT8),
                (&network, Type::TEXT),
                (&max_attempts, Type::INT4),
            ],
        )
        .await?
        == 1)
}

/// Counts an attempt from `network` on the live code of `user_id` and returns its hash to
/// compare, or `None` when there is none for that network: never issued, expired, its
/// `max_attempts` spent, or `max_other` spent by networks other than the one that asked for it
/// (the code stays open to that one). Counted before the comparison, in one statement, so
/// parallel guesses cannot outrun the count.
pub async fn attempt(
    client: &impl Sql,
    user_id: i64,
    network: &str,
    max_attempts: i32,
    max_other: i32,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "UPDATE activation_codes SET attempts = attempts + 1, \
             other_attempts = other_attempts + (network <> $2)::int \
             WHERE user_id = $1 AND expires_at > now() AND attempts < $3 \
               AND (network = $2 OR other_attempts < $4) RETURNING code_hash",
            &[
                (&user_id, Type::INT8),
                (&network, Type::TEXT),
                (&max_attempts, Type::INT4),
                (&max_other, Type::INT4),
            ],
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
