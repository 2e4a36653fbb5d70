//! HTTP behaviour at the edge: CORS, bad input, null characters, the API docs pages.

use crate::prelude::*;

pub(crate) async fn cors_preflight_and_headers(s: &mut Stack) {
    let pre = s
        .http
        .request(Method::OPTIONS, format!("{}/api/auth/jwt/create/", s.edge))
        .header("Origin", ALLOWED_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(pre.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert!(pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let evil = s
        .http
        .request(Method::OPTIONS, format!("{}/api/auth/jwt/create/", s.edge))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
    let simple = s
        .http
        .get(format!("{}/.well-known/jwks.json", s.edge))
        .header("Origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        ALLOWED_ORIGIN
    );
}

/// The Worker's own probe: the release and commit it was built from (those of the origin built
/// from the same checkout), without a call to the origin.
pub(crate) async fn healthz_names_the_workers_release(s: &mut Stack) {
    let reply = s
        .http
        .get(format!("{}/healthz", s.edge))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["x-auth-api-version"],
        format!("{}+{}", origin::VERSION, origin::COMMIT).as_str()
    );
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["commit"], origin::COMMIT);
}

pub(crate) async fn bad_input_is_json_never_5xx(s: &mut Stack) {
    let ip = "203.0.113.30";
    let url = format!("{}/api/auth/jwt/verify/", s.edge);
    let form = s
        .http
        .post(&url)
        .header("CF-Connecting-IP", ip)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = read(
        s.http
            .post(&url)
            .header("CF-Connecting-IP", ip)
            .header("Content-Type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert!(broken.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error - "));
    let big = s
        .http
        .post(&url)
        .header("CF-Connecting-IP", ip)
        .header("Content-Type", "application/json")
        .body(format!("{{\"token\": \"{}\"}}", "a".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let missing = s
        .request(Method::GET, "/api/auth/nothing/", ip, None, None)
        .await;
    assert_eq!(
        (missing.status, missing.body),
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );
    let put = s
        .request(Method::PUT, "/api/auth/me/", ip, None, None)
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers["allow"], "GET, PATCH, DELETE, OPTIONS");
    let id = s
        .http
        .get(format!("{}/.well-known/jwks.json", s.edge))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(id.headers()["x-request-id"], "abc-123");
}

/// U+0000 in a string field is a DRF field error through the Worker (it used to reach
/// PostgreSQL: 500 at the origin, 503 here).
pub(crate) async fn null_characters_are_field_errors(s: &mut Stack) {
    let s: &Stack = s;
    let ip = "192.0.2.20";
    let (access, _) = s.register_and_login(ip, "nola@example.com", "nola").await;
    let null = json!(["Null characters are not allowed."]);
    // Forwarded to the origin (login, sign-up) or read at the edge (verify, reset request).
    for (path, ip, body, field) in [
        (
            "/api/auth/jwt/create/",
            "192.0.2.21",
            json!({"email": "nola\u{0}@example.com", "password": PASSWORD}),
            "email",
        ),
        (
            "/api/auth/users/",
            "192.0.2.22",
            json!({"email": "x@example.com", "username": "x\u{0}", "password": "40718263"}),
            "username",
        ),
        (
            "/api/auth/jwt/verify/",
            "192.0.2.23",
            json!({"token": "\u{0}"}),
            "token",
        ),
        (
            "/api/auth/password/reset/",
            "192.0.2.24",
            json!({"email": "nola@example.com\u{0}"}),
            "email",
        ),
    ] {
        let r = s.post(path, ip, body).await;
        assert_eq!(
            (r.status, &r.body[field]),
            (StatusCode::BAD_REQUEST, &null),
            "{path}: {}",
            r.body
        );
    }
    for field in ["first_name", "last_name", "username"] {
        let patch = s
            .request(
                Method::PATCH,
                "/api/auth/me/",
                ip,
                Some(&access),
                Some(json!({ field: "a\u{0}b" })),
            )
            .await;
        assert_eq!(
            (patch.status, &patch.body[field]),
            (StatusCode::BAD_REQUEST, &null),
            "{field}: {}",
            patch.body
        );
    }
}

/// Renders a docs page in headless Chromium: returns the DOM after scripts ran, and writes a
/// screenshot to `target/<name>.png`.
pub(crate) fn chromium(url: &str, name: &str) -> String {
    let profile = tempdir::Dir::new();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=15000",
        "--window-size=1280,1600",
    ];
    let run = |extra: &str| {
        let out = Command::new("chromium")
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(extra)
            .arg(url)
            .output()
            .expect("chromium runs (`cargo xtask test` installs Debian's chromium)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = repo_root().join(format!("target/{name}.png"));
    run(&format!("--screenshot={}", shot.display()));
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot {shot:?}"
    );
    run("--dump-dom")
}

pub(crate) async fn api_docs_are_served_offline_and_render(s: &mut Stack) {
    let ip = "203.0.113.50";
    let schema = s.request(Method::GET, "/api/schema/", ip, None, None).await;
    assert_eq!(schema.status, StatusCode::OK);
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("edge/assets/api/schema/index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(schema.body, on_disk);
    for (path, kind) in [
        ("/swagger/", "text/html"),
        ("/swagger/swagger-ui-bundle.js", "javascript"),
        ("/swagger/swagger-ui.css", "text/css"),
        ("/redoc/", "text/html"),
        ("/redoc/redoc.standalone.js", "javascript"),
    ] {
        let r = s
            .http
            .get(format!("{}{path}", s.edge))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.contains(kind), "{path}: {content_type}");
        let body = r.text().await.unwrap();
        // The pages load everything from this origin (this machine has no internet, so the
        // rendering check below would fail on any external fetch too).
        if kind == "text/html" {
            assert!(
                !body.contains("src=\"http") && !body.contains("href=\"http"),
                "{path} loads from elsewhere"
            );
        }
    }
    let edge = s.edge.clone();
    let (swagger, redoc) = tokio::task::spawn_blocking(move || {
        (
            chromium(&format!("{edge}/swagger/"), "docs-swagger"),
            chromium(&format!("{edge}/redoc/"), "docs-redoc"),
        )
    })
    .await
    .unwrap();
    for page in [&swagger, &redoc] {
        assert!(
            page.contains("/api/auth/jwt/create/"),
            "operations rendered: {}",
            &page[..page.len().min(500)]
        );
        assert!(page.contains("/api/auth/password/reset/verify-otp/"));
    }
}
