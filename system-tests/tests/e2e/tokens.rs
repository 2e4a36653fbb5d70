//! Token verify, kinds, rotation, logout, forgery and revocation.

use crate::prelude::*;

pub(crate) async fn verify_accepts_access_and_refresh_only(s: &mut Stack) {
    let ip = "198.51.100.3";
    let (access, refresh) = s.register_and_login(ip, "vera@example.com", "vera").await;
    for token in [&access, &refresh] {
        let r = s
            .post("/api/auth/jwt/verify/", ip, json!({ "token": token }))
            .await;
        assert_eq!((r.status, r.body), (StatusCode::OK, json!({})));
    }
    let bad = s
        .post("/api/auth/jwt/verify/", ip, json!({"token": "not.a.token"}))
        .await;
    assert_eq!(
        (bad.status, &bad.body),
        (StatusCode::UNAUTHORIZED, &not_valid())
    );
    assert_eq!(bad.headers["www-authenticate"], "Bearer realm=\"api\"");
    let jwks = s
        .request(Method::GET, "/.well-known/jwks.json", ip, None, None)
        .await;
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP");
}

pub(crate) async fn kinds_are_not_interchangeable(s: &mut Stack) {
    let ip = "198.51.100.4";
    let (access, refresh) = s.register_and_login(ip, "kim@example.com", "kim").await;
    let as_refresh = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.40",
            json!({ "refresh": access }),
        )
        .await;
    assert_eq!(
        (as_refresh.status, &as_refresh.body),
        (StatusCode::UNAUTHORIZED, &not_valid())
    );
    let as_bearer = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&refresh), None)
        .await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        as_bearer.body["detail"],
        "Given token not valid for any token type"
    );
    let none = s
        .request(Method::GET, "/api/auth/me/", ip, None, None)
        .await;
    assert_eq!(
        none.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
}

