use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::signing::Identity;

use crate::helpers::spawn_app;

#[tokio::test]
async fn me_returns_the_profile() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let reply = app.me(&access).await;
    assert_eq!(reply.status, StatusCode::OK);
    let joined = reply.body["date_joined"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.body,
        json!({"id": id, "email": "ada@example.com", "username": "ada", "first_name": "", "last_name": "",
               "role": "user", "date_joined": joined})
    );
    // DRF's rendering: microseconds and Z.
    assert!(
        joined.ends_with('Z') && joined.len() == "2026-01-01T00:00:00.000000Z".len(),
        "{joined}"
    );
}

#[tokio::test]
async fn anonymous_or_outdated_identity_is_refused() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let Identity::User {
        session: Some(session),
        ..
    } = app.identity(&access)
    else {
        panic!("an access token names its session")
    };
    let session = Some(session);
    let reply = app.me_as(Identity::Anonymous).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"api\"");

    // A token version from before a password reset.
    app.sql(&format!(
        "UPDATE users SET token_version = 1 WHERE id = {id}"
    ))
    .await;
    let reply = app
        .me_as(Identity::User {
            id,
            token_version: 0,
            session,
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["code"], "token_not_valid");
    assert_eq!(
        reply.body["detail"],
        "Given token not valid for any token type"
    );

    // A deactivated account.
    app.sql(&format!(
        "UPDATE users SET is_active = false WHERE id = {id}"
    ))
    .await;
    let reply = app
        .me_as(Identity::User {
            id,
            token_version: 1,
            session,
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A user id that does not exist.
    let reply = app
        .me_as(Identity::User {
            id: id + 99,
            token_version: 0,
            session,
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Active again, with the right version and session: served, so each refusal above had the
    // reason it names.
    app.sql(&format!(
        "UPDATE users SET is_active = true WHERE id = {id}"
    ))
    .await;
    let reply = app
        .me_as(Identity::User {
            id,
            token_version: 1,
            session,
        })
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A token that names no session (minted before sessions were named) is not valid: it
    // would be bound to nothing but an id.
    let reply = app
        .me_as(Identity::User {
            id,
            token_version: 1,
            session: None,
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["code"], "token_not_valid");
}

/// An account's access token dies with the account: a new account that gets the same id (as
/// an id sequence rewound by hand would hand out) is not reachable with it.
#[tokio::test]
async fn a_deleted_accounts_token_never_works_for_an_account_with_its_id() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let reply = app
        .send(
            Method::DELETE,
            "/internal/me",
            identity,
            Some(&json!({"current_password": crate::helpers::PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    app.sql(&format!(
        "SELECT setval(pg_get_serial_sequence('users', 'id'), {id}, false)"
    ))
    .await;
    let reply = app
        .register("mallory@example.com", "mallory", "64829173")
        .await;
    assert_eq!(reply.body["id"], id, "the id was handed out again");
    let reply = app.me_as(identity).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.body["code"], "token_not_valid");
}

#[tokio::test]
async fn patch_me_changes_profile_fields_only() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let body = json!({"username": "lovelace", "first_name": "Ada", "last_name": "King",
                      "role": "admin", "email": "evil@example.com", "id": 999, "is_active": false});
    let reply = app
        .send(Method::PATCH, "/internal/me", identity, Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["username"], "lovelace");
    assert_eq!(reply.body["first_name"], "Ada");
    assert_eq!(reply.body["last_name"], "King");
    assert_eq!(reply.body["role"], "user");
    assert_eq!(reply.body["email"], "ada@example.com");
    assert_eq!(reply.body["id"], id);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE is_active AND role = 'user'")
            .await,
        1
    );

    // Blank names are allowed, a blank username is not.
    let reply = app
        .send(
            Method::PATCH,
            "/internal/me",
            identity,
            Some(&json!({"first_name": ""})),
        )
        .await;
    assert_eq!(reply.body["first_name"], "");
    let reply = app
        .send(
            Method::PATCH,
            "/internal/me",
            identity,
            Some(&json!({"username": " "})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"username": ["This field may not be blank."]})
    );
}

#[tokio::test]
async fn patch_me_rejects_taken_or_invalid_username() {
    let app = spawn_app().await;
    app.signed_up("bob@example.com", "bob").await;
    let (_, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let reply = app
        .send(
            Method::PATCH,
            "/internal/me",
            identity,
            Some(&json!({"username": "bob"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"username": ["A user with that username already exists."]})
    );
    let reply = app
        .send(
            Method::PATCH,
            "/internal/me",
            identity,
            Some(&json!({"username": "a b"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .send(
            Method::PATCH,
            "/internal/me",
            identity,
            Some(&json!({"last_name": "x".repeat(151)})),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({"last_name": ["Ensure this field has no more than 150 characters."]})
    );
    assert_eq!(app.me(&access).await.body["username"], "ada");
}

#[tokio::test]
async fn delete_me_needs_the_password_and_removes_the_account() {
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let delete = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.send_from(
                "198.51.100.0/24",
                Method::DELETE,
                "/internal/me",
                identity,
                Some(&body),
            )
            .await
        }
    };

    let reply = delete(json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"current_password": ["This field is required."]})
    );
    let reply = delete(json!({"current_password": "11112222"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"current_password": ["Invalid password."]})
    );
    // The wrong password counted toward the lockout as a failed login does.
    assert_eq!(
        app.count(&format!(
            "SELECT failures::bigint FROM login_attempts WHERE user_id = {id} AND network = '198.51.100.0/24'"
        ))
        .await,
        1
    );
    assert_eq!(app.me(&access).await.status, StatusCode::OK);

    app.sql(
        // Due later, so the sender leaves it unsent until the account is deleted.
        "INSERT INTO email_outbox (kind, to_address, subject, body_text, body_html, next_attempt_at) \
         VALUES ('reset_code', 'ADA@example.com', 's', 'b', 'h', now() + interval '1 hour')",
    )
    .await;
    app.sql(
        "INSERT INTO email_outbox (kind, to_address, subject, body_text, body_html, sent_at) \
         VALUES ('reset_code', 'ada@example.com', 's', '', '', now())",
    )
    .await;
    let reply = delete(json!({"current_password": testkit::PASSWORD})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);

    for (what, query) in [
        (
            "the account",
            format!("SELECT count(*) FROM users WHERE id = {id}"),
        ),
        (
            "its sessions",
            format!("SELECT count(*) FROM refresh_families WHERE user_id = {id}"),
        ),
        (
            "its lockout counters",
            format!("SELECT count(*) FROM login_attempts WHERE user_id = {id}"),
        ),
        (
            "its address in the outbox",
            "SELECT count(*) FROM email_outbox WHERE lower(to_address) = 'ada@example.com'".into(),
        ),
        (
            "audit rows tied to it",
            format!("SELECT count(*) FROM audit_log WHERE user_id = {id}"),
        ),
    ] {
        assert_eq!(app.count(&query).await, 0, "{what} left");
    }
    assert_eq!(
        app.count(
            "SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL AND to_address = ''"
        )
        .await,
        1,
        "a sent email's row stays, without its address"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM email_outbox").await,
        1,
        "the unsent email is dropped"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE event = 'account_deleted' \
             AND user_id IS NULL AND detail->>'user_id' = '{id}'"
        ))
        .await,
        1
    );
    assert!(
        app.count("SELECT count(*) FROM audit_log WHERE user_id IS NULL AND event = 'register'")
            .await
            >= 1,
        "the audit log keeps the account's history, detached"
    );

    // Its tokens are refused, and the email is free again.
    assert_eq!(app.me(&access).await.status, StatusCode::UNAUTHORIZED);
    let reply = app
        .send(
            Method::POST,
            "/internal/tokens/refresh",
            Identity::Anonymous,
            Some(&json!({ "refresh": refresh })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        delete(json!({"current_password": testkit::PASSWORD}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .register("ada@example.com", "ada", testkit::PASSWORD)
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

#[tokio::test]
async fn delete_me_from_a_locked_out_network_is_refused_without_a_password_check() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let network = "203.0.113.0/24";
    // Past the threshold (5) the back-off doubles with every attempt: after 8, the next one
    // is refused for 2^(8 - 5) = 8 s from the last checked failure.
    for _ in 0..8 {
        let reply = app.login_from(network, "ada@example.com", "11112222").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // The right password, but the network is backing off: refused, account kept.
    let reply = app
        .send_from(
            network,
            Method::DELETE,
            "/internal/me",
            identity,
            Some(&json!({"current_password": testkit::PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({"current_password": ["Invalid password."]})
    );
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM users WHERE id = {id}"))
            .await,
        1
    );
}

#[tokio::test]
async fn set_username_needs_the_password_and_a_free_valid_name() {
    let app = spawn_app().await;
    app.signed_up("bob@example.com", "bob").await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);
    let set = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.send(Method::POST, "/internal/me/username", identity, Some(&body))
                .await
        }
    };
    let cases = [
        (
            json!({}),
            json!({"new_username": ["This field is required."],
                   "current_password": ["This field is required."]}),
        ),
        (
            json!({"new_username": "ada lovelace", "current_password": testkit::PASSWORD}),
            json!({"new_username": [shared::validate::MSG_INVALID_USERNAME]}),
        ),
        (
            json!({"new_username": "lovelace", "current_password": "11112222"}),
            json!({"current_password": ["Invalid password."]}),
        ),
        (
            json!({"new_username": "bob", "current_password": testkit::PASSWORD}),
            json!({"new_username": ["A user with that username already exists."]}),
        ),
    ];
    for (body, errors) in cases {
        let reply = set(body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body, errors, "{body}");
    }
    assert_eq!(app.me(&access).await.body["username"], "ada");

    let reply =
        set(json!({"new_username": "lovelace", "current_password": testkit::PASSWORD})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    // The same access token keeps working and shows the new name.
    let me = app.me(&access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "lovelace");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'username_changed'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} \
             AND event = 'current_password_refused' AND detail->>'step' = 'set_username'"
        ))
        .await,
        1
    );
}
