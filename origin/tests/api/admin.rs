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

/// `refresh` exchanged at the origin: its status.
async fn refresh_status(app: &crate::helpers::TestApp, refresh: &str) -> StatusCode {
    app.send(
        Method::POST,
        "/internal/tokens/refresh",
        shared::signing::Identity::Anonymous,
        Some(&json!({ "refresh": refresh })),
    )
    .await
    .status
}

#[tokio::test]
async fn operators_deactivate_reactivate_and_end_sessions_audited() {
    use crate::helpers::origin_cli;
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let second = app.login("ada@example.com", PASSWORD).await;
    let refresh2 = second.body["refresh"].as_str().unwrap().to_owned();

    // revoke-sessions: both logins end, the access token is refused by the origin.
    let (ok, out, err) = origin_cli(
        &app.db.url,
        &["revoke-sessions", "--email", "ADA@example.com"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("ADA@example.com (id {id}): 2 sessions revoked, access tokens outdated")
    );
    assert_eq!(
        refresh_status(&app, &refresh).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_status(&app, &refresh2).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&access).await.status, StatusCode::UNAUTHORIZED);
    // A new login works.
    let again = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK);
    let refresh3 = again.body["refresh"].as_str().unwrap().to_owned();

    // deactivate-user: logins refused, the session ended.
    let (ok, out, err) = origin_cli(
        &app.db.url,
        &["deactivate-user", "--email", "ada@example.com"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("ada@example.com (id {id}): deactivated, 1 sessions revoked")
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh_status(&app, &refresh3).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, out, _) = origin_cli(
        &app.db.url,
        &["deactivate-user", "--email", "ada@example.com"],
    );
    assert!(
        out.contains("was already inactive, 0 sessions revoked"),
        "{out}"
    );

    // reactivate-user: logins work again; the old sessions stay ended.
    let (ok, out, err) = origin_cli(
        &app.db.url,
        &["reactivate-user", "--email", "ada@example.com"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("ada@example.com (id {id}): reactivated")
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        refresh_status(&app, &refresh3).await,
        StatusCode::UNAUTHORIZED
    );

    for event in ["sessions_revoked", "user_deactivated", "user_reactivated"] {
        assert!(
            app.count(&format!(
                "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = '{event}'"
            ))
            .await
                >= 1,
            "{event} audited"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_families WHERE revoked_reason = 'admin'")
            .await,
        3
    );

    // An unknown email is an error, with nothing changed.
    let (ok, _, err) = origin_cli(
        &app.db.url,
        &["revoke-sessions", "--email", "nobody@example.com"],
    );
    assert!(!ok);
    assert!(
        err.contains("no account with the email nobody@example.com"),
        "{err}"
    );
}
