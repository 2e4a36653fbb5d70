//! Retention: the janitor deletes what can no longer matter and nothing that still can (a live
//! refresh token whose ancestors expired keeps working), one run at a time across replicas.

use origin::config::DatabaseArgs;
use origin::janitor::{run_once, Purged, Retention, Run, JANITOR_LOCK};
use reqwest::StatusCode;
use secrecy::SecretString;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_janitor_purges_only_what_cannot_matter_one_run_at_a_time() {
    let app = spawn_app().await;
    let db = app.db.client().await;
    let (ada, _, first) = app.signed_up("ada@example.com", "ada").await;
    // Ada's family: the first token rotated (used) and long expired, its child live.
    let rotated = app.refresh(&first).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let live = rotated.body["refresh"].as_str().unwrap().to_owned();
    db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '2 days' \
         WHERE user_id = $1 AND used_at IS NOT NULL",
        &[&ada],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE refresh_families SET created_at = now() - interval '3 days' WHERE user_id = $1",
        &[&ada],
    )
    .await
    .unwrap();
    // Bob's only family: every token long expired.
    let (bob, _, _) = app.signed_up("bob@example.com", "bob").await;
    db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE user_id = $1",
        &[&bob],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE refresh_families SET created_at = now() - interval '3 days' WHERE user_id = $1",
        &[&bob],
    )
    .await
    .unwrap();
    db.batch_execute(&format!(
        "INSERT INTO password_resets (jti, user_id, used_at) VALUES
           ('old', {bob}, now() - interval '2 days'), ('fresh', {bob}, now());
         INSERT INTO email_outbox (kind, to_address, subject, body_text, body_html, created_at, sent_at, abandoned_at) VALUES
           ('reset', 'a@example.com', 's', 't', 'h', now() - interval '9 days', now() - interval '8 days', NULL),
           ('reset', 'a@example.com', 's', 't', 'h', now() - interval '2 days', now() - interval '1 day', NULL),
           ('reset', 'a@example.com', 's', 't', 'h', now() - interval '9 days', NULL, now() - interval '8 days'),
           ('reset', 'a@example.com', 's', 't', 'h', now() - interval '30 days', NULL, NULL);
         UPDATE audit_log SET at = now() - interval '400 days' WHERE user_id = {bob} AND event = 'register';
         INSERT INTO login_attempts (user_id, network, failures, last_failure_at, last_success_at) VALUES
           ({bob}, 'old', 3, now() - interval '40 days', NULL),
           ({ada}, 'known', 0, NULL, now() - interval '10 days'),
           ({ada}, 'failing', 2, now(), NULL);
         INSERT INTO unknown_login_attempts (network, attempts, last_attempt_at) VALUES
           ('stale', 9, now() - interval '2 hours'), ('busy', 40, now());
         INSERT INTO activation_codes (user_id, code_hash, expires_at) VALUES
           ({bob}, '\\x00', now() - interval '2 days'),
           ({ada}, '\\x01', now() - interval '1 hour');"
    ))
    .await
    .unwrap();
    let count = |table: &'static str| {
        let db = &db;
        async move {
            db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let tables = [
        "refresh_families",
        "refresh_tokens",
        "password_resets",
        "email_outbox",
        "audit_log",
        "login_attempts",
        "unknown_login_attempts",
        "activation_codes",
        "users",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(table).await);
    }

    let pool = origin::db::pool(&DatabaseArgs {
        database_url: SecretString::from(app.db.url.clone()),
        database_pool_size: 2,
        database_statements: origin::config::Statements::Named,
        migration_lock_timeout: 5,
    })
    .unwrap();
    let retention = Retention {
        audit_days: 365,
        lockout_window: std::time::Duration::from_secs(3600),
        pending_days: 7,
    };

    // Another replica's run holds the lock: this one does nothing.
    db.query_one("SELECT pg_advisory_lock($1)", &[&JANITOR_LOCK])
        .await
        .unwrap();
    assert_eq!(run_once(&pool, &retention).await.unwrap(), Run::Busy);
    db.query_one("SELECT pg_advisory_unlock($1)", &[&JANITOR_LOCK])
        .await
        .unwrap();

    let expected = Purged {
        refresh_families: 1,
        refresh_tokens: 1,
        password_resets: 1,
        outbox: 2,
        audit: 1,
        login_attempts: 1,
        unknown_login_attempts: 1,
        activation_codes: 1,
        // Neither account waits for activation.
        pending_accounts: 0,
    };
    assert_eq!(
        run_once(&pool, &retention).await.unwrap(),
        Run::Done(expected)
    );
    // Nothing is left to delete.
    assert_eq!(
        run_once(&pool, &retention).await.unwrap(),
        Run::Done(Purged::default())
    );

    // Exactly what was counted went; everything else stays (ada's family and tokens, the
    // fresh reset id, the recent and the pending emails, the other audit rows, the attempts
    // of known or recently failing networks, the code that expired within the day).
    for ((table, before), (_, purged)) in tables.iter().zip(before).zip(expected.counts()) {
        let purged = i64::try_from(purged).unwrap();
        assert_eq!(count(table).await, before - purged, "{table}");
    }
    // The live token of a family whose first token was purged-eligible still rotates.
    let again = app.refresh(&live).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
}
