use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::token::TokenKind;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use origin::startup::Application;
use shared::keys::Ed25519PrivateKey;
use shared::signing::Identity;

use crate::helpers::{
    now, spawn_app, spawn_app_with, Options, PASSWORD, RESET_SECRET, SIGNING_SECRET,
};

fn no_account() -> serde_json::Value {
    json!({"detail": "No active account found with the given credentials"})
}

fn not_valid() -> serde_json::Value {
    json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
}

#[tokio::test]
async fn login_issues_an_access_and_a_refresh_token() {
    let app = spawn_app().await;
    let (id, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let a = app.verifier.access(&access, now()).unwrap();
    let r = app.verifier.refresh(&refresh, now()).unwrap();
    assert_eq!(
        (a.token_type, a.user_id, a.ver, a.role.as_str()),
        (TokenKind::Access, id, 0, "user")
    );
    assert_eq!(a.exp - a.iat, 300);
    assert_eq!((r.token_type, r.user_id), (TokenKind::Refresh, id));
    assert_eq!(r.exp - r.iat, 86_400);
    assert_ne!(a.jti, r.jti);
    // Email lookup is case-insensitive.
    assert_eq!(
        app.login("ADA@EXAMPLE.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE last_login IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn wrong_password_unknown_email_and_inactive_get_one_answer() {
    let app = spawn_app().await;
    let (id, _, _) = app.signed_up("ada@example.com", "ada").await;
    for (email, password) in [
        ("ada@example.com", "58203917"),
        ("nobody@example.com", PASSWORD),
    ] {
        let reply = app.login(email, password).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, no_account());
        assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"api\"");
    }
    // Both failures are audited; the unknown one without an account or the address tried.
    let failed = "SELECT count(*) FROM audit_log WHERE event = 'login_failed'";
    assert_eq!(
        app.count(&format!("{failed} AND user_id IS NOT NULL"))
            .await,
        1
    );
    let anonymous = format!("{failed} AND user_id IS NULL AND detail::text NOT LIKE '%nobody%'");
    assert_eq!(app.count(&anonymous).await, 1);
    app.sql(&format!(
        "UPDATE users SET is_active = false WHERE id = {id}"
    ))
    .await;
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.body,
        no_account()
    );
    let reply = app
        .post("/internal/tokens", json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"password": ["This field is required."]}));
}

#[tokio::test]
async fn failed_logins_lock_the_account_for_the_window() {
    let app = spawn_app_with(Options {
        lockout_threshold: 3,
        lockout_window: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    app.signed_up("ada@example.com", "ada").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("ada@example.com", "58203917").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // The right password is refused while locked, with the same answer.
    let reply = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, no_account());
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'login_failed'")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'login_locked'")
            .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT failed_logins::bigint FROM users").await,
        0
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_spent() {
    let app = spawn_app_with(Options {
        reuse_grace: 1,
        ..Options::default()
    })
    .await;
    let (_, _, refresh1) = app.signed_up("ada@example.com", "ada").await;
    let reply = app.refresh(&refresh1).await;
    assert_eq!(reply.status, StatusCode::OK);
    let refresh2 = reply.body["refresh"].as_str().unwrap().to_owned();
    let access2 = reply.body["access"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh1);
    assert!(app.verifier.access(&access2, now()).is_ok());

    // Within the grace window the same child comes back (a retry after a lost response).
    let retry = app.refresh(&refresh1).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body["refresh"], refresh2.as_str());

    // After it, reuse revokes the whole family: the child dies too.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let reuse = app.refresh(&refresh1).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reuse.body, not_valid());
    assert_eq!(app.refresh(&refresh2).await.body, not_valid());
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_families WHERE revoked_reason = 'reuse'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'refresh_reuse_detected'")
            .await,
        1
    );
    // Another login is its own family and still works.
    let other = app.login("ada@example.com", PASSWORD).await.body["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.refresh(&other).await.status, StatusCode::OK);
}

