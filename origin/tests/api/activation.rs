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
    // The last hex digit changed (never to itself).
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
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

/// Someone signs up with another person's address and never activates: the account (the
/// squat) is deleted `PENDING_ACCOUNT_DAYS` after sign-up, as a deletion takes it (its unsent
/// mail dropped, an audit row), and the address is free again. A fresh one and an active one
/// stay.
#[tokio::test]
async fn accounts_that_never_activate_are_deleted_after_the_pending_days() {
    let (app, sink) = app_with_activation().await;
    for (email, username) in [
        ("squat@example.com", "squat"),
        ("fresh@example.com", "fresh"),
    ] {
        let reply = app.register(email, username, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    sink.wait_for(2, Duration::from_secs(10)).await;
    app.sql(
        "UPDATE users SET date_joined = now() - interval '8 days' WHERE email = 'squat@example.com';
         INSERT INTO email_outbox (kind, to_address, subject, body_text, body_html) VALUES
           ('activation', 'squat@example.com', 's', 't', 'h')",
    )
    .await;
    // An active account as old is not touched.
    app.sql(
        "INSERT INTO users (email, username, password_hash, role, is_active, date_joined) VALUES
           ('old@example.com', 'old', 'x', 'user', true, now() - interval '30 days')",
    )
    .await;

    let pool = origin::db::pool(&origin::config::DatabaseArgs {
        database_url: secrecy::SecretString::from(app.db.url.clone()),
        database_pool_size: 2,
        database_statements: origin::config::Statements::Named,
        migration_lock_timeout: 5,
    })
    .unwrap();
    let retention = origin::janitor::Retention {
        audit_days: 365,
        lockout_window: Duration::from_secs(3600),
        pending_days: 7,
    };
    let Ok(origin::janitor::Run::Done(purged)) = origin::janitor::run_once(&pool, &retention).await
    else {
        panic!("the janitor ran")
    };
    assert_eq!(purged.pending_accounts, 1);
    let emails = |query: &'static str| {
        let app = &app;
        async move { app.count(query).await }
    };
    assert_eq!(
        emails("SELECT count(*) FROM users WHERE email = 'squat@example.com'").await,
        0
    );
    assert_eq!(emails("SELECT count(*) FROM users").await, 2);
    assert_eq!(
        emails("SELECT count(*) FROM email_outbox WHERE to_address = 'squat@example.com'").await,
        0,
        "no mail keeps the address"
    );
    assert_eq!(
        emails("SELECT count(*) FROM audit_log WHERE event = 'pending_account_expired'").await,
        1
    );
    // The address is free for its owner.
    let reply = app.register("squat@example.com", "owner", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

const OWNER: &str = "198.51.100.1";
const ATTACKER: &str = "203.0.113.66";
const ELSEWHERE: &str = "203.0.113.67";

/// The owner signed up from their network: a resend from elsewhere neither voids their code nor
/// mails anything, and guesses from elsewhere get 2 of its 5 tries, then it is closed to them
/// and still open to the owner's network.
#[tokio::test]
async fn the_owners_code_cannot_be_voided_or_burned_from_elsewhere() {
    let (app, sink) = app_with_activation().await;
    let reply = app
        .send_from(
            OWNER,
            reqwest::Method::POST,
            "/internal/users",
            shared::signing::Identity::Anonymous,
            Some(&json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let (_, _, code) = link_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let from = |network: &'static str, path: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.send_from(
                network,
                reqwest::Method::POST,
                path,
                shared::signing::Identity::Anonymous,
                Some(&body),
            )
            .await
        }
    };
    // A resend from elsewhere: the same 204, nothing mailed, the code stands.
    let resend = from(
        ATTACKER,
        "/internal/users/resend-activation",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing mailed for a resend from elsewhere"
    );
    // Guesses from two other networks: the right code is refused there after 2 of them.
    for network in [ATTACKER, ELSEWHERE, ATTACKER] {
        let reply = from(
            network,
            "/internal/users/activation",
            json!({"email": "ada@example.com", "code": wrong}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    let reply = from(
        ELSEWHERE,
        "/internal/users/activation",
        json!({"email": "ada@example.com", "code": code}),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({"code": ["Invalid or expired code."]}),
        "closed to other networks"
    );
    // Still open to the owner's network.
    let reply = from(
        OWNER,
        "/internal/users/activation",
        json!({"email": "ada@example.com", "code": code}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
}

/// Someone signs up with the owner's address and a password of their own. The email tells the
/// owner the link would activate that password and how to claim the address; a password reset
/// does: it sets the owner's password and activates the account, and the squatter's password
/// and the link are no use any more.
#[tokio::test]
async fn the_addresss_owner_claims_an_account_someone_else_signed_up_with() {
    let (app, sink) = app_with_activation().await;
    let reply = app
        .send_from(
            ATTACKER,
            reqwest::Method::POST,
            "/internal/users",
            shared::signing::Identity::Anonymous,
            Some(
                &json!({"email": "ada@example.com", "username": "squatter", "password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    let email = messages[0].replace("=\r\n", "").replace("\r\n", "\n");
    for told in [
        "If you did not sign up, do not use the link or the code",
        "password whoever signed up chose",
        "deleted in 7 days",
        "ask for a",
        "password reset",
    ] {
        assert!(email.contains(told), "{told:?} not in {email}");
    }
    let (uid, token, _) = link_in(&messages[0]);

    // The owner asks for a reset: the pending account gets the code too.
    let reply = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "ada@example.com", "code": "123456"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reset_mail = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        reset_mail.len(),
        2,
        "the reset email reaches a waiting account"
    );
    let reply = app
        .post(
            "/internal/password-reset/confirm",
            json!({"reset_token": app.reset_token("ada@example.com"),
                   "new_password": "58203917", "re_new_password": "58203917"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.login("ada@example.com", "58203917").await.status,
        StatusCode::OK,
        "the owner's password, active"
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "the squatter's password is gone"
    );
    let reply = activate(&app, json!({"uid": uid, "token": token})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "the link is stale");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE event = 'activated' AND detail->>'by' = 'reset'"
        )
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM activation_codes").await, 0);
}
