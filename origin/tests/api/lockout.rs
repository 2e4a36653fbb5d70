//! Login back-off per (account, client network) and the account-wide wall (issue: "the lockout
//! check races" and "100 wrong logins an hour keep an account locked even for its owner").

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{now, spawn_app_with, Options, TestApp, PASSWORD};

const EMAIL: &str = "ada@example.com";
const WRONG: &str = "58203917";
const OWNER_HOME: &str = "198.51.100.1";
const ATTACKER: &str = "203.0.113.66";

async fn registered(app: &TestApp) -> i64 {
    let reply = app.register(EMAIL, "ada", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

async fn events(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM audit_log WHERE event = '{event}'"
    ))
    .await
}

#[tokio::test]
async fn a_parallel_burst_of_guesses_cannot_outrun_the_count() {
    // One hashing thread: the burst queues behind it, as under a real flood.
    let app = spawn_app_with(Options {
        lockout_threshold: 5,
        argon2_threads: 1,
        ..Options::default()
    })
    .await;
    let id = registered(&app).await;
    let burst = join_all((0..40).map(|_| app.login_from(ATTACKER, EMAIL, WRONG)));
    let right = async {
        // While the wrong guesses are still waiting for the single hashing thread.
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.login_from(ATTACKER, EMAIL, PASSWORD).await
    };
    let (wrong, right) = futures::join!(burst, right);
    assert!(wrong.iter().all(|r| r.status == StatusCode::UNAUTHORIZED));
    assert_eq!(right.status, StatusCode::UNAUTHORIZED, "{}", right.body);
    assert_eq!(
        right.body,
        json!({"detail": "No active account found with the given credentials"})
    );
    // Every attempt is audited once; only the first LOCKOUT_THRESHOLD were checked.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} \
             AND event IN ('login_failed', 'login_locked')"
        ))
        .await,
        41
    );
    assert_eq!(events(&app, "login_failed").await, 5);
    assert_eq!(events(&app, "login_ok").await, 0);
    assert_eq!(
        app.count("SELECT failures::bigint FROM login_attempts")
            .await,
        41
    );
}

