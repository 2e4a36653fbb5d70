use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{now, spawn_app, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "58203917";

async fn confirm(app: &TestApp, token: &str, new: &str, re: &str) -> crate::helpers::Reply {
    app.post(
        "/internal/password-reset/confirm",
        json!({"reset_token": token, "new_password": new, "re_new_password": re}),
    )
    .await
}

fn invalid_token() -> serde_json::Value {
    json!({"reset_token": ["Invalid or expired reset token."]})
}

#[tokio::test]
async fn code_is_queued_only_for_active_accounts_with_the_same_answer() {
    let app = spawn_app().await;
    let (id, _, _) = app.signed_up("ada@example.com", "ada").await;
    let known = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "ADA@example.com", "code": "123456"}),
        )
        .await;
    let unknown = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "nobody@example.com", "code": "123456"}),
        )
        .await;
    assert_eq!(
        (known.status, &known.body),
        (StatusCode::ACCEPTED, &json!({}))
    );
    assert_eq!((unknown.status, &unknown.body), (known.status, &known.body));
    assert_eq!(
        app.count("SELECT count(*) FROM email_outbox WHERE to_address = 'ada@example.com'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 1);

    app.sql(&format!(
        "UPDATE users SET is_active = false WHERE id = {id}"
    ))
    .await;
    app.post(
        "/internal/password-reset/code",
        json!({"email": "ada@example.com", "code": "654321"}),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM email_outbox").await, 1);

    let bad = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "nope", "code": "12"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body,
        json!({"email": ["Enter a valid email address."], "code": ["Enter a 6-digit code."]})
    );
}

#[tokio::test]
async fn confirm_sets_the_password_and_ends_every_session() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let token = app.reset_token("ada@example.com");
    let reply = confirm(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);

    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(app.refresh(&refresh).await.status, StatusCode::UNAUTHORIZED);
    // The old access token's `ver` is outdated at the origin at once.
    assert_eq!(app.me(&access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'reset_completed'")
            .await,
        1
    );

    // Single use.
    assert_eq!(
        confirm(&app, &token, "40718263", "40718263").await.body,
        invalid_token()
    );
}

#[tokio::test]
async fn confirm_errors() {
    let app = spawn_app().await;
    let (_, access, _) = app.signed_up("ada@example.com", "ada").await;
    let token = app.reset_token("ada@example.com");

    let reply = confirm(&app, &token, NEW_PASSWORD, "40718263").await;
    assert_eq!(
        reply.body,
        json!({"re_new_password": ["The two password fields didn't match."]})
    );
    let reply = confirm(&app, &token, "739", "739").await;
    assert_eq!(
        reply.body,
        json!({"new_password": ["Password must be exactly 8 digits."]})
    );
    // Neither consumed the token.
    assert_eq!(
        confirm(&app, &token, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let other_secret =
        shared::token::ResetTokens::new(&[9; 32], crate::helpers::audience()).unwrap();
    let forged = other_secret
        .issue("ada@example.com", "j".into(), now(), 900)
        .unwrap();
    assert_eq!(
        confirm(&app, &forged, "40718263", "40718263").await.body,
        invalid_token()
    );
    assert_eq!(
        confirm(&app, &access, "40718263", "40718263").await.body,
        invalid_token()
    );
    assert_eq!(
        confirm(
            &app,
            &app.reset_token("nobody@example.com"),
            "40718263",
            "40718263"
        )
        .await
        .body,
        invalid_token()
    );
    let expired = app
        .resets
        .issue("ada@example.com", "old".into(), now() - 1_000, 900)
        .unwrap();
    assert_eq!(
        confirm(&app, &expired, "40718263", "40718263").await.body,
        invalid_token()
    );
    // Minted before the last password change: spent.
    let stale = app
        .resets
        .issue("ada@example.com", "stale".into(), now() - 120, 900)
        .unwrap();
    assert_eq!(
        confirm(&app, &stale, "40718263", "40718263").await.body,
        invalid_token()
    );

    let reply = app
        .post("/internal/password-reset/confirm", json!({}))
        .await;
    let required = json!(["This field is required."]);
    assert_eq!(
        reply.body,
        json!({"reset_token": required, "new_password": required, "re_new_password": required})
    );
}

#[tokio::test]
async fn parallel_confirms_with_one_token_succeed_once() {
    let app = spawn_app().await;
    app.signed_up("ada@example.com", "ada").await;
    let token = app.reset_token("ada@example.com");
    let replies = futures::future::join_all(
        (0..8).map(|_| confirm(&app, &token, NEW_PASSWORD, NEW_PASSWORD)),
    )
    .await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::NO_CONTENT)
            .count(),
        1
    );
    assert!(replies
        .iter()
        .all(|r| r.status == StatusCode::NO_CONTENT || r.body == invalid_token()));
    assert_eq!(
        app.count("SELECT token_version::bigint FROM users").await,
        1
    );
}
