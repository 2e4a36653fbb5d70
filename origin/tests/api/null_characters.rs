//! U+0000 in any string field of any internal endpoint is a field error (Django's "Null
//! characters are not allowed."), never PostgreSQL's 22021 answered 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::signing::Identity;

use crate::helpers::{spawn_app, PASSWORD};

#[tokio::test]
async fn a_null_character_in_any_string_field_is_a_400_field_error() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let user = app.identity(&access);
    let reset_token = app.reset_token("ada@example.com");
    // Each endpoint with a body that is valid but for the field under test.
    let endpoints: [(Method, &str, Identity, Value); 8] = [
        (
            Method::POST,
            "/internal/users",
            Identity::Anonymous,
            json!({"email": "bob@example.com", "username": "bob", "password": "40718263", "re_password": "40718263"}),
        ),
        (
            Method::POST,
            "/internal/tokens",
            Identity::Anonymous,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        ),
        (
            Method::POST,
            "/internal/tokens/refresh",
            Identity::Anonymous,
            json!({ "refresh": refresh }),
        ),
        (
            Method::POST,
            "/internal/tokens/logout",
            user,
            json!({ "refresh": refresh }),
        ),
        (
            Method::POST,
            "/internal/tokens/verify",
            Identity::Anonymous,
            json!({ "token": refresh }),
        ),
        (
            Method::PATCH,
            "/internal/me",
            user,
            json!({"username": "ada2", "first_name": "Ada", "last_name": "Lovelace"}),
        ),
        (
            Method::POST,
            "/internal/password-reset/code",
            Identity::Anonymous,
            json!({"email": "ada@example.com", "code": "123456"}),
        ),
        (
            Method::POST,
            "/internal/password-reset/confirm",
            Identity::Anonymous,
            json!({"reset_token": reset_token, "new_password": "58203917", "re_new_password": "58203917"}),
        ),
    ];
    let mut checked = 0;
    for (method, path, identity, body) in &endpoints {
        for field in body.as_object().unwrap().keys() {
            for position in ["start", "middle", "end"] {
                let mut bad = body.clone();
                let original = bad[field].as_str().unwrap().to_owned();
                bad[field] = Value::String(match position {
                    "start" => format!("\u{0}{original}"),
                    "middle" => format!("{}\u{0}{}", &original[..1], &original[1..]),
                    _ => format!("{original}\u{0}"),
                });
                let reply = app.send(method.clone(), path, *identity, Some(&bad)).await;
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {path} {field} ({position}): {}",
                    reply.body
                );
                assert_eq!(
                    reply.body[field],
                    json!(["Null characters are not allowed."]),
                    "{method} {path} {field}: {}",
                    reply.body
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 17, "every string field of every endpoint");
    // Nothing was written by any of them: the session is still live, the profile unchanged.
    assert_eq!(app.refresh(&refresh).await.status, StatusCode::OK);
    let me = app.me(&access).await;
    assert_eq!(me.body["username"], "ada");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}