#[tokio::test]
async fn replaying_a_rotated_refresh_token_at_once_revokes_the_family_by_default() {
    // Default options: REFRESH_REUSE_GRACE is 0.
    let app = spawn_app().await;
    let (_, _, refresh1) = app.signed_up("ada@example.com", "ada").await;
    let reply = app.refresh(&refresh1).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh2 = reply.body["refresh"].as_str().unwrap().to_owned();

    // Replayed immediately (a thief racing the owner): refused, and the family is revoked.
    let replay = app.refresh(&refresh1).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.body, not_valid());
    let child = app.refresh(&refresh2).await;
    assert_eq!(child.status, StatusCode::UNAUTHORIZED, "the child dies too");
    assert_eq!(child.body, not_valid());
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_families WHERE revoked_reason = 'reuse'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_chain_of_rotations_stays_valid() {
    let app = spawn_app().await;
    let (_, _, mut refresh) = app.signed_up("ada@example.com", "ada").await;
    for _ in 0..5 {
        let reply = app.refresh(&refresh).await;
        assert_eq!(reply.status, StatusCode::OK);
        refresh = reply.body["refresh"].as_str().unwrap().to_owned();
    }
    assert_eq!(app.count("SELECT count(*) FROM refresh_tokens").await, 6);
    assert_eq!(
        app.count("SELECT count(DISTINCT family_id) FROM refresh_tokens")
            .await,
        1
    );
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_yield_one_child() {
    // Opt-in grace (the default is 0): parallel retries of one refresh share one child.
    let app = spawn_app_with(Options {
        reuse_grace: 10,
        ..Options::default()
    })
    .await;
    let (_, _, refresh) = app.signed_up("ada@example.com", "ada").await;
    let replies = futures::future::join_all((0..12).map(|_| app.refresh(&refresh))).await;
    let children: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["refresh"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        children.len(),
        1,
        "every answer within the grace window carries the same child"
    );
    assert_eq!(app.count("SELECT count(*) FROM refresh_tokens").await, 2);
}

#[tokio::test]
async fn access_token_is_not_a_refresh_token() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    assert_eq!(app.refresh(&access).await.body, not_valid());
    assert_eq!(app.refresh("garbage").await.body, not_valid());
    assert_eq!(
        app.refresh(&refresh[..refresh.len() - 2]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let reply = app.post("/internal/tokens/refresh", json!({})).await;
    assert_eq!(reply.body, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn a_signed_refresh_token_unknown_to_the_store_is_refused() {
    let app = spawn_app().await;
    let (id, _, _) = app.signed_up("ada@example.com", "ada").await;
    let subject = shared::token::Subject {
        user_id: id,
        token_version: 0,
        role: "user".into(),
    };
    let claims = app.issuer.claims(
        TokenKind::Refresh,
        &subject,
        uuid::Uuid::new_v4().to_string(),
        now(),
        600,
    );
    let forged = app.issuer.sign(&claims).unwrap();
    assert_eq!(app.refresh(&forged).await.body, not_valid());
}

#[tokio::test]
async fn logout_revokes_that_login_only() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.signed_up("ada@example.com", "ada").await;
    let second = app.login("ada@example.com", PASSWORD).await.body["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let identity = app.identity(&access);
    let reply = app
        .send(
            Method::POST,
            "/internal/tokens/logout",
            identity,
            Some(&json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(app.refresh(&refresh).await.body, not_valid());
    assert_eq!(app.refresh(&second).await.status, StatusCode::OK);
    // Twice is refused: the family is already revoked.
    let again = app
        .send(
            Method::POST,
            "/internal/tokens/logout",
            identity,
            Some(&json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE event = 'logout'")
            .await,
        1
    );
}

#[tokio::test]
async fn logout_requires_the_owner() {
    let app = spawn_app().await;
    let (_, _, ada_refresh) = app.signed_up("ada@example.com", "ada").await;
    let (_, bob_access, _) = app.signed_up("bob@example.com", "bob").await;
    let reply = app
        .send(
            Method::POST,
            "/internal/tokens/logout",
            app.identity(&bob_access),
            Some(&json!({"refresh": ada_refresh})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let anon = app
        .post("/internal/tokens/logout", json!({"refresh": ada_refresh}))
        .await;
    assert_eq!(
        anon.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(app.refresh(&ada_refresh).await.status, StatusCode::OK);
}

/// docs/deploy.md §4: the origin restarted with a new key B and `JWT_PREVIOUS_PUBLIC_KEYS` = A
/// still rotates refresh tokens signed by A, and signs the new pair with B.
#[tokio::test]
async fn signing_key_rotation_keeps_refresh_tokens_of_the_previous_key() {
    use clap::Parser;
    use origin::cli::{Cli, Command};

    let app = spawn_app().await;
    let (_, _, refresh_a) = app.signed_up("rot@example.com", "rot").await;
    let pem_b = Ed25519PrivateKey::from_seed([7u8; 32]).to_pem();
    let kid_b = Ed25519PrivateKey::from_seed([7u8; 32]).public_jwk().kid;
    let parse = |previous: Option<&str>| {
        let mut args = vec![
            "origin".to_owned(),
            "serve".into(),
            "--bind=127.0.0.1:0".into(),
            "--metrics-bind=127.0.0.1:0".into(),
            format!("--database-url={}", app.db.url),
            format!(
                "--origin-signing-secret={}",
                std::str::from_utf8(SIGNING_SECRET).unwrap()
            ),
            format!(
                "--reset-token-secret={}",
                std::str::from_utf8(RESET_SECRET).unwrap()
            ),
            format!("--jwt-private-key={pem_b}"),
        ];
        if let Some(jwks) = previous {
            args.push(format!("--jwt-previous-public-keys={jwks}"));
        }
        let Command::Serve(serve) = Cli::try_parse_from(args).unwrap().command else {
            unreachable!()
        };
        serve.validate().unwrap()
    };
    let start = |settings| async move {
        let rotated = Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", rotated.port());
        tokio::spawn(rotated.run_until_stopped());
        address
    };

    // Without the previous key, an A-signed refresh token is refused.
    let refresh_at = |base: String| {
        let app = &app;
        let body = json!({ "refresh": refresh_a });
        async move {
            app.send_at(
                &base,
                Method::POST,
                "/internal/tokens/refresh",
                Identity::Anonymous,
                Some(&body),
            )
            .await
        }
    };
    let without = start(parse(None)).await;
    assert_eq!(refresh_at(without).await.body, not_valid());

    // With it, the token rotates and the new pair is signed by B.
    let with = start(parse(Some(&app.public_jwks))).await;
    let reply = refresh_at(with).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for token in [&reply.body["access"], &reply.body["refresh"]] {
        let header = token.as_str().unwrap().split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["kid"], kid_b.as_str());
        assert_eq!(header["alg"], "EdDSA");
    }
}
