use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::signing::Identity;

use crate::helpers::{spawn_app, PASSWORD};

#[tokio::test]
async fn register_returns_201_with_email_username_id() {
    let app = spawn_app().await;
    let reply = app.register("  Ada@Example.COM ", "ada", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.body["id"].as_i64().unwrap();
    assert_eq!(
        reply.body,
        json!({"email": "Ada@example.com", "username": "ada", "id": id})
    );
    let hash: String = app
        .db
        .client()
        .await
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'register'")
            .await,
        1
    );
}

#[tokio::test]
async fn duplicate_email_case_insensitive_and_duplicate_username() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("ada@example.com", "ada", PASSWORD)
            .await
            .status,
        StatusCode::CREATED
    );
    let reply = app.register("ADA@example.com", "ada", "58203917").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({
            "email": ["user with this email address already exists."],
            "username": ["A user with that username already exists."],
        })
    );
    let reply = app.register("bob@example.com", "ada", "58203917").await;
    assert_eq!(
        reply.body,
        json!({"username": ["A user with that username already exists."]})
    );
}

#[tokio::test]
async fn field_errors_are_drf_shaped() {
    let app = spawn_app().await;
    let reply = app.post("/internal/users", json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let required = json!(["This field is required."]);
    assert_eq!(
        reply.body,
        json!({"email": required, "username": required, "password": required})
    );

    let reply = app.register("not-an-email", "bad name!", PASSWORD).await;
    assert_eq!(
        reply.body,
        json!({
            "email": ["Enter a valid email address."],
            "username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."],
        })
    );

    let reply = app.post("/internal/users", json!({"email": "a@example.com", "username": "a", "password": PASSWORD, "re_password": "58203917"})).await;
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["The two password fields didn't match."]})
    );

    let reply = app.post("/internal/users", json!([1, 2])).await;
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn password_policy_messages() {
    let app = spawn_app().await;
    let cases = [
        (
            "carol",
            "7392",
            json!(["Password must be exactly 8 digits."]),
        ),
        ("carol", "12345678", json!(["This password is too common."])),
        (
            "carol",
            "password",
            json!([
                "Password must be exactly 8 digits.",
                "This password is too common."
            ]),
        ),
        (
            "58203917",
            "58203917",
            json!(["The password is too similar to the username."]),
        ),
        // Django's quick_ratio: 6 shared digits of 8 is 0.75, over the 0.7 limit.
        (
            "58203917",
            "12345678",
            json!([
                "This password is too common.",
                "The password is too similar to the username."
            ]),
        ),
    ];
    for (username, password, expected) in cases {
        let reply = app.register("carol@example.com", username, password).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{password}");
        assert_eq!(reply.body, json!({ "password": expected }), "{password}");
    }
}

#[tokio::test]
async fn malformed_json_wrong_type_and_oversized_body() {
    let app = spawn_app().await;
    // Signed correctly, but not JSON.
    let reply = app
        .send(Method::POST, "/internal/users", Identity::Anonymous, None)
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(reply.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Unsupported media type"));

    let reply = app.post("/internal/users", json!("{")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let big =
        json!({"email": "a@example.com", "username": "x".repeat(70 * 1024), "password": PASSWORD});
    let reply = app.post("/internal/users", big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["detail"], "Request body too large.");
}

#[tokio::test]
async fn truncated_json_is_a_400_parse_error() {
    let app = spawn_app().await;
    let body = br#"{"email": "a@example.com", "#;
    let timestamp = crate::helpers::now();
    let signature = app.signer.sign(&shared::signing::SignedParts {
        method: "POST",
        path_and_query: "/internal/users",
        timestamp,
        identity: Identity::Anonymous,
        body,
        client_network: "",
        client_agent: "",
    });
    let reply = crate::helpers::read(
        app.http
            .post(format!("{}/internal/users", app.address))
            .header("content-type", "application/json")
            .header(shared::signing::HEADER_TIMESTAMP, timestamp.to_string())
            .header(shared::signing::HEADER_IDENTITY, "anon")
            .header(shared::signing::HEADER_SIGNATURE, signature)
            .body(body.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_exactly_one_wins() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            app.register("race@example.com", &format!("racer{i}"), PASSWORD)
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.body["email"],
            json!(["user with this email address already exists."])
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}
