//! The email outbox: rows are written with the event and sent by `email::sender`.

use tokio_postgres::types::Type;

use crate::db::Sql;

pub struct OutgoingEmail {
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Not sent after this long from queueing (the row is abandoned and its bodies blanked):
    /// an email whose content is dead, such as an expired reset code, is never delivered late
    /// and its secret does not sit in the table. `None`: retried until sent.
    pub lifetime: Option<std::time::Duration>,
}

/// `last_error` of a row given up because it expired before it could be delivered.
pub const EXPIRED_BEFORE_DELIVERY: &str = "expired before delivery";

pub struct PendingEmail {
    pub id: i64,
    pub message_id: uuid::Uuid,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i32,
}

pub async fn enqueue(
    client: &impl Sql,
    email: &OutgoingEmail,
) -> Result<i64, tokio_postgres::Error> {
    let lifetime = email.lifetime.map(|d| d.as_secs_f64());
    let row = client
        .query_one(
            "INSERT INTO email_outbox (kind, to_address, subject, body_text, body_html, expires_at) \
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING id",
            &[
                (&email.kind, Type::TEXT),
                (&email.to, Type::TEXT),
                (&email.subject, Type::TEXT),
                (&email.text, Type::TEXT),
                (&email.html, Type::TEXT),
                (&lifetime, Type::FLOAT8),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Claims the oldest due row for this transaction (`SKIP LOCKED`: several origins never send
/// one row at the same time), if any.
pub async fn claim_next(client: &impl Sql) -> Result<Option<PendingEmail>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT id, to_address, subject, body_text, body_html, attempts, message_id FROM email_outbox \
             WHERE sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= now() \
               AND (expires_at IS NULL OR expires_at > now()) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?
        .map(|r| PendingEmail {
            id: r.get(0),
            to: r.get(1),
            subject: r.get(2),
            text: r.get(3),
            html: r.get(4),
            attempts: r.get(5),
            message_id: r.get(6),
        }))
}

/// Sent: the bodies (which carry the reset code) are blanked, the row is kept.
pub async fn mark_sent(client: &impl Sql, id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL, \
             body_text = '', body_html = '' WHERE id = $1",
            &[(&id, Type::INT8)],
        )
        .await?;
    Ok(())
}

pub async fn mark_failed(
    client: &impl Sql,
    id: i64,
    error: &str,
    retry_in_secs: f64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE email_outbox SET attempts = attempts + 1, last_error = $2, \
             next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            &[
                (&id, Type::INT8),
                (&error, Type::TEXT),
                (&retry_in_secs, Type::FLOAT8),
            ],
        )
        .await?;
    Ok(())
}

/// Gives up every unsent row past its `expires_at`: marked abandoned, bodies blanked, never
/// claimed again. Returns the ids and their attempts so far (for the log; nothing else).
/// `SKIP LOCKED`: a row being sent right now by another origin is left to that send.
pub async fn abandon_expired(client: &impl Sql) -> Result<Vec<(i64, i32)>, tokio_postgres::Error> {
    Ok(client
        .query(
            "UPDATE email_outbox SET abandoned_at = now(), last_error = $1, body_text = '', body_html = '' \
             WHERE id IN (SELECT id FROM email_outbox \
                          WHERE sent_at IS NULL AND abandoned_at IS NULL AND expires_at <= now() \
                          FOR UPDATE SKIP LOCKED) \
             RETURNING id, attempts",
            &[(&EXPIRED_BEFORE_DELIVERY, Type::TEXT)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Seconds until the next due row or the next expiry, if any row is pending.
pub async fn next_due_in(client: &impl Sql) -> Result<Option<f64>, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT greatest(extract(epoch FROM least(min(next_attempt_at), min(expires_at)) - now()), 0)::float8 \
             FROM email_outbox WHERE sent_at IS NULL AND abandoned_at IS NULL",
            &[],
        )
        .await?
        .get(0))
}

/// Forgets the addresses `emails` (compared case-insensitively) of accounts that are gone:
/// their unsent mail is dropped, then every other row loses the address. Two statements, so in
/// a transaction the second also reaches a row the sender marked sent while the first waited
/// for it.
pub async fn forget_addresses(
    client: &impl Sql,
    emails: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM email_outbox WHERE sent_at IS NULL \
             AND lower(to_address) IN (SELECT lower(e) FROM unnest($1::text[]) e)",
            &[(&emails, Type::TEXT_ARRAY)],
        )
        .await?;
    client
        .execute(
            "UPDATE email_outbox SET to_address = '' \
             WHERE lower(to_address) IN (SELECT lower(e) FROM unnest($1::text[]) e)",
            &[(&emails, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(())
}
