//! The background sender: claims due outbox rows, sends them, marks each sent or schedules a
//! retry with exponential backoff. Rows are never deleted, so nothing is lost when SMTP is down;
//! a row with an expiry (a reset code) is abandoned, its body erased, once it has expired.

use std::sync::Arc;
use std::time::Duration;

use crate::db::Pool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::Mailer;
use crate::metrics::{Email, Metrics};
use crate::store::outbox;

/// Retry delays: 1 s, 2 s, 4 s, … capped at five minutes.
const MAX_BACKOFF_SECS: f64 = 300.0;
/// Wake-up interval when idle (rows written by another origin instance, or retries due).
const IDLE_POLL: Duration = Duration::from_secs(5);

pub fn backoff_secs(attempts_so_far: i32) -> f64 {
    2f64.powi(attempts_so_far.clamp(0, 16))
        .min(MAX_BACKOFF_SECS)
}

/// The sender task and the switch that stops it.
#[derive(Default)]
pub struct Running {
    stop: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Running {
    /// Stops the sender between two emails: the one being sent is finished and recorded
    /// first (bounded by `STOP_LIMIT`; past it the process goes, and that one email may be
    /// sent again by another replica).
    pub async fn stop(self) {
        let Some((stop, task)) = self.stop else {
            return;
        };
        let _ = stop.send(true);
        if tokio::time::timeout(STOP_LIMIT, task).await.is_err() {
            tracing::warn!(
                limit_secs = STOP_LIMIT.as_secs(),
                "email sender still sending at the stop limit; exiting"
            );
        } else {
            tracing::info!("email sender stopped");
        }
    }
}

/// How long a stop waits for the email being sent.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Starts the sender. `wake` is notified when a row is enqueued.
pub fn start(pool: Pool, mailer: Arc<Mailer>, wake: Arc<Notify>, metrics: Arc<Metrics>) -> Running {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(pool, mailer, wake, metrics, stopped));
    Running {
        stop: Some((stop, task)),
    }
}

/// Runs until stopped (or the process ends).
async fn run(
    pool: Pool,
    mailer: Arc<Mailer>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let wait = match send_due(&pool, &mailer, &metrics, &stop).await {
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
            _ = stop.changed() => {}
        }
    }
}

/// Sends every due row; returns the seconds until the next pending row is due (or expires).
async fn send_due(
    pool: &Pool,
    mailer: &Mailer,
    metrics: &Metrics,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Option<f64>> {
    let mut client = pool.get().await?;
    // Before claiming: a row past its lifetime (a dead reset code) is given up and its bodies
    // blanked, whether or not a retry is due.
    for (id, attempts) in outbox::abandon_expired(&client).await? {
        metrics.email(Email::Expired);
        tracing::warn!(
            outbox_id = id,
            attempts,
            "email expired before delivery; abandoned and its body erased"
        );
    }
    while !*stop.borrow() {
        // One row per transaction, committed as soon as the SMTP server has answered: a sender
        // that dies (a replica killed, a crash) leaves at most the one row it was sending to be
        // sent again by another, and only if it died between the server's acceptance and this
        // commit. A batch per transaction resent every row of the batch already delivered.
        let tx = client.transaction().await?;
        let Some(email) = outbox::claim_next(&tx).await? else {
            tx.commit().await?;
            return Ok(outbox::next_due_in(&client).await?);
        };
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
                tx.commit().await?;
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
                tx.commit().await?;
                metrics.email(Email::Failed);
                tracing::warn!(outbox_id = email.id, attempts = email.attempts + 1, retry_in, error = %format!("{e:#}"), "email delivery failed");
            }
        }
    }
    Ok(None)
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