#[tokio::test]
async fn an_attacker_network_does_not_lock_out_the_owner() {
    let app = spawn_app_with(Options {
        lockout_threshold: 3,
        lockout_account_threshold: 10,
        ..Options::default()
    })
    .await;
    registered(&app).await;
    // The owner's usual network: it has logged in before.
    assert_eq!(
        app.login_from(OWNER_HOME, EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
    // One attacker network guesses past its threshold and is refused even the right password.
    for _ in 0..4 {
        app.login_from(ATTACKER, EMAIL, WRONG).await;
    }
    assert_eq!(
        app.login_from(ATTACKER, EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The owner: from home, and from a network never seen while the account-wide count is low.
    assert_eq!(
        app.login_from(OWNER_HOME, EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.login_from("192.0.2.10", EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );

    // A distributed attack: many networks, each under its own threshold, together past the
    // account-wide one.
    for n in 0..5 {
        for _ in 0..3 {
            app.login_from(&format!("203.0.113.{n}"), EMAIL, WRONG)
                .await;
        }
    }
    assert!(app.count("SELECT failed_logins::bigint FROM users").await >= 10);
    let walled = "SELECT count(*) FROM audit_log WHERE event = 'login_locked' \
                  AND detail->>'reason' = 'account_wall'";
    // The attack's own last guesses already hit the wall (their networks are unknown).
    let walled_before = app.count(walled).await;
    assert!(walled_before > 0);
    // Now a network that never logged in is walled off, with the usual answer…
    let fresh = app.login_from("192.0.2.99", EMAIL, PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::UNAUTHORIZED, "{}", fresh.body);
    assert_eq!(
        fresh.body,
        json!({"detail": "No active account found with the given credentials"})
    );
    assert_eq!(app.count(walled).await, walled_before + 1);
    // …while the owner's known networks still log in.
    assert_eq!(
        app.login_from(OWNER_HOME, EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.login_from("192.0.2.10", EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_back_off_grows_with_every_attempt_and_then_lets_the_network_in() {
    let app = spawn_app_with(Options {
        lockout_threshold: 2,
        lockout_window: Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    registered(&app).await;
    for _ in 0..2 {
        app.login_from(ATTACKER, EMAIL, WRONG).await;
    }
    let last_checked_failure = Instant::now();
    // 2 failures recorded: the next attempt waits 1 s. Refused, and counted.
    let refused = app.login_from(ATTACKER, EMAIL, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // Another network is not affected.
    assert_eq!(
        app.login_from(OWNER_HOME, EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
    // After 1 s: 3 attempts are recorded now, so the wait has grown to 2 s.
    tokio::time::sleep_until((last_checked_failure + Duration::from_millis(1_300)).into()).await;
    assert_eq!(
        app.login_from(ATTACKER, EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // 4 recorded: 4 s after the last checked failure the network is let in again.
    tokio::time::sleep_until((last_checked_failure + Duration::from_millis(4_300)).into()).await;
    let reply = app.login_from(ATTACKER, EMAIL, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(events(&app, "login_locked").await, 2);
    assert_eq!(
        app.count(&format!(
            "SELECT failures::bigint FROM login_attempts WHERE network = '{ATTACKER}'"
        ))
        .await,
        0,
        "a success resets the pair"
    );
}

#[tokio::test]
async fn a_completed_password_reset_clears_the_lockout() {
    let app = spawn_app_with(Options {
        lockout_threshold: 3,
        ..Options::default()
    })
    .await;
    registered(&app).await;
    for _ in 0..4 {
        app.login_from(ATTACKER, EMAIL, WRONG).await;
    }
    assert_eq!(
        app.login_from(ATTACKER, EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = app
        .resets
        .issue(EMAIL, uuid::Uuid::new_v4().simple().to_string(), now(), 900)
        .unwrap();
    let reply = app
        .post(
            "/internal/password-reset/confirm",
            json!({"reset_token": token, "new_password": "64829173", "re_new_password": "64829173"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.count("SELECT coalesce(sum(failures), 0)::bigint FROM login_attempts")
            .await,
        0
    );
    let reply = app.login_from(ATTACKER, EMAIL, "64829173").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// The owner's right `current_password` (set_username, account deletion) is not a failure:
/// after more successes than the threshold, their next password check from the same network is
/// answered, not backed off, and the counts are where they were.
#[tokio::test]
async fn a_right_current_password_is_not_counted_as_a_failure() {
    let app = spawn_app_with(Options {
        lockout_threshold: 2,
        lockout_account_threshold: 2,
        lockout_window: Duration::from_secs(600),
        ..Options::default()
    })
    .await;
    registered(&app).await;
    let login = app.login_from(OWNER_HOME, EMAIL, PASSWORD).await;
    let identity = app.identity(login.body["access"].as_str().unwrap());
    for n in 0..4 {
        let reply = app
            .send_from(
                OWNER_HOME,
                reqwest::Method::POST,
                "/internal/me/username",
                identity,
                Some(&json!({"new_username": format!("ada{n}"), "current_password": PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{n}: {}", reply.body);
    }
    assert_eq!(
        app.count(&format!(
            "SELECT failures::bigint FROM login_attempts WHERE network = '{OWNER_HOME}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count("SELECT failed_logins::bigint FROM users").await,
        0
    );
    // From another network too: the account-wide count did not wall it off.
    assert_eq!(
        app.login_from(ATTACKER, EMAIL, PASSWORD).await.status,
        StatusCode::OK
    );
    let reply = app
        .send_from(
            OWNER_HOME,
            reqwest::Method::DELETE,
            "/internal/me",
            identity,
            Some(&json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
}

/// A login for an unknown email does the writes a known email's does before its hash (the
/// attempt counted per network, committed), and an inactive account's is audited as a wrong
/// password is: the work, so the time, does not tell which emails have accounts. The
/// benchmark's login-timing rows measure the times.
#[tokio::test]
async fn an_unknown_email_costs_the_writes_of_a_known_one() {
    let app = spawn_app_with(Options::default()).await;
    let id = registered(&app).await;
    for _ in 0..3 {
        let reply = app.login_from(ATTACKER, "nobody@example.com", WRONG).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    app.login_from(OWNER_HOME, "nobody@example.com", WRONG)
        .await;
    assert_eq!(
        app.count(&format!(
            "SELECT attempts FROM unknown_login_attempts WHERE network = '{ATTACKER}'"
        ))
        .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM unknown_login_attempts")
            .await,
        2
    );
    // Unknown emails never touch an account's counts.
    assert_eq!(app.count("SELECT count(*) FROM login_attempts").await, 0);

    app.sql(&format!(
        "UPDATE users SET is_active = false WHERE id = {id}"
    ))
    .await;
    let reply = app.login_from(OWNER_HOME, EMAIL, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'login_failed' \
             AND detail->>'reason' = 'inactive'"
        ))
        .await,
        1
    );
}
