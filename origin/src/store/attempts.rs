//! The `login_attempts` table: login back-off per (account, client network), and the
//! account-wide failure count (`users.failed_logins`) that walls off unknown networks.
//!
//! An attempt is counted as a failure *before* its password is hashed, in one statement that
//! also decides whether it may be hashed at all. The decision therefore sees every attempt that
//! started before it, so a burst of parallel guesses cannot all read the same stale count and
//! pass the threshold together. A success undoes its own count.

use tokio_postgres::types::Type;

use crate::db::Sql;

/// A network that logged into the account within this many days is "known": the account-wide
/// wall does not apply to it (only its own back-off does).
pub const KNOWN_NETWORK_DAYS: i32 = 30;

/// The limits, from LOCKOUT_THRESHOLD, LOCKOUT_ACCOUNT_THRESHOLD and LOCKOUT_WINDOW.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures of one (account, network) pair before the back-off starts.
    pub threshold: i32,
    /// Failures of the account, from every network, within the window before unknown networks
    /// are refused.
    pub account_threshold: i32,
    /// Longest back-off, and the span of the account-wide count, in seconds.
    pub window_secs: f64,
}

/// What the counting statement decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Check the password.
    Verify,
    /// This network must wait: `min(2^(failures - threshold) s, window)` after its last
    /// checked failure.
    BackOff,
    /// Too many failures on the account from everywhere; this network has not logged in
    /// within `KNOWN_NETWORK_DAYS`.
    AccountWall,
}

impl Decision {
    pub fn refused(self) -> bool {
        self != Self::Verify
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Verify => "none",
            Self::BackOff => "network_backoff",
            Self::AccountWall => "account_wall",
        }
    }
}

/// Counts a login attempt for `user_id` from `network` as a failure and decides whether its
/// password may be checked. The pair's row is locked for the statement (`FOR UPDATE`), so
/// concurrent attempts of one pair are decided one after another, each seeing the counts of all
/// before it. A refused attempt is counted too (the back-off grows with every attempt) but does
/// not move `last_failure_at`, the back-off's starting point: hammering cannot keep a network
/// locked for longer than LOCKOUT_WINDOW after its last checked failure.
pub async fn count_attempt(
    client: &impl Sql,
    user_id: i64,
    network: &str,
    limits: Limits,
) -> Result<Decision, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO login_attempts (user_id, network) VALUES ($1, $2) \
             ON CONFLICT (user_id, network) DO NOTHING",
            &[(&user_id, Type::INT8), (&network, Type::TEXT)],
        )
        .await?;
    // `old` locks the pair and reads the counts as they were (the newest committed version
    // after any wait); both UPDATEs count this attempt. The exponent is capped so power()
    // cannot overflow; the delay is capped by the window anyway.
    let row = client
        .query_one(
            "WITH old AS ( \
                 SELECT failures, last_failure_at, last_success_at FROM login_attempts \
                 WHERE user_id = $1 AND network = $2 FOR UPDATE \
             ), decision AS ( \
                 SELECT old.failures >= $3 AND old.last_failure_at IS NOT NULL \
                        AND old.last_failure_at > now() - make_interval(secs => \
                            least(power(2.0::float8, least(old.failures - $3, 40)::float8), $5)) AS backoff, \
                        $2 <> '' AND old.last_success_at IS NOT NULL \
                        AND old.last_success_at > now() - make_interval(days => $6) AS known \
                 FROM old \
             ), pair AS ( \
                 UPDATE login_attempts a SET failures = a.failures + 1, \
                        last_failure_at = CASE WHEN d.backoff THEN a.last_failure_at ELSE now() END \
                 FROM decision d WHERE a.user_id = $1 AND a.network = $2 RETURNING a.failures \
             ), account AS ( \
                 UPDATE users SET \
                   failed_logins = CASE WHEN failed_logins_since IS NULL \
                                         OR failed_logins_since <= now() - make_interval(secs => $5) \
                                        THEN 1 ELSE failed_logins + 1 END, \
                   failed_logins_since = CASE WHEN failed_logins_since IS NULL \
                                               OR failed_logins_since <= now() - make_interval(secs => $5) \
                                              THEN now() ELSE failed_logins_since END \
                 WHERE id = $1 RETURNING failed_logins \
             ) \
             SELECT d.backoff, d.known, account.failed_logins - 1 >= $4 \
             FROM decision d, pair, account",
            &[
                (&user_id, Type::INT8),
                (&network, Type::TEXT),
                (&limits.threshold, Type::INT4),
                (&limits.account_threshold, Type::INT4),
                (&limits.window_secs, Type::FLOAT8),
                (&KNOWN_NETWORK_DAYS, Type::INT4),
            ],
        )
        .await?;
    let (backoff, known, wall): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    Ok(if backoff {
        Decision::BackOff
    } else if wall && !known {
        Decision::AccountWall
    } else {
        Decision::Verify
    })
}

/// Counts a login for an email no account has, from `network`. It costs what
/// [`count_attempt`] costs a known email (an insert of the pair if new, then one update, each
/// committed before the dummy hash), so the time of the answer does not tell the two apart.
pub async fn count_unknown(client: &impl Sql, network: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO unknown_login_attempts (network) VALUES ($1) ON CONFLICT (network) DO NOTHING",
            &[(&network, Type::TEXT)],
        )
        .await?;
    client
        .execute(
            "UPDATE unknown_login_attempts SET attempts = attempts + 1, last_attempt_at = now() \
             WHERE network = $1",
            &[(&network, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// Undoes the failure [`count_attempt`] counted for an attempt whose password was right (a
/// step that asked for the current password; a login does the same in `tokens::open_family`):
/// the pair's back-off starts over, the network is known, and the account-wide count loses
/// this attempt.
pub async fn undo_for_success(
    client: &impl Sql,
    user_id: i64,
    network: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "WITH pair AS ( \
                 UPDATE login_attempts SET failures = 0, last_success_at = now() \
                 WHERE user_id = $1 AND network = $2 \
             ) \
             UPDATE users SET failed_logins = greatest(failed_logins - 1, 0) WHERE id = $1",
            &[(&user_id, Type::INT8), (&network, Type::TEXT)],
        )
        .await?;
    Ok(())
}
