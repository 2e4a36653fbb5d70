//! The audit log as an operator reads it (`origin audit`), and `origin set-role`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{origin_cli as origin, spawn_app};

#[tokio::test]
async fn set_role_takes_effect_and_every_event_is_in_the_audit_log() {
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    assert_eq!(
        app.login("ada@example.com", "00000000").await.status,
        StatusCode::UNAUTHORIZED
    );
    let list = |access: String| {
        let app = &app;
        async move {
            app.send(Method::GET, "/internal/users", app.identity(&access), None)
                .await
                .status
        }
    };
    assert_eq!(list(access.clone()).await, StatusCode::FORBIDDEN);

    let (ok, out, err) = origin(
        &app.db.url,
        &["set-role", "--email", "ADA@example.com", "--role", "admin"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("ADA@example.com (id {id}): role user -> admin")
    );
    // The origin reads the role from the database: the same token may now list users.
    assert_eq!(list(access).await, StatusCode::OK);
    // A logout is recorded too (a rotation is not: it is not a security event).
    let rotated = app.refresh(&refresh).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let logout = app
        .send(
            Method::POST,
            "/internal/tokens/logout",
            app.identity(rotated.body["access"].as_str().unwrap()),
            Some(&serde_json::json!({ "refresh": rotated.body["refresh"] })),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);

    let (ok, out, err) = origin(
        &app.db.url,
        &["audit", "--email", "ada@example.com", "--json"],
    );
    assert!(ok, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "logout",
            "role_changed",
            "login_failed",
            "login_ok",
            "register"
        ],
        "{out}"
    );
    assert_eq!(
        events[1]["detail"],
        serde_json::json!({"from": "user", "to": "admin"})
    );
    assert!(events
        .iter()
        .all(|e| e["user_id"] == id && e["email"] == "ada@example.com"));

    // Filter by event, table output, newest first, limited.
    let (ok, table, _) = origin(
        &app.db.url,
        &["audit", "--event", "login_failed", "--limit", "1"],
    );
    assert!(ok);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("id "), "{table}");
    assert!(
        lines[1].contains("login_failed") && lines[1].contains("ada@example.com"),
        "{table}"
    );

    // Setting the same role again changes nothing and records nothing; unknown emails fail.
    let (ok, out, _) = origin(
        &app.db.url,
        &["set-role", "--email", "ada@example.com", "--role", "admin"],
    );
    assert!(ok && out.contains("role admin -> admin"), "{out}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'role_changed'")
            .await,
        1
    );
    let (ok, _, err) = origin(
        &app.db.url,
        &[
            "set-role",
            "--email",
            "nobody@example.com",
            "--role",
            "user",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("no account with the email nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = origin(
        &app.db.url,
        &["set-role", "--email", "ada@example.com", "--role", "root"],
    );
    assert!(!ok);
    assert!(err.contains("invalid value 'root'"), "{err}");
}
