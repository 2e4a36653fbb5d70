//! An attacker's requests against what a review found: long agents that broke every login, an
//! ended session's access token, an origin answer that redirects or stalls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::prelude::*;

/// A login with `agent` as its `User-Agent`.
async fn login_with_agent(s: &Stack, ip: &str, agent: &str, email: &str, password: &str) -> Reply {
    let request = s
        .http
        .post(format!("{}/api/auth/jwt/create/", s.edge))
        .header("CF-Connecting-IP", ip)
        .header("User-Agent", agent)
        .json(&json!({"email": email, "password": password}));
    read(request.send().await.expect("edge answers")).await
}

/// Agents of 255, 256 and 257 characters ending in a space, and one whose 256th character is a
/// space (the edge keeps 256): each login is answered as any other (401 for a wrong password,
/// 200 for the right one), never 503, and the session lists the agent without the space.
pub(crate) async fn long_user_agents_ending_in_a_space_log_in(s: &mut Stack) {
    let ip = "198.51.100.90";
    let email = "agents@example.com";
    let (access, _) = s.register_and_login(ip, email, "agents").await;
    let refusals = || {
        std::fs::read_to_string(origin_log_path())
            .unwrap()
            .matches("refused unsigned or badly signed internal request")
            .count()
    };
    let refused_before = refusals();
    let cut_at_a_space = format!("Mozilla/5.0 {} B", "A".repeat(243));
    let agents = [
        format!("{} ", "a".repeat(254)),
        format!("{} ", "b".repeat(255)),
        format!("{} ", "c".repeat(256)),
        cut_at_a_space.clone(),
    ];
    // Each agent from its own address: `auth` allows 3 calls a minute per client.
    for (n, agent) in agents.iter().enumerate() {
        let ip = format!("198.51.100.{}", 193 + n);
        let ip = ip.as_str();
        let wrong = login_with_agent(s, ip, agent, email, NEW_PASSWORD).await;
        assert_eq!(
            wrong.status,
            StatusCode::UNAUTHORIZED,
            "{} chars: {}",
            agent.len(),
            wrong.body
        );
        let right = login_with_agent(s, ip, agent, email, PASSWORD).await;
        assert_eq!(
            right.status,
            StatusCode::OK,
            "{} chars: {}",
            agent.len(),
            right.body
        );
    }
    let listed = s
        .request(Method::GET, "/api/auth/sessions/", ip, Some(&access), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let kept: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|session| session["user_agent"].as_str())
        .collect();
    assert!(
        kept.contains(&format!("Mozilla/5.0 {}", "A".repeat(243)).as_str()),
        "{kept:?}"
    );
    assert!(kept.contains(&"b".repeat(255).as_str()), "{kept:?}");
    assert!(kept.contains(&"c".repeat(256).as_str()), "{kept:?}");
    assert!(kept.iter().all(|a| a.trim() == *a), "{kept:?}");
    assert_eq!(refusals(), refused_before, "no signature was refused");
}

/// The owner ends the thief's session; the thief's access token, still within its lifetime,
/// can then do nothing with the account through the Worker: not end the owner's sessions, not
/// read or change the profile, not list sessions.
pub(crate) async fn an_ended_sessions_access_token_loses_the_account(s: &mut Stack) {
    let (owner_ip, thief_ip) = ("198.51.100.91", "203.0.113.91");
    let email = "victim@example.com";
    let (owner, _) = s.register_and_login(owner_ip, email, "victim").await;
    let stolen = s
        .post(
            "/api/auth/jwt/create/",
            thief_ip,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::OK, "{}", stolen.body);
    let thief = stolen.body["access"].as_str().unwrap().to_owned();
    let listed = s
        .request(
            Method::GET,
            "/api/auth/sessions/",
            owner_ip,
            Some(&owner),
            None,
        )
        .await;
    let thief_session = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == false)
        .expect("the thief's session is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = s
        .request(
            Method::DELETE,
            &format!("/api/auth/sessions/{thief_session}/"),
            owner_ip,
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);

    let attempts = [
        (Method::POST, "/api/auth/sessions/revoke-others/", None),
        (Method::GET, "/api/auth/sessions/", None),
        (Method::GET, "/api/auth/me/", None),
        (
            Method::PATCH,
            "/api/auth/me/",
            Some(json!({"first_name": "Mallory"})),
        ),
        (
            Method::DELETE,
            "/api/auth/users/me/",
            Some(json!({"current_password": PASSWORD})),
        ),
    ];
    for (method, path, body) in attempts {
        let reply = s
            .request(method.clone(), path, thief_ip, Some(&thief), body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.body["code"], "token_not_valid", "{method} {path}");
    }
    // The owner is still logged in, and nothing the thief tried took effect.
    let me = s
        .request(Method::GET, "/api/auth/me/", owner_ip, Some(&owner), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["first_name"], "");
}

/// A stand-in for the origin on its port: a login is answered with a redirect to `elsewhere`,
/// `/internal/me` with headers and then nothing. Returns how many connections `elsewhere` got.
async fn misbehaving_origin(port: u16) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_port = elsewhere.local_addr().unwrap().port();
    let stolen = Arc::new(AtomicUsize::new(0));
    let counter = stolen.clone();
    tokio::spawn(async move {
        while elsewhere.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = vec![0u8; 16 * 1024];
                let n = conn.read(&mut head).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                if head.starts_with("POST /internal/tokens ") {
                    let answer = format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{elsewhere_port}/steal\r\nContent-Length: 0\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                } else {
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                        .await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    (server, stolen)
}

/// The Worker never follows the origin's redirect (it would resend the signed headers and the
/// password elsewhere): a 3xx is a 503. An origin that sends its headers and then stalls is
/// answered 503 within the origin timeout (3 s here), not held.
pub(crate) async fn the_origin_is_never_followed_nor_waited_on(s: &mut Stack) {
    let ip = "198.51.100.92";
    let (access, _) = s
        .register_and_login(ip, "follow@example.com", "follow")
        .await;
    s.stop_origin();
    let (server, elsewhere) = misbehaving_origin(s.origin_port).await;
    let unavailable = json!({"detail": "Service temporarily unavailable."});

    let login = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": "follow@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (login.status, &login.body),
        (StatusCode::SERVICE_UNAVAILABLE, &unavailable)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        elsewhere.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );

    let started = Instant::now();
    let me = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(
        (me.status, &me.body),
        (StatusCode::SERVICE_UNAVAILABLE, &unavailable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "held for {:?}",
        started.elapsed()
    );
    server.abort();
    let _ = server.await;
    s.start_origin().await;
    let wrangler_log = std::fs::read_to_string(wrangler_log_path()).unwrap();
    assert!(
        wrangler_log.contains("a redirect (not followed)"),
        "the redirect is logged"
    );
}
