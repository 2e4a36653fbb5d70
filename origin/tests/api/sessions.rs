//! The owner's sessions and password change: `GET/DELETE /internal/sessions`,
//! `/internal/sessions/revoke-others` and `/internal/me/password`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::signing::Identity;

use crate::helpers::{spawn_app, SeenClient, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "58203917";

/// A login as `client`: (access, refresh).
async fn login_as(app: &TestApp, client: SeenClient<'_>, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD});
    let reply = app
        .send_seen(
            client,
            Method::POST,
            "/internal/tokens",
            Identity::Anonymous,
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    (
        reply.body["access"].as_str().unwrap().to_owned(),
        reply.body["refresh"].as_str().unwrap().to_owned(),
    )
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let reply = app
        .send(
            Method::GET,
            "/internal/sessions",
            app.identity(access),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn sessions_list_each_login_with_its_client_and_mark_the_callers() {
    let app = spawn_app().await;
    let (id, _, _) = app.signed_up("ada@example.com", "ada").await;
    let phone = SeenClient {
        network: "203.0.113.7",
        agent: "AuthApp/2.1 (iPhone; iOS 18.1)",
    };
    let laptop = SeenClient {
        network: "2001:db8:1:2::/64",
        agent: "Mozilla/5.0 (X11; Linux x86_64)",
    };
    let (phone_access, phone_refresh) = login_as(&app, phone, "ada@example.com").await;
    let (laptop_access, _) = login_as(&app, laptop, "ada@example.com").await;
    // Another account's sessions are never listed.
    app.signed_up("bob@example.com", "bob").await;

    let listed = sessions(&app, &laptop_access).await;
    // Three logins of ada's (sign-up's own, the phone, the laptop), the laptop's first.
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0]["user_agent"], laptop.agent);
    assert_eq!(listed[0]["client_network"], laptop.network);
    assert_eq!(listed[0]["current"], true);
    let phone_row = listed
        .iter()
        .find(|s| s["user_agent"] == phone.agent)
        .expect("the phone's session");
    assert_eq!(phone_row["client_network"], phone.network);
    assert_eq!(phone_row["current"], false);
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    for session in &listed {
        let keys: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "client_network",
                "created",
                "current",
                "id",
                "last_used",
                "user_agent"
            ]
        );
        assert!(session["created"].as_str().unwrap().ends_with('Z'));
    }
    // Each id is the family the access token names.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_families WHERE user_id = {id} AND id::text = '{}' \
             AND user_agent = '{}' AND client_network = '{}'",
            phone_row["id"].as_str().unwrap(),
            phone.agent,
            phone.network
        ))
        .await,
        1
    );

    // A refresh moves the session to the top (last used) and it stays one session.
    let before = phone_row["last_used"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let rotated = app.refresh(&phone_refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let listed = sessions(&app, &phone_access).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["id"], phone_row["id"]);
    assert_eq!(listed[0]["current"], true);
    assert!(listed[0]["last_used"].as_str().unwrap() > before.as_str());
    // The rotated access token still names the same session.
    let access = rotated.body["access"].as_str().unwrap();
    assert_eq!(sessions(&app, access).await[0]["current"], true);
}

