//! Parallel real requests against one origin and database (issue 5, races).

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Options, PASSWORD};

#[tokio::test]
async fn twenty_parallel_registrations_of_one_email_create_one_account() {
    let app = spawn_app().await;
    let replies = join_all((0..20).map(|i| {
        let app = &app;
        async move {
            // Different usernames and letter case: only the email collides.
            let email = if i % 2 == 0 {
                "race@example.com"
            } else {
                "RACE@example.com"
            };
            app.register(email, &format!("racer{i}"), PASSWORD).await
        }
    }))
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one 201");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({"email": ["user with this email address already exists."]})
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn fifty_parallel_refreshes_of_one_token_rotate_it_once() {
    // The grace window is opt-in (default 0); this test is about it.
    let app = spawn_app_with(Options {
        reuse_grace: 10,
        ..Options::default()
    })
    .await;
    let (_, _, refresh) = app.signed_up("rot@example.com", "rot").await;
    let replies = join_all((0..50).map(|_| app.refresh(&refresh))).await;
    let ok: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    // Inside the grace window every caller gets the same rotated token (a retried request);
    // none gets a second child, and no second family appears.
    assert_eq!(ok.len(), 50, "all inside the 10 s grace window");
    let children: std::collections::BTreeSet<_> = ok
        .iter()
        .map(|r| r.body["refresh"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(children.len(), 1, "one child token for all 50");
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_tokens").await,
        2,
        "parent + one child"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_families WHERE revoked_at IS NULL")
            .await,
        1
    );
    // The child works once more, the parent's reuse window is what it was.
    let child = children.into_iter().next().unwrap();
    assert_eq!(app.refresh(&child).await.status, StatusCode::OK);
}

#[tokio::test]
async fn parallel_logins_with_the_wrong_password_count_every_failure() {
    let app = spawn_app().await;
    app.signed_up("lock@example.com", "lock").await;
    let replies = join_all((0..30).map(|_| app.login("lock@example.com", "00000000"))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::UNAUTHORIZED));
    // No lost update under concurrency: the account-wide counter and the (account, network)
    // back-off both saw all 30, and only LOCKOUT_THRESHOLD (5) passwords were actually checked.
    assert_eq!(
        app.count("SELECT failed_logins::bigint FROM users").await,
        30
    );
    assert_eq!(
        app.count("SELECT failures::bigint FROM login_attempts")
            .await,
        30
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'login_failed'")
            .await,
        5
    );
}
