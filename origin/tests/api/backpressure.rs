//! argon2 back-pressure (issue: "a login flood turns /me, refresh and the admin list into
//! 503s"): no pooled connection is held while a hash waits, the queue is bounded, and a queued
//! hash whose client has gone is skipped.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, Options, TestApp};

/// The value of the sample line that starts with `series` (name and labels exactly), read
/// through HTTP as a scraper would.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.metrics().await.body;
    let text = text.as_str().expect("metrics are text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

fn flood(app: &TestApp, n: usize) -> impl std::future::Future<Output = Vec<StatusCode>> + '_ {
    join_all((0..n).map(move |i| async move {
        // Unknown accounts: each still costs a full argon2 verification (the dummy hash).
        app.login(&format!("nobody{i}@example.com"), "58203917")
            .await
            .status
    }))
}

#[tokio::test]
async fn a_login_flood_does_not_starve_the_pool_and_dies_with_its_clients() {
    let app = spawn_app_with(Options {
        pool_size: 4,
        argon2_threads: 1,
        argon2_queue_depth: 64,
        ..Options::default()
    })
    .await;
    let (_, access, _) = app.signed_up("ada@example.com", "ada").await;
    let identity = app.identity(&access);

    // 40 parallel logins queue behind one hashing thread while /me is called in a loop.
    let started = Instant::now();
    let logins = flood(&app, 40);
    let me_loop = async {
        // Let the logins reach the queue first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut answers = Vec::new();
        for _ in 0..20 {
            let asked = Instant::now();
            let reply = app.me_as(identity).await;
            answers.push((reply.status, asked.elapsed()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    let (logins, me) = futures::join!(logins, me_loop);
    let flood_took = started.elapsed();
    assert!(
        logins.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{logins:?}"
    );
    assert!(me.iter().all(|(s, _)| *s == StatusCode::OK), "{me:?}");
    // /me waits for a connection, never for the hashes: each answer takes a small part of
    // the flood's time (holding connections across hashes made the first /me wait for about
    // 36 of the 40).
    let slowest = me.iter().map(|(_, t)| *t).max().unwrap();
    assert!(
        slowest < flood_took / 4,
        "slowest /me {slowest:?} during a flood of {flood_took:?}"
    );

    // Clients that give up: their requests are dropped while the hashes are still queued.
    let abandoned_before = metric(&app, "origin_argon2_abandoned_total").await;
    let gave_up = tokio::time::timeout(Duration::from_millis(300), flood(&app, 60)).await;
    assert!(
        gave_up.is_err(),
        "the flood was still queued when its clients left"
    );
    let left = Instant::now();
    loop {
        let waiting = metric(&app, "origin_argon2_waiting").await;
        if waiting == 0.0 {
            break;
        }
        assert!(
            left.elapsed() < Duration::from_secs(1),
            "{waiting} hashes still queued 1 s after their clients left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let skipped = metric(&app, "origin_argon2_abandoned_total").await - abandoned_before;
    assert!(skipped >= 20.0, "only {skipped} abandoned hashes skipped");
    // The service is fine afterwards.
    assert_eq!(app.me_as(identity).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_full_hash_queue_answers_503_with_retry_after_at_once() {
    let app = spawn_app_with(Options {
        argon2_threads: 1,
        argon2_queue_depth: 2,
        ..Options::default()
    })
    .await;
    let replies = join_all((0..20).map(|i| {
        let app = &app;
        async move {
            let asked = Instant::now();
            let reply = app
                .login(&format!("nobody{i}@example.com"), "58203917")
                .await;
            (reply, asked.elapsed())
        }
    }))
    .await;
    let refused: Vec<_> = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!refused.is_empty(), "no 503 from a queue of 2");
    for (reply, _) in &refused {
        assert_eq!(
            reply.body,
            json!({"detail": "Service temporarily unavailable."})
        );
        assert_eq!(reply.headers["retry-after"], "1");
    }
    assert!(replies
        .iter()
        .all(|(r, _)| r.status == StatusCode::UNAUTHORIZED
            || r.status == StatusCode::SERVICE_UNAVAILABLE));
    // Refused at once, not after waiting for the hashes ahead.
    let slowest_checked = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::UNAUTHORIZED)
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    let fastest_refused = refused.iter().map(|(_, t)| *t).min().unwrap();
    assert!(
        fastest_refused < slowest_checked,
        "{fastest_refused:?} vs {slowest_checked:?}"
    );
    assert!(metric(&app, "origin_argon2_rejected_total").await >= refused.len() as f64);
}
