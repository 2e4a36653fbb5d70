//! The origin or the Durable Objects down, a signature mismatch: fail closed, answer JSON.

use crate::prelude::*;

pub(crate) async fn origin_down_is_503_json_then_recovers(s: &mut Stack) {
    let ip = "203.0.113.40";
    let (access, _) = s.register_and_login(ip, "dora@example.com", "dora").await;
    s.stop_origin();
    let started = Instant::now();
    let down = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.body,
        json!({"detail": "Service temporarily unavailable."})
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    s.start_origin().await;
    let up = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(up.status, StatusCode::OK);
}

/// The same Worker build with its Durable Object bindings missing (every limiter and OTP store
/// call fails): `auth` and `password_reset` refuse with 503 JSON (fail closed), `anon` and
/// `user` let requests through (fail open), as the README documents.
pub(crate) async fn durable_objects_down_fail_closed_for_auth_and_open_for_reads(s: &mut Stack) {
    let (access, _) = s
        .register_and_login("198.51.100.200", "dory@example.com", "dory")
        .await;
    let config = prebuilt_worker_config("no-durable-objects", false);
    let state = tempdir::Dir::new();
    let (_edge, edge) = serve_prebuilt(s, &config, &state.0).await;

    let post = |path: &str, body: Value| {
        s.http
            .post(format!("{edge}{path}"))
            .header("CF-Connecting-IP", "198.51.100.201")
            .json(&body)
            .send()
    };
    let unavailable = json!({"detail": shared::api::DETAIL_UNAVAILABLE});
    // Fail closed: login and the reset request.
    let login = read(
        post(
            "/api/auth/jwt/create/",
            json!({"email": "dory@example.com", "password": PASSWORD}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (login.status, &login.body),
        (StatusCode::SERVICE_UNAVAILABLE, &unavailable)
    );
    let reset = read(
        post(
            "/api/auth/password/reset/",
            json!({"email": "dory@example.com"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (reset.status, &reset.body),
        (StatusCode::SERVICE_UNAVAILABLE, &unavailable)
    );
    // Fail open: verifying a token (anon) and reading the profile (user).
    let verify = read(
        post("/api/auth/jwt/verify/", json!({ "token": access }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((verify.status, verify.body), (StatusCode::OK, json!({})));
    let me = s
        .request_at(
            &edge,
            Method::GET,
            "/api/auth/me/",
            "198.51.100.201",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["email"], "dory@example.com");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(config.with_file_name("wrangler.log")).unwrap();
    assert!(
        log.contains("rate limiter unavailable"),
        "the failure is logged"
    );
}

/// A Worker whose ORIGIN_SIGNING_SECRET differs from the origin's: clients get the documented
/// 503 (not the origin's 401 about our signature), and the cause is logged, for the reset email
/// too; an origin failure's log line carries no query string.
pub(crate) async fn a_signature_mismatch_is_503_and_logged(s: &mut Stack) {
    let s: &Stack = s;
    let config = prebuilt_worker_config("wrong-secret", true);
    let state = tempdir::Dir::new();
    let vars: Vec<String> = s
        .edge_vars
        .iter()
        .map(|v| {
            if v.starts_with("ORIGIN_SIGNING_SECRET:") {
                "ORIGIN_SIGNING_SECRET:not-the-origins-secret-0123456789abcdef".to_owned()
            } else {
                v.clone()
            }
        })
        .collect();
    let (_edge, edge) = serve_prebuilt_with(s, &config, &state.0, &vars).await;
    let unavailable = json!({"detail": shared::api::DETAIL_UNAVAILABLE});
    let post = |path: &'static str, body: Value| {
        s.request_at(&edge, Method::POST, path, "192.0.2.40", None, Some(body))
    };
    let login = post(
        "/api/auth/jwt/create/",
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (login.status, &login.body),
        (StatusCode::SERVICE_UNAVAILABLE, &unavailable)
    );
    assert!(login.headers.get("www-authenticate").is_none());
    let reset = post(
        "/api/auth/password/reset/",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let (access, _) = s
        .register_and_login("192.0.2.41", "sigrid@example.com", "sigrid")
        .await;
    let listed = s
        .request_at(
            &edge,
            Method::GET,
            "/api/auth/users/?page=query-marker-7f3a",
            "192.0.2.40",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(
        listed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        listed.body
    );
    let log_path = config.with_file_name("wrangler.log");
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("reset email not queued") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log.contains("refused the edge's signature"), "cause logged");
    assert!(
        log.contains("reset email not queued"),
        "the reset email's failure is logged"
    );
    assert!(
        !log.contains("query-marker-7f3a"),
        "no query string in the logs"
    );
}
