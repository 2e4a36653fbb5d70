use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, PASSWORD};

#[tokio::test]
async fn non_admin_gets_403() {
    let app = spawn_app().await;
    let (_, access, _) = app.signed_up("ada@example.com", "ada").await;
    let reply = app
        .send(Method::GET, "/internal/users", app.identity(&access), None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body,
        json!({"detail": "You do not have permission to perform this action."})
    );
}

#[tokio::test]
async fn admin_lists_users_paginated() {
    let app = spawn_app().await;
    let (admin_id, _, _) = app.signed_up("root@example.com", "root").await;
    app.sql(&format!(
        "UPDATE users SET role = 'admin' WHERE id = {admin_id}"
    ))
    .await;
    // Role comes from the database, so log in again for a token that says admin.
    let access = app.login("root@example.com", PASSWORD).await.body["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let identity = app.identity(&access);
    app.sql(
        "INSERT INTO users (email, username, password_hash) \
         SELECT 'u' || i || '@example.com', 'u' || i, 'x' FROM generate_series(1, 24) AS i",
    )
    .await;

    let page1 = app
        .send(Method::GET, "/internal/users", identity, None)
        .await;
    assert_eq!(page1.status, StatusCode::OK);
    assert_eq!(page1.body["count"], 25);
    assert_eq!(page1.body["next"], "/api/auth/users/?page=2");
    assert_eq!(page1.body["previous"], json!(null));
    let results = page1.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert_eq!(results[0]["id"], admin_id);
    assert_eq!(results[0]["role"], "admin");

    let page2 = app
        .send(Method::GET, "/internal/users?page=2", identity, None)
        .await;
    assert_eq!(page2.body["results"].as_array().unwrap().len(), 5);
    assert_eq!(page2.body["next"], json!(null));
    assert_eq!(page2.body["previous"], "/api/auth/users/");

    for bad in [
        "/internal/users?page=3",
        "/internal/users?page=0",
        "/internal/users?page=x",
    ] {
        let reply = app.send(Method::GET, bad, identity, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(reply.body, json!({"detail": "Invalid page."}));
    }
}
