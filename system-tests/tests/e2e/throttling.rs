//! Throttle scopes and their rates, under bursts, across restarts, per IPv6 /64.

use crate::prelude::*;

pub(crate) async fn fourth_auth_call_in_a_minute_is_throttled(s: &mut Stack) {
    let ip = "198.51.100.7";
    for _ in 0..3 {
        let r = s
            .post(
                "/api/auth/jwt/create/",
                ip,
                json!({"email": "nobody@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        r.body,
        json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")})
    );
    // Another client is not affected.
    let other = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.70",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

/// 10 logins at once from one address, `auth` = 3/min: exactly 3 reach the origin.
pub(crate) async fn parallel_calls_in_one_scope_allow_exactly_the_rate(s: &mut Stack) {
    let replies = futures::future::join_all((0..10).map(|_| {
        s.post(
            "/api/auth/jwt/create/",
            "198.51.100.180",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&c| c == 401).count(),
        3,
        "exactly the rate gets through: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&c| c == 429).count(),
        7,
        "{statuses:?}"
    );
}

/// The limiter keeps each key's history in memory and writes it through: after workerd
/// restarts on the same Durable Object state, a client that used up `auth` (3/min) is still
/// refused, and another client is not.
pub(crate) async fn throttle_counts_survive_a_worker_restart(s: &mut Stack) {
    let config = prebuilt_worker_config("restart", true);
    let state = tempdir::Dir::new();
    let login = |edge: String, ip: &'static str| {
        let http = s.http.clone();
        async move {
            let r = http
                .post(format!("{edge}/api/auth/jwt/create/"))
                .header("CF-Connecting-IP", ip)
                .json(&json!({"email": "nobody@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            read(r).await
        }
    };
    let (mut edge, url) = serve_prebuilt(s, &config, &state.0).await;
    for _ in 0..3 {
        let r = login(url.clone(), "198.51.100.220").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let fourth = login(url.clone(), "198.51.100.220").await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
    edge.stop();

    let (_edge, url) = serve_prebuilt(s, &config, &state.0).await;
    let after = login(url.clone(), "198.51.100.220").await;
    assert_eq!(
        after.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the history was reloaded from storage: {}",
        after.body
    );
    let wait: u64 = after.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let other = login(url, "198.51.100.221").await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{}", other.body);
}

/// Every address of one IPv6 /64 is one client: 10 logins from 10 addresses of one /64 in a
/// minute, `auth` = 3/min → the 4th and later are 429. Another /64 is another client.
pub(crate) async fn ipv6_clients_are_throttled_per_64(s: &mut Stack) {
    let s: &Stack = s;
    let login = |ip: String| async move {
        s.post(
            "/api/auth/jwt/create/",
            &ip,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await
        .status
    };
    let mut statuses = Vec::new();
    for host in 1..=10 {
        // Spellings vary too: upper case, zeros written out.
        let ip = if host % 2 == 0 {
            format!("2001:DB8:0:12::{host:x}")
        } else {
            format!("2001:0db8:0000:0012:{host:x}:0:0:1")
        };
        statuses.push(login(ip).await);
    }
    let allowed = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3], "{statuses:?}");
    assert!(
        statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    println!(
        "  one /64, 10 addresses: {allowed} logins let through, {} throttled",
        10 - allowed
    );
    assert_eq!(
        login("2001:db8:0:13::1".into()).await,
        StatusCode::UNAUTHORIZED,
        "another /64 is another client"
    );
}
