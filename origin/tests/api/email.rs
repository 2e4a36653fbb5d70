use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::{
    code_in, free_port, spawn_app_mailing, spawn_app_with, Options, SmtpSink, TestApp,
};

#[tokio::test]
async fn reset_email_is_delivered_over_smtp_with_the_code() {
    let (app, sink) = spawn_app_mailing(Options::default()).await;
    app.signed_up("ada@example.com", "ada").await;

    let reply = app
        .post(
            "/internal/password-reset/code",
            json!({"email": "ada@example.com", "code": "042917"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let messages = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(
        message.contains("Subject: Your password reset code"),
        "{message}"
    );
    assert!(message.contains("To: ada@example.com"), "{message}");
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(message.contains("text/html"), "{message}");
    assert_eq!(code_in(message), "042917");

    // Sent rows keep their metadata but not the code.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL AND body_text = ''")
            .await,
        1
    );
}

/// The app with SMTP "down": a port is reserved, then closed, until a listener takes it again.
async fn app_with_smtp_down() -> (TestApp, u16) {
    let port = free_port();
    let app = spawn_app_with(Options {
        smtp_port: Some(port),
        ..Options::default()
    })
    .await;
    (app, port)
}

#[tokio::test]
async fn emails_wait_in_the_outbox_while_smtp_is_down_and_go_out_once_it_is_back() {
    let (app, port) = app_with_smtp_down().await;
    app.signed_up("ada@example.com", "ada").await;
    app.signed_up("bob@example.com", "bob").await;
    app.post(
        "/internal/password-reset/code",
        json!({"email": "ada@example.com", "code": "111111"}),
    )
    .await;
    app.post(
        "/internal/password-reset/code",
        json!({"email": "bob@example.com", "code": "222222"}),
    )
    .await;

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(app.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NULL AND attempts >= 1 AND last_error IS NOT NULL").await, 2);

    let sink = SmtpSink::serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let messages = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(
        messages.len(),
        2,
        "both queued emails delivered after the outage"
    );
    let mut codes: Vec<String> = messages.iter().map(|m| code_in(m)).collect();
    codes.sort();
    assert_eq!(codes, ["111111", "222222"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2, "none sent twice");
    assert_eq!(
        app.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL")
            .await,
        2
    );
}

#[tokio::test]
async fn a_reset_email_that_outlives_its_code_is_never_sent_and_its_code_is_erased() {
    let (app, port) = app_with_smtp_down().await;
    app.signed_up("ada@example.com", "ada").await;
    app.post(
        "/internal/password-reset/code",
        json!({"email": "ada@example.com", "code": "314159"}),
    )
    .await;
    // The row lives as long as the code (10 minutes) and is retried meanwhile.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM email_outbox WHERE expires_at \
             BETWEEN created_at + interval '599 seconds' AND created_at + interval '601 seconds'"
        )
        .await,
        1
    );
    // The first attempt follows the enqueue at once; on a loaded machine (the suite runs its
    // tests in parallel) give it up to 10 s.
    let tried = "SELECT count(*) FROM email_outbox WHERE attempts >= 1 AND last_error IS NOT NULL \
                 AND abandoned_at IS NULL AND body_text LIKE '%314159%'";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.count(tried).await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.count(tried).await, 1, "retried while live");

    // The code's lifetime ends before SMTP comes back.
    app.sql("UPDATE email_outbox SET expires_at = now() - interval '1 second'")
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while app
        .count("SELECT count(*) FROM email_outbox WHERE abandoned_at IS NOT NULL")
        .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired row was not abandoned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(
            "SELECT count(*) FROM email_outbox WHERE body_text = '' AND body_html = '' \
             AND last_error = 'expired before delivery' AND sent_at IS NULL"
        )
        .await,
        1,
        "the code is erased"
    );
    let attempts = app.count("SELECT attempts::bigint FROM email_outbox").await;

    // SMTP is back: the abandoned row is never sent nor tried again.
    let sink = SmtpSink::serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
    assert_eq!(
        app.count("SELECT attempts::bigint FROM email_outbox").await,
        attempts
    );
}
