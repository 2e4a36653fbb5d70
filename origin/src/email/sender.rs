//! The background sender: claims due outbox rows, sends them, marks each sent or schedules a
//! retry with exponential backoff. Rows are never deleted, so nothing is lost when SMTP is down;
//! a row with an expiry (a reset code) is abandoned, its body erased, once it has expired.

use std::sync::Arc;
use std::time::Duration;

use crate::db::Pool;
use tokio::sync::Notify;

use super::Mailer;
use crate::metrics::{Email, Metrics};
use crate::store::outbox;

const BATCH: i64 = 20;
/// Retry delays: 1 s, 2 s, 4 s, … capped at five minutes.
const MAX_BACKOFF_SECS: f64 = 300.0;
/// Wake-up interval when idle (rows written by another origin instance, or retries due).
const IDLE_POLL: Duration = Duration::from_secs(5);

pub fn backoff_secs(attempts_so_far: i32) -> f64 {
    2f64.powi(attempts_so_far.clamp(0, 16))
        .min(MAX_BACKOFF_SECS)
}

/// Runs until the process ends. `wake` is notified when a row is enqueued.
pub async fn run(pool: Pool, mailer: Arc<Mailer>, wake: Arc<Notify>, metrics: Arc<Metrics>) {
    loop {
        let wait = match send_due(&pool, &mailer, &metrics).await {
            Ok(Some(due_in)) => {
                Duration::from_secs_f64(due_in.clamp(0.05, IDLE_POLL.as_secs_f64()))
            }
            Ok(None) => IDLE_POLL,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "email outbox unavailable; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends every due row; returns the seconds until the next pending row is due (or expires).
async fn send_due(pool: &Pool, mailer: &Mailer, metrics: &Metrics) -> anyhow::Result<Option<f64>> {
    loop {
        let mut client = pool.get().await?;
        // Before claiming: a row past its lifetime (a dead reset code) is given up and its
        // bodies blanked, whether or not a retry is due.
        for (id, attempts) in outbox::abandon_expired(&client).await? {
            metrics.email(Email::Expired);
            tracing::warn!(
                outbox_id = id,
                attempts,
                "email expired before delivery; abandoned and its body erased"
            );
        }
        let tx = client.transaction().await?;
        let batch = outbox::claim_due(&tx, BATCH).await?;
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(outbox::next_due_in(&client).await?);
        }
        for email in &batch {
            match mailer
                .send(
                    email.message_id,
                    &email.to,
                    &email.subject,
                    &email.text,
                    &email.html,
                )
                .await
            {
                Ok(()) => {
                    outbox::mark_sent(&tx, email.id).await?;
                    metrics.email(Email::Sent);
                    tracing::info!(
                        outbox_id = email.id,
                        attempts = email.attempts + 1,
                        "email sent"
                    );
                }
                Err(e) => {
                    let retry_in = backoff_secs(email.attempts);
                    outbox::mark_failed(&tx, email.id, &format!("{e:#}"), retry_in).await?;
                    metrics.email(Email::Failed);
                    tracing::warn!(outbox_id = email.id, attempts = email.attempts + 1, retry_in, error = %format!("{e:#}"), "email delivery failed");
                }
            }
        }
        tx.commit().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff_secs(0), 1.0);
        assert_eq!(backoff_secs(1), 2.0);
        assert_eq!(backoff_secs(5), 32.0);
        assert_eq!(backoff_secs(9), 300.0);
        assert_eq!(backoff_secs(1_000), 300.0);
    }
}
