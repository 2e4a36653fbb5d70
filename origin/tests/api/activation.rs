//! Email verification at sign-up (SEND_ACTIVATION_EMAIL): `/internal/users/activation` and
//! `/internal/users/resend-activation`, with the email delivered over SMTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{code_in, spawn_app_mailing, Options, SmtpSink, TestApp, PASSWORD};

const URL: &str = "http://t/a/{uid}/{token}";

async fn app_with_activation() -> (TestApp, SmtpSink) {
    spawn_app_mailing(Options {
        activation_url: Some(URL),
        ..Options::default()
    })
    .await
}

/// The `(uid, token)` of the link in `message`, and its code.
fn link_in(message: &str) -> (String, String, String) {
    let at = message.find("http://t/a/").expect("the email has the link") + "http://t/a/".len();
    let rest: String = message[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (uid, token) = rest.split_once('/').expect("uid/token");
    (uid.to_owned(), token.to_owned(), code_in(message))
}

async fn activate(app: &TestApp, body: serde_json::Value) -> crate::helpers::Reply {
    app.post("/internal/users/activation", body).await
}

#[tokio::test]
async fn a_new_account_waits_for_its_link_and_the_link_works_once() {
    let (app, sink) = app_with_activation().await;
    let reply = app.register("ada@example.com", "ada", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_i64().unwrap();
    // Inactive until activated: the login is the one refusal for every case.
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);

    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    let message = &messages[0];
    assert!(
        message.contains("Subject: Activate your account"),
        "{message}"
    );
    assert!(message.contains("To: ada@example.com"), "{message}");
    let (uid, token, _) = link_in(message);
    assert_eq!(uid, shared::activation::encode_uid(id));

    // A uid of no account and a token not for this one: one answer (Djoser tells them apart,
    // which tells which ids exist). A uid that is no encoded id at all keeps Djoser's uid error.
    let invalid_token = json!({"token": ["Invalid token for given user."]});
    let reply = activate(&app, json!({"uid": "OTk5", "token": token})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, invalid_token);
    let forged = format!("{}0", &token[..token.len() - 1]);
    let reply = activate(&app, json!({"uid": uid, "token": forged})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, invalid_token);
    let reply = activate(&app, json!({"uid": "!!", "token": token})).await;
    assert_eq!(
        reply.body,
        json!({"uid": ["Invalid user id or user doesn't exist."]})
    );
    let reply = activate(&app, json!({"uid": uid})).await;
    assert_eq!(reply.body, json!({"token": ["This field is required."]}));

    let reply = activate(&app, json!({"uid": uid, "token": token})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    // Used: Djoser's stale answer; the code of the same email is spent too.
    let reply = activate(&app, json!({"uid": uid, "token": token})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, json!({"detail": "Stale token for given user."}));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'activated' \
             AND detail->>'by' = 'link'"
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM activation_codes").await, 0);
}

#[tokio::test]
async fn the_code_activates_and_refusals_say_nothing_about_the_account() {
    let (app, sink) = app_with_activation().await;
    app.register("ada@example.com", "ada", PASSWORD).await;
    let (_, _, code) = link_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let invalid = json!({"code": ["Invalid or expired code."]});
    // An unknown email and a wrong code: the same answer.
    for body in [
        json!({"email": "nobody@example.com", "code": code}),
        json!({"email": "ada@example.com", "code": wrong}),
    ] {
        let reply = activate(&app, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body, invalid, "{body}");
    }
    let reply = activate(&app, json!({"email": "ADA@example.com", "code": code})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    // Active now: the code is no use any more, with the same answer.
    let reply = activate(&app, json!({"email": "ada@example.com", "code": code})).await;
    assert_eq!(reply.body, invalid);
}

#[tokio::test]
async fn five_wrong_codes_burn_it_and_a_resend_brings_a_new_one() {
    let (app, sink) = app_with_activation().await;
    app.register("ada@example.com", "ada", PASSWORD).await;
    let (_, _, code) = link_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let reply = activate(&app, json!({"email": "ada@example.com", "code": wrong})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    // Burned: the right code is refused too.
    let reply = activate(&app, json!({"email": "ada@example.com", "code": code})).await;
    assert_eq!(reply.body, json!({"code": ["Invalid or expired code."]}));

    // A resend for an unknown email and for the waiting account: 204 both; one email.
    for email in ["nobody@example.com", "ada@example.com"] {
        let reply = app
            .post(
                "/internal/users/resend-activation",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }
    let messages = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().len(),
        2,
        "nothing mailed to an unknown address"
    );
    let (_, _, fresh) = link_in(&messages[1]);
    let reply = activate(&app, json!({"email": "ada@example.com", "code": fresh})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    // An active account gets no more emails.
    let reply = app
        .post(
            "/internal/users/resend-activation",
            json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2);
}

/// An account an operator deactivated cannot activate itself with an old link or a resend.
#[tokio::test]
async fn an_operators_deactivation_is_not_undone_by_activation() {
    let (app, sink) = app_with_activation().await;
    app.register("ada@example.com", "ada", PASSWORD).await;
    let (uid, token, _) = link_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    app.sql("UPDATE users SET is_active = false, pending_activation = false")
        .await;
    let reply = activate(&app, json!({"uid": uid, "token": token})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    app.post(
        "/internal/users/resend-activation",
        json!({"email": "ada@example.com"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// With SEND_ACTIVATION_EMAIL off (the default) accounts are active at once and nothing about
/// activation is mailed.
#[tokio::test]
async fn off_by_default_accounts_are_active_at_once() {
    let (app, sink) = spawn_app_mailing(Options::default()).await;
    app.signed_up("ada@example.com", "ada").await;
    let reply = app
        .post(
            "/internal/users/resend-activation",
            json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = activate(&app, json!({"email": "ada@example.com", "code": "123456"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.messages().is_empty());
}

/// An attacker walking uids through `users/activation/` learns nothing about which ids exist,
/// with activation off (the default) and on: a uid of an account and of none get one answer.
#[tokio::test]
async fn activation_links_do_not_tell_which_ids_exist() {
    let token = format!("{}-{}", i64::MAX, "0".repeat(32));
    let (off, _) = spawn_app_mailing(Options::default()).await;
    let (on, _) = app_with_activation().await;
    for app in [&off, &on] {
        let reply = app.register("ada@example.com", "ada", PASSWORD).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = reply.body["id"].as_i64().unwrap();
        let mut answers = Vec::new();
        for probe in [id, id + 1, id + 1_000] {
            let uid = shared::activation::encode_uid(probe);
            let reply = activate(app, json!({"uid": uid, "token": token})).await;
            answers.push((reply.status, reply.body));
        }
        assert_eq!(answers[0].0, StatusCode::BAD_REQUEST);
        assert_eq!(
            answers[0].1,
            json!({"token": ["Invalid token for given user."]})
        );
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    }
}