pub(crate) async fn refresh_rotation_and_logout(s: &mut Stack) {
    let ip = "198.51.100.5";
    let (access, refresh) = s.register_and_login(ip, "rota@example.com", "rota").await;
    let r = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.50",
            json!({ "refresh": refresh }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rotated = r.body["refresh"].as_str().unwrap().to_owned();
    assert_ne!(rotated, refresh);
    let out = s
        .request(
            Method::POST,
            "/api/auth/logout/",
            ip,
            Some(&access),
            Some(json!({ "refresh": rotated })),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.51",
            json!({ "refresh": rotated }),
        )
        .await;
    assert_eq!(
        (after.status, after.body),
        (StatusCode::UNAUTHORIZED, not_valid())
    );
}

/// base64url without padding of a JSON value (a JWT segment).
pub(crate) fn segment(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWT with exactly this header and payload, signed by `sign` over `header.payload`.
pub(crate) fn forge(header: &Value, payload: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    use base64::Engine;
    let input = format!("{}.{}", segment(header), segment(payload));
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// The token attack matrix (issue 5) through the edge: every forged or misused token is refused
/// on `/jwt/verify/`, as a bearer on `/me/` and on `/jwt/refresh/`, with API.md's bodies and
/// never a 5xx; a genuine token passes the same checks (so the matrix can fail).
pub(crate) async fn forged_and_misused_tokens_are_refused(s: &mut Stack) {
    use ed25519_dalek::Signer;
    use hmac::Mac;

    let (access, refresh) = s
        .register_and_login("198.51.100.170", "mal@example.com", "mal")
        .await;
    let me = s
        .request(
            Method::GET,
            "/api/auth/me/",
            "198.51.100.170",
            Some(&access),
            None,
        )
        .await;
    let user_id = me.body["id"].as_i64().unwrap();
    let pem = &s
        .origin_env
        .iter()
        .find(|(k, _)| k == "JWT_PRIVATE_KEY")
        .unwrap()
        .1;
    let ours = Ed25519PrivateKey::from_pem(pem).unwrap();
    let our_kid = ours.public_jwk().kid;
    // PKCS#8 for Ed25519 ends with the 32-byte seed.
    let der: Vec<u8> = {
        use base64::Engine;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let our_signer =
        ed25519_dalek::SigningKey::from_bytes(&der[der.len() - 32..].try_into().unwrap());
    assert_eq!(our_signer.verifying_key().to_bytes(), ours.public_key());
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut c = json!({
            "token_type": "access", "user_id": user_id, "jti": uuid::Uuid::new_v4().simple().to_string(),
            "iat": now, "exp": now + 300, "ver": 0, "role": "admin",
            "iss": "auth-api", "aud": "auth-api"
        });
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let eddsa = |kid: &str| json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let ours_sign = |m: &[u8]| our_signer.sign(m).to_bytes().to_vec();
    let attacker_sign = |m: &[u8]| attacker.sign(m).to_bytes().to_vec();
    let hmac_with = |key: Vec<u8>| {
        move |m: &[u8]| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let jwks_text = s
        .request(
            Method::GET,
            "/.well-known/jwks.json",
            "198.51.100.171",
            None,
            None,
        )
        .await
        .body
        .to_string();
    let (head, rest) = access.split_once('.').unwrap();
    let (_, genuine_sig) = rest.split_once('.').unwrap();
    let reset = shared::token::ResetTokens::new(
        RESET.as_bytes(),
        shared::token::Audience {
            issuer: "auth-api".into(),
            audience: "auth-api".into(),
        },
    )
    .unwrap()
    .issue("mal@example.com", "r1".into(), now, 900)
    .unwrap();

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                segment(&json!({"alg": "none", "typ": "JWT"})),
                segment(&claims(json!({})))
            ),
        ),
        (
            "alg none with our kid",
            format!(
                "{}.{}.",
                segment(&json!({"alg": "none", "kid": our_kid})),
                segment(&claims(json!({})))
            ),
        ),
        (
            "HS256 keyed with our raw public key",
            forge(
                &json!({"alg": "HS256", "kid": our_kid}),
                &claims(json!({})),
                hmac_with(ours.public_key().to_vec()),
            ),
        ),
        (
            "HS256 keyed with our JWKS text",
            forge(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &claims(json!({})),
                hmac_with(jwks_text.clone().into_bytes()),
            ),
        ),
        (
            "unknown kid",
            forge(&eddsa("attacker-key"), &claims(json!({})), attacker_sign),
        ),
        (
            "our kid, attacker's signature",
            forge(&eddsa(&our_kid), &claims(json!({})), attacker_sign),
        ),
        (
            "kid path injection",
            forge(
                &eddsa("../../../../dev/null"),
                &claims(json!({})),
                attacker_sign,
            ),
        ),
        (
            "kid SQL injection",
            forge(&eddsa("x' OR '1'='1"), &claims(json!({})), attacker_sign),
        ),
        (
            "jku to the attacker's JWKS",
            forge(
                &json!({"alg": "EdDSA", "kid": "attacker-key", "jku": "http://127.0.0.1:9/jwks.json"}),
                &claims(json!({})),
                attacker_sign,
            ),
        ),
        (
            "x5u to the attacker's certificate",
            forge(
                &json!({"alg": "EdDSA", "x5u": "http://127.0.0.1:9/cert.pem"}),
                &claims(json!({})),
                attacker_sign,
            ),
        ),
        (
            "embedded jwk of the attacker",
            forge(
                &json!({"alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}),
                &claims(json!({})),
                attacker_sign,
            ),
        ),
        (
            "crit header",
            forge(
                &json!({"alg": "EdDSA", "kid": our_kid, "crit": ["exp"]}),
                &claims(json!({})),
                ours_sign,
            ),
        ),
        (
            "expired",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"iat": now - 4000, "exp": now - 3600})),
                ours_sign,
            ),
        ),
        (
            "issued in the future",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"iat": now + 3600, "exp": now + 7200})),
                ours_sign,
            ),
        ),
        (
            "not yet valid (nbf)",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"nbf": now + 3600})),
                ours_sign,
            ),
        ),
        (
            "wrong issuer",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"iss": "someone-else"})),
                ours_sign,
            ),
        ),
        (
            "wrong audience",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"aud": "another-api"})),
                ours_sign,
            ),
        ),
        (
            "unknown token type",
            forge(
                &eddsa(&our_kid),
                &claims(json!({"token_type": "id"})),
                ours_sign,
            ),
        ),
        ("password-reset token", reset.clone()),
        (
            "reset claims signed by our key",
            forge(
                &eddsa(&our_kid),
                &json!({"token_type": "password_reset", "email": "mal@example.com", "jti": "x", "iat": now, "exp": now + 900, "iss": "auth-api", "aud": "auth-api"}),
                ours_sign,
            ),
        ),
        (
            "tampered payload (admin role)",
            format!("{head}.{}.{genuine_sig}", segment(&claims(json!({})))),
        ),
        ("truncated signature", access[..access.len() - 6].to_owned()),
        (
            "signature of another token",
            format!("{}.{genuine_sig}", refresh.rsplit_once('.').unwrap().0),
        ),
        (
            "two segments",
            format!("{head}.{}", segment(&claims(json!({})))),
        ),
        (
            "oversized (20 KB)",
            format!("{head}.{}.{genuine_sig}", "A".repeat(20_000)),
        ),
        ("not base64", "!!!.???.***".to_owned()),
        ("empty", String::new()),
    ];
    let not_valid_body = not_valid();
    let mut n = 0u32;
    let mut ip = || {
        n += 1;
        format!("198.18.{}.{}", n / 250, n % 250 + 1)
    };
    let mut failures = Vec::new();
    for (name, token) in &cases {
        // Malformed input is a DRF field error (400) before it is a token: blank, as the
        // original answers, and over 4096 characters (our bound on work per request).
        let expected = |field: &str| match token.len() {
            0 => (
                StatusCode::BAD_REQUEST,
                json!({ field: ["This field may not be blank."] }),
            ),
            n if n > shared::token::MAX_TOKEN_BYTES => (
                StatusCode::BAD_REQUEST,
                json!({ field: ["Ensure this field has no more than 4096 characters."] }),
            ),
            _ => (StatusCode::UNAUTHORIZED, not_valid_body.clone()),
        };
        let verify = s
            .post("/api/auth/jwt/verify/", &ip(), json!({ "token": token }))
            .await;
        if (verify.status, verify.body.clone()) != expected("token") {
            failures.push(format!("{name}: verify {} {}", verify.status, verify.body));
        }
        let refreshed = s
            .post("/api/auth/jwt/refresh/", &ip(), json!({ "refresh": token }))
            .await;
        if (refreshed.status, refreshed.body.clone()) != expected("refresh") {
            failures.push(format!(
                "{name}: refresh {} {}",
                refreshed.status, refreshed.body
            ));
        }
        if !token.is_empty() {
            let bearer = s
                .request(Method::GET, "/api/auth/me/", &ip(), Some(token), None)
                .await;
            if bearer.status != StatusCode::UNAUTHORIZED
                || bearer.body["code"] != "token_not_valid"
                || bearer.body["detail"] != shared::api::DETAIL_NO_TOKEN_TYPE
                || bearer.headers["www-authenticate"] != "Bearer realm=\"api\""
            {
                failures.push(format!("{name}: me {} {}", bearer.status, bearer.body));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "accepted or mis-answered:\n{}",
        failures.join("\n")
    );

    // Controls: the genuine pair passes, and a well-signed access token with an outdated `ver`
    // (as after a password reset) passes the edge's signature check but not the origin.
    let ok = s
        .post("/api/auth/jwt/verify/", &ip(), json!({ "token": access }))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let me = s
        .request(Method::GET, "/api/auth/me/", &ip(), Some(&access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let outdated = forge(
        &eddsa(&our_kid),
        &claims(json!({"ver": 1, "role": "user"})),
        ours_sign,
    );
    let me = s
        .request(Method::GET, "/api/auth/me/", &ip(), Some(&outdated), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert_eq!(me.body["code"], "token_not_valid");
    // Reset-token claims signed by our key at confirm: refused like any invalid reset token.
    let confirm = s
        .post(
            "/api/auth/password/reset/confirm/",
            &ip(),
            json!({"reset_token": cases[19].1, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::BAD_REQUEST, "{}", confirm.body);
    assert_eq!(
        confirm.body,
        json!({"reset_token": ["Invalid or expired reset token."]})
    );
    println!(
        "  {} forged or misused tokens refused on 3 endpoints each",
        cases.len()
    );
}

/// SimpleJWT's blacklist through the Worker: a refresh token rotated out, logged out, or
/// revoked by a password reset answers 400 "Token is blacklisted" at `jwt/verify/`.
pub(crate) async fn verify_refuses_revoked_refresh_tokens(s: &mut Stack) {
    let s: &Stack = s;
    let ip = "192.0.2.10";
    let blacklisted = json!({"non_field_errors": ["Token is blacklisted"]});
    let verify = |token: String| async move {
        s.post(
            "/api/auth/jwt/verify/",
            "192.0.2.11",
            json!({ "token": token }),
        )
        .await
    };
    let (access, refresh) = s
        .register_and_login(ip, "blanche@example.com", "blanche")
        .await;
    assert_eq!(verify(refresh.clone()).await.status, StatusCode::OK);

    // 1. Rotated out.
    let rotated = s
        .post("/api/auth/jwt/refresh/", ip, json!({ "refresh": refresh }))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let r = verify(refresh.clone()).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &blacklisted));
    let child = rotated.body["refresh"].as_str().unwrap().to_owned();
    assert_eq!(verify(child.clone()).await.status, StatusCode::OK);

    // 2. Logged out.
    let out = s
        .request(
            Method::POST,
            "/api/auth/logout/",
            ip,
            Some(&access),
            Some(json!({ "refresh": child })),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let r = verify(child).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &blacklisted));

    // 3. Revoked by a password reset.
    let login = s
        .post(
            "/api/auth/jwt/create/",
            "192.0.2.12",
            json!({"email": "blanche@example.com", "password": PASSWORD}),
        )
        .await;
    let live = login.body["refresh"].as_str().unwrap().to_owned();
    assert_eq!(verify(live.clone()).await.status, StatusCode::OK);
    let code = s.reset_code("192.0.2.13", "blanche@example.com").await;
    let reset = s
        .post(
            "/api/auth/password/reset/confirm/",
            "192.0.2.14",
            json!({"email": "blanche@example.com", "otp": code, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    let r = verify(live).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &blacklisted));
}
