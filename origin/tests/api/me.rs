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
    let (id, _, _) = app.signed_up("ada@example.com", "ada").await;
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
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A user id that does not exist.
    let reply = app
        .me_as(Identity::User {
            id: id + 99,
            token_version: 0,
        })
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
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
