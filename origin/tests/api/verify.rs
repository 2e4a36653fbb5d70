//! `POST /internal/tokens/verify`: the revocation check behind `jwt/verify/` for refresh tokens.
//! A refresh token that can no longer refresh answers SimpleJWT's blacklist error, whichever
//! way it was revoked.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{now, spawn_app, Reply, TestApp};

fn blacklisted() -> Value {
    json!({"non_field_errors": ["Token is blacklisted"]})
}

async fn verify(app: &TestApp, token: &str) -> Reply {
    app.post("/internal/tokens/verify", json!({ "token": token }))
        .await
}

#[tokio::test]
async fn a_live_refresh_token_verifies() {
    let app = spawn_app().await;
    let (_, _, refresh) = app.signed_up("ada@example.com", "ada").await;
    let reply = verify(&app, &refresh).await;
    assert_eq!((reply.status, reply.body), (StatusCode::OK, json!({})));
}

#[tokio::test]
async fn a_rotated_out_refresh_token_is_blacklisted_and_its_child_is_not() {
    let app = spawn_app().await;
    let (_, _, refresh) = app.signed_up("ada@example.com", "ada").await;
    let rotated = app.refresh(&refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let reply = verify(&app, &refresh).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::BAD_REQUEST, blacklisted())
    );
    let child = rotated.body["refresh"].as_str().unwrap();
    assert_eq!(verify(&app, child).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_logged_out_refresh_token_is_blacklisted() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let logout = app
        .send(
            Method::POST,
            "/internal/tokens/logout",
            app.identity(&access),
            Some(&json!({ "refresh": refresh })),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);
    let reply = verify(&app, &refresh).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::BAD_REQUEST, blacklisted())
    );
}

#[tokio::test]
async fn a_password_reset_blacklists_every_refresh_token_of_the_user() {
    let app = spawn_app().await;
    let (_, _, first) = app.signed_up("ada@example.com", "ada").await;
    let second = app.login("ada@example.com", crate::helpers::PASSWORD).await;
    let second = second.body["refresh"].as_str().unwrap().to_owned();
    let (_, _, other_user) = app.signed_up("bob@example.com", "bob").await;
    let token = app.reset_token("ada@example.com");
    let reset = app
        .post(
            "/internal/password-reset/confirm",
            json!({"reset_token": token, "new_password": "58203917", "re_new_password": "58203917"}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    for refresh in [&first, &second] {
        let reply = verify(&app, refresh).await;
        assert_eq!(
            (reply.status, reply.body),
            (StatusCode::BAD_REQUEST, blacklisted())
        );
    }
    assert_eq!(verify(&app, &other_user).await.status, StatusCode::OK);
}

#[tokio::test]
async fn anything_but_a_refresh_token_we_issued_is_not_valid() {
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let not_valid = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"});
    // An access token (the edge answers those itself), garbage, and a refresh token signed
    // with our key whose jti was never stored.
    let mut claims = app.verifier.refresh(&refresh, now()).unwrap();
    claims.jti = uuid::Uuid::new_v4().to_string();
    claims.user_id = id;
    let unknown = app.issuer.sign(&claims).unwrap();
    for token in [access.as_str(), "not.a.token", unknown.as_str()] {
        let reply = verify(&app, token).await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::UNAUTHORIZED, &not_valid),
            "{token}"
        );
    }
    let missing = app.post("/internal/tokens/verify", json!({})).await;
    assert_eq!(
        (missing.status, missing.body),
        (
            StatusCode::BAD_REQUEST,
            json!({"token": ["This field is required."]})
        )
    );
}