#[tokio::test]
async fn ending_one_session_refuses_its_refresh_at_once_and_only_the_owner_can() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let (_, other_refresh) = login_as(&app, SeenClient::default(), "ada@example.com").await;
    let (_, bob_access, bob_refresh) = app.signed_up("bob@example.com", "bob").await;
    let listed = sessions(&app, &access).await;
    let other = listed.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_session = sessions(&app, &bob_access).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |access: String, id: String| {
        let app = &app;
        async move {
            app.send(
                Method::DELETE,
                &format!("/internal/sessions?id={id}"),
                app.identity(&access),
                None,
            )
            .await
        }
    };

    // Someone else's session, an unknown one and a malformed id: one answer, nothing ended.
    for target in [
        bob_session.clone(),
        "7d1e4c2a-9b3f-4e5d-8c6b-1a2f3e4d5c6b".to_owned(),
        "not-a-session".to_owned(),
    ] {
        let reply = revoke(access.clone(), target.clone()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{target}");
        assert_eq!(reply.body, json!({"detail": "Not found."}));
    }
    assert_eq!(app.refresh(&bob_refresh).await.status, StatusCode::OK);

    let reply = revoke(access.clone(), other.clone()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    // Its refresh token is refused now, as a revoked one; the caller's session goes on.
    assert_eq!(
        app.refresh(&other_refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    let listed = sessions(&app, &access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["current"], true);
    // Ended already: not found.
    assert_eq!(
        revoke(access.clone(), other.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_families WHERE user_id = {id} AND revoked_reason = 'owner'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'session_revoked'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn revoke_others_keeps_only_the_callers_session() {
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(login_as(&app, SeenClient::default(), "ada@example.com").await);
    }
    let reply = app
        .send(
            Method::POST,
            "/internal/sessions/revoke-others",
            app.identity(&access),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"revoked": 2}));
    for (_, other_refresh) in &others {
        assert_eq!(
            app.refresh(other_refresh).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.refresh(&refresh).await.status, StatusCode::OK);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'sessions_revoked' \
             AND detail->>'by' = 'owner'"
        ))
        .await,
        1
    );

    // An access token that names no session (issued before sessions were named) is not valid:
    // refused, and it ends nothing.
    let (_, legacy_refresh) = login_as(&app, SeenClient::default(), "ada@example.com").await;
    let Identity::User {
        id: user,
        token_version,
        ..
    } = app.identity(&access)
    else {
        unreachable!()
    };
    let legacy = Identity::User {
        id: user,
        token_version,
        session: None,
    };
    let reply = app
        .send(
            Method::POST,
            "/internal/sessions/revoke-others",
            legacy,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.body["code"], "token_not_valid");
    assert_eq!(app.refresh(&legacy_refresh).await.status, StatusCode::OK);
}

/// A thief's session ended by the owner takes its access token's powers with it at once: the
/// token, still within its lifetime, can no longer end the owner's sessions, read or change the
/// account, or log out; the owner's own token goes on working.
#[tokio::test]
async fn an_ended_sessions_access_token_loses_the_account_at_once() {
    let app = spawn_app().await;
    let (_, owner_access, owner_refresh) = app.signed_up("ada@example.com", "ada").await;
    let (thief_access, thief_refresh) =
        login_as(&app, SeenClient::default(), "ada@example.com").await;
    let (owner, thief) = (app.identity(&owner_access), app.identity(&thief_access));
    let Identity::User {
        session: Some(thief_session),
        ..
    } = thief
    else {
        panic!("an access token names its session")
    };
    // Before: the thief's token works.
    assert_eq!(app.me_as(thief).await.status, StatusCode::OK);
    let ended = app
        .send(
            Method::DELETE,
            &format!("/internal/sessions?id={thief_session}"),
            owner,
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);

    let password = json!({"current_password": PASSWORD});
    let attempts = [
        (Method::POST, "/internal/sessions/revoke-others", None),
        (Method::GET, "/internal/sessions", None),
        (Method::GET, "/internal/me", None),
        (
            Method::PATCH,
            "/internal/me",
            Some(json!({"first_name": "Mallory"})),
        ),
        (
            Method::POST,
            "/internal/me/username",
            Some(json!({"new_username": "mallory", "current_password": PASSWORD})),
        ),
        (
            Method::POST,
            "/internal/me/password",
            Some(json!({"new_password": "pw-of-the-thief-1", "current_password": PASSWORD})),
        ),
        (Method::DELETE, "/internal/me", Some(password)),
        (
            Method::POST,
            "/internal/tokens/logout",
            Some(json!({"refresh": owner_refresh})),
        ),
    ];
    for (method, path, body) in attempts {
        let reply = app.send(method.clone(), path, thief, body.as_ref()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.body["code"], "token_not_valid", "{method} {path}");
    }
    // Nothing the thief tried took effect; the owner goes on.
    let me = app.me_as(owner).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["first_name"], "");
    assert_eq!(app.refresh(&owner_refresh).await.status, StatusCode::OK);
    assert_eq!(
        app.refresh(&thief_refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn set_password_checks_like_djoser_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    let (_, other_refresh) = login_as(&app, SeenClient::default(), "ada@example.com").await;
    let identity = app.identity(&access);
    let set = |body: Value| {
        let app = &app;
        async move {
            app.send(Method::POST, "/internal/me/password", identity, Some(&body))
                .await
        }
    };
    let cases = [
        (
            json!({}),
            json!({"new_password": ["This field is required."],
                   "re_new_password": ["This field is required."],
                   "current_password": ["This field is required."]}),
        ),
        (
            json!({"new_password": NEW_PASSWORD, "re_new_password": "58203918",
                   "current_password": PASSWORD}),
            json!({"re_new_password": [shared::validate::MSG_PASSWORD_MISMATCH]}),
        ),
        (
            json!({"new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD,
                   "current_password": "11112222"}),
            json!({"current_password": ["Invalid password."]}),
        ),
        (
            json!({"new_password": "12345678", "re_new_password": "12345678",
                   "current_password": PASSWORD}),
            json!({"new_password": ["This password is too common."]}),
        ),
    ];
    for (body, errors) in cases {
        let reply = set(body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body, errors, "{body}");
    }
    // Refused attempts changed nothing.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    let reply = set(
        json!({"new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD,
                           "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    // The new password logs in, the old one does not.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    // The caller's access token still works; another session's refresh does not.
    assert_eq!(app.me(&access).await.status, StatusCode::OK);
    assert_eq!(
        app.refresh(&other_refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The caller's session is the one left of those before the change (plus the new login).
    let listed = sessions(&app, &access).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_families WHERE user_id = {id} \
             AND revoked_reason = 'password_change'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} AND event = 'password_changed'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE user_id = {id} \
             AND event = 'current_password_refused' AND detail->>'step' = 'set_password'"
        ))
        .await,
        1
    );
}

/// A reset token minted before the change is spent by it.
#[tokio::test]
async fn set_password_spends_earlier_reset_tokens() {
    let app = spawn_app().await;
    let (_, access, _) = app.signed_up("ada@example.com", "ada").await;
    let reset_token = app.reset_token("ada@example.com");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = json!({"new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD,
                      "current_password": PASSWORD});
    let reply = app
        .send(
            Method::POST,
            "/internal/me/password",
            app.identity(&access),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = app
        .post(
            "/internal/password-reset/confirm",
            json!({"reset_token": reset_token, "new_password": "40718253",
                   "re_new_password": "40718253"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}
