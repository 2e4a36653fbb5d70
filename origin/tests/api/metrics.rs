//! `GET /metrics`: Prometheus text with request counts by route template, login outcomes,
//! email events, pool and argon2 gauges; behind a bearer token when METRICS_TOKEN is set.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_mailing, spawn_app_with, Options, TestApp};

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut request = app.http.get(format!("{}/metrics", app.metrics_address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The value of the sample line that starts with `series` (name and labels exactly).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_logins_and_emails() {
    let (app, sink) = spawn_app_mailing(Options {
        metrics_token: Some("metrics-scrape-token-0123456789"),
        ..Options::default()
    })
    .await;

    let (id, access, _) = app.signed_up("ada@example.com", "ada").await;
    assert_eq!(
        app.login("ada@example.com", "00000000").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("nobody@example.com", "00000000").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&access).await.body["id"], id);
    let queued = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "ada@example.com", "code": "042917"}),
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    sink.wait_for(1, Duration::from_secs(10)).await;
    // The sender counts the email right after the SMTP server accepted it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(&app, Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = scrape(&app, Some("metrics-scrape-token-0123456789")).await;
    assert_eq!(status, StatusCode::OK);

    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    };
    expect(
        r#"origin_http_requests_total{method="POST",route="/internal/users",status="201"}"#,
        1.0,
    );
    expect(
        r#"origin_http_requests_total{method="POST",route="/internal/tokens",status="200"}"#,
        1.0,
    );
    expect(
        r#"origin_http_requests_total{method="POST",route="/internal/tokens",status="401"}"#,
        2.0,
    );
    expect(
        r#"origin_http_requests_total{method="GET",route="/internal/me",status="200"}"#,
        1.0,
    );
    expect(
        r#"origin_http_request_duration_seconds_count{method="POST",route="/internal/tokens"}"#,
        3.0,
    );
    expect(r#"origin_logins_total{outcome="ok"}"#, 1.0);
    expect(r#"origin_logins_total{outcome="failed"}"#, 2.0);
    expect(r#"origin_emails_total{outcome="queued"}"#, 1.0);
    expect(r#"origin_emails_total{outcome="sent"}"#, 1.0);
    expect("origin_db_pool_max", 8.0);
    expect("origin_argon2_running", 0.0);
    expect("origin_argon2_waiting", 0.0);
    assert!(
        sample(&text, "origin_db_pool_connections").unwrap() >= 1.0,
        "{text}"
    );
    // Route templates only: no concrete paths, no query strings, no email addresses.
    assert!(!text.contains("ada@example.com"), "{text}");
    assert!(!text.contains("page="), "{text}");
}

#[tokio::test]
async fn metrics_are_open_without_a_token_configured_and_count_refused_requests() {
    let app = spawn_app_with(Options::default()).await;
    // An unsigned call to the internal API is refused and still counted under its route.
    assert_eq!(
        app.get_unsigned("/internal/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sample(
            &text,
            r#"origin_http_requests_total{method="GET",route="/internal/me",status="401"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

/// Which release and commit answers: one `origin_build_info` sample, always 1.
#[tokio::test]
async fn the_build_is_a_metric() {
    let app = spawn_app_with(Options::default()).await;
    let (_, text) = scrape(&app, None).await;
    let series = format!(
        r#"origin_build_info{{version="{}",commit="{}"}}"#,
        origin::VERSION,
        origin::COMMIT
    );
    assert_eq!(sample(&text, &series), Some(1.0), "{text}");
    assert_eq!(origin::VERSION, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn metrics_are_not_served_on_the_edges_listener() {
    let app = spawn_app_with(Options::default()).await;
    let public = app.get_unsigned("/metrics").await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert_eq!(public.body, json!({"detail": "Not found."}));
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("origin_db_pool_max"), "{text}");
    // And nothing of the edge's API on the metrics listener.
    let internal = app
        .http
        .get(format!("{}/internal/me", app.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), StatusCode::NOT_FOUND);
}
