//! Request ids across edge and origin, and no secret in either log.

use crate::prelude::*;

/// True when `needle` occurs in `text` not as part of a longer run of letters and digits (a
/// 6-digit code can occur inside a millisecond timestamp by chance; that is not a leak).
pub(crate) fn contains_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// A full flow through the edge with one client request id, then both logs (origin JSON lines
/// and the Worker's console through wrangler) are read: the id crosses edge → origin, the
/// Worker's access line is written for a refused request and not for a successful one (the
/// default ACCESS_LOG=errors), and no password, code, token or secret of the run appears in
/// either.
pub(crate) async fn logs_carry_request_ids_and_no_secrets(s: &mut Stack) {
    let ip = "198.51.100.160";
    let (email, password) = ("lola@example.com", "61803398");
    let request_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let mut secrets: Vec<String> = vec![
        password.into(),
        NEW_PASSWORD.into(),
        SIGNING.into(),
        RESET.into(),
        OTP.into(),
    ];
    let created = read(
        s.http
            .post(format!("{}/api/auth/users/", s.edge))
            .header("CF-Connecting-IP", ip)
            .header("X-Request-Id", &request_id)
            .json(&json!({"email": email, "username": "lola", "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["x-request-id"], request_id.as_str());
    // The same sign-up again: refused (the email is taken), with a request id of its own.
    let refused_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let again = read(
        s.http
            .post(format!("{}/api/auth/users/", s.edge))
            .header("CF-Connecting-IP", "198.51.100.166")
            .header("X-Request-Id", &refused_id)
            .json(&json!({"email": email, "username": "lola2", "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    let login = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let access = login.body["access"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh"].as_str().unwrap().to_owned();
    let wrong = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.61",
            json!({"email": email, "password": "27182818"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    secrets.push("27182818".into());
    let rotated = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.62",
            json!({ "refresh": refresh }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let me = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let code = s.reset_code("198.51.100.63", email).await;
    let verified = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.100.64",
            json!({"email": email, "otp": code}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let reset_token = verified.body["reset_token"].as_str().unwrap().to_owned();
    let done = s
        .post(
            "/api/auth/password/reset/confirm/",
            "198.51.100.65",
            json!({"reset_token": reset_token, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    for token in [
        &access,
        &refresh,
        rotated.body["access"].as_str().unwrap(),
        rotated.body["refresh"].as_str().unwrap(),
        &reset_token,
    ] {
        secrets.push(token.to_string());
        // A token's signature alone is a secret too.
        secrets.push(token.rsplit('.').next().unwrap().to_owned());
    }
    secrets.push(code.clone());
    // The origin's outbox worker and wrangler write asynchronously.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let origin_log = std::fs::read_to_string(origin_log_path()).unwrap();
    let edge_log = std::fs::read_to_string(wrangler_log_path()).unwrap();
    for (name, log) in [("origin", &origin_log), ("edge", &edge_log)] {
        for secret in &secrets {
            assert!(
                !contains_token(log, secret),
                "a secret ({}…) is in the {name} log",
                &secret[..4]
            );
        }
        for pem_line in s.origin_env.iter().filter(|(k, _)| k == "JWT_PRIVATE_KEY") {
            for line in pem_line.1.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!log.contains(line), "the private key is in the {name} log");
            }
        }
        assert!(
            !log.contains(email),
            "the email address is in the {name} log"
        );
    }
    // The request ids cross edge → origin: the origin's access lines carry both.
    let origin_lines: Vec<Value> = origin_log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for (id, status) in [(&request_id, 201), (&refused_id, 400)] {
        assert!(
            origin_lines
                .iter()
                .any(|l| l["span"]["request_id"] == id.as_str()
                    && l["message"] == "answered"
                    && l["status"] == status),
            "origin access line with the request id of the {status}"
        );
    }
    // The Worker's own access line: for the refused sign-up, not for the created one.
    let edge_access = |id: &str| {
        edge_log
            .lines()
            .filter(|l| l.contains(id) && l.contains(r#""message":"answered""#))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let refused_lines = edge_access(&refused_id);
    assert!(
        refused_lines.len() == 1
            && refused_lines[0].contains(r#""path":"/api/auth/users/""#)
            && refused_lines[0].contains(r#""status":400"#),
        "one edge access line for the refused sign-up: {refused_lines:?}"
    );
    assert_eq!(
        edge_access(&request_id),
        Vec::<String>::new(),
        "no edge access line for a 201 with ACCESS_LOG unset"
    );
}
