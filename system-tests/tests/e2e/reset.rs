//! The password reset by emailed code, its throttles and the owner's hold on the channel.

use crate::prelude::*;

pub(crate) async fn password_reset_end_to_end(s: &mut Stack) {
    let (access, refresh) = s
        .register_and_login("198.51.100.8", "rita@example.com", "rita")
        .await;
    // Unknown email: same answer, no email.
    let before = s.sink.messages().len();
    let unknown = s
        .post(
            "/api/auth/password/reset/",
            "198.51.100.80",
            json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        unknown.body,
        json!({"detail": "If an account exists for this email, a code has been sent."})
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        s.sink.messages().len(),
        before,
        "no email for an unknown account"
    );

    // Five wrong guesses from other networks than the one that asked: the first two close the
    // code to every other network (five in all would burn it), so the right code is refused
    // from elsewhere afterwards.
    let code = s.reset_code("198.51.100.81", "rita@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let invalid = json!({"otp": ["Invalid or expired code."]});
    for i in 0..5 {
        let r = s
            .post(
                "/api/auth/password/reset/verify-otp/",
                &format!("198.51.100.{}", 90 + i),
                json!({"email": "rita@example.com", "otp": wrong}),
            )
            .await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &invalid));
    }
    let burned = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.100.96",
            json!({"email": "rita@example.com", "otp": code}),
        )
        .await;
    assert_eq!(
        burned.body, invalid,
        "closed to other networks after their wrong guesses"
    );

    // A new code, asked for from the network that asked for the first (only that network may
    // replace a live code), works once, from anywhere.
    let code = s.reset_code("198.51.100.81", "rita@example.com").await;
    let ok = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.100.83",
            json!({"email": "rita@example.com", "otp": code}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let token = ok.body["reset_token"].as_str().unwrap().to_owned();
    let reuse = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.100.84",
            json!({"email": "rita@example.com", "otp": code}),
        )
        .await;
    assert_eq!(reuse.body, invalid, "an OTP is single use");

    let confirm = json!({"reset_token": token, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD});
    let done = s
        .post(
            "/api/auth/password/reset/confirm/",
            "198.51.100.85",
            confirm.clone(),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let again = s
        .post(
            "/api/auth/password/reset/confirm/",
            "198.51.100.86",
            confirm,
        )
        .await;
    assert_eq!(
        again.body,
        json!({"reset_token": ["Invalid or expired reset token."]})
    );

    let old = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.87",
            json!({"email": "rita@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "old password dead");
    let old_refresh = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.88",
            json!({ "refresh": refresh }),
        )
        .await;
    assert_eq!(
        old_refresh.status,
        StatusCode::UNAUTHORIZED,
        "old refresh tokens dead"
    );
    let me = s
        .request(
            Method::GET,
            "/api/auth/me/",
            "198.51.100.89",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the origin refuses the outdated access token"
    );
    let new = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.97",
            json!({"email": "rita@example.com", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK);
}

pub(crate) async fn confirm_with_email_and_otp(s: &mut Stack) {
    s.register_and_login("198.51.100.9", "otto@example.com", "otto")
        .await;
    let code = s.reset_code("198.51.100.98", "otto@example.com").await;
    let body = json!({"email": "otto@example.com", "otp": code, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD});
    let r = s
        .post("/api/auth/password/reset/confirm/", "198.51.100.99", body)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let neither = s
        .post(
            "/api/auth/password/reset/confirm/",
            "198.51.100.99",
            json!({"new_password": "1", "re_new_password": "1"}),
        )
        .await;
    assert_eq!(
        neither.body,
        json!({"non_field_errors": ["Provide reset_token, or email and otp."]})
    );
}

pub(crate) async fn fourth_reset_in_an_hour_is_throttled(s: &mut Stack) {
    let ip = "203.0.113.1";
    for i in 0..3 {
        let r = s
            .post(
                "/api/auth/password/reset/",
                ip,
                json!({"email": format!("x{i}@example.com")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = s
        .post(
            "/api/auth/password/reset/",
            ip,
            json!({"email": "x9@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    // And per email, from different addresses.
    for i in 0..3 {
        let r = s
            .post(
                "/api/auth/password/reset/",
                &format!("203.0.113.{}", 10 + i),
                json!({"email": "same@example.com"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = s
        .post(
            "/api/auth/password/reset/",
            "203.0.113.20",
            json!({"email": "SAME@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Four wrong guesses at once, then a fifth: if a parallel guess were lost, the code would
/// still be live and the right code accepted. It must be burned.
pub(crate) async fn parallel_otp_guesses_are_all_counted(s: &mut Stack) {
    s.register_and_login("198.51.100.190", "gus@example.com", "gus")
        .await;
    let code = s.reset_code("198.51.100.191", "gus@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let invalid = json!({"otp": ["Invalid or expired code."]});
    let ips: Vec<String> = (0..4).map(|i| format!("198.51.101.{}", 10 + i)).collect();
    let guesses = futures::future::join_all(ips.iter().map(|ip| {
        s.post(
            "/api/auth/password/reset/verify-otp/",
            ip,
            json!({"email": "gus@example.com", "otp": wrong}),
        )
    }))
    .await;
    for g in &guesses {
        assert_eq!((g.status, &g.body), (StatusCode::BAD_REQUEST, &invalid));
    }
    let fifth = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.101.20",
            json!({"email": "gus@example.com", "otp": wrong}),
        )
        .await;
    assert_eq!(fifth.body, invalid);
    let right = s
        .post(
            "/api/auth/password/reset/verify-otp/",
            "198.51.101.21",
            json!({"email": "gus@example.com", "otp": code}),
        )
        .await;
    assert_eq!(
        right.body, invalid,
        "5 attempts (4 of them parallel) burn the code"
    );
}

/// `confirm` with `{email, otp}`: a typo in `re_new_password`, or a new password the origin
/// refuses, leaves the code usable; the right passwords then succeed with the same code.
pub(crate) async fn confirm_with_a_bad_new_password_keeps_the_code(s: &mut Stack) {
    let s: &Stack = s;
    s.register_and_login("192.0.2.30", "tilda@example.com", "tilda")
        .await;
    let code = s.reset_code("192.0.2.31", "tilda@example.com").await;
    let confirm = |ip: &'static str, new: &'static str, re: &'static str| {
        let code = code.clone();
        async move {
            s.post(
                "/api/auth/password/reset/confirm/",
                ip,
                json!({"email": "tilda@example.com", "otp": code, "new_password": new, "re_new_password": re}),
            )
            .await
        }
    };
    let typo = confirm("192.0.2.32", NEW_PASSWORD, "58203918").await;
    assert_eq!(
        (typo.status, &typo.body),
        (
            StatusCode::BAD_REQUEST,
            &json!({"re_new_password": ["The two password fields didn't match."]})
        )
    );
    // Refused by the origin's policy (the seed policy wants exactly 8 digits).
    let weak = confirm("192.0.2.33", "1234", "1234").await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{}", weak.body);
    assert!(weak.body["new_password"].is_array(), "{}", weak.body);
    let ok = confirm("192.0.2.34", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    // Now it is spent.
    let again = confirm("192.0.2.35", "40718263", "40718263").await;
    assert_eq!(
        (again.status, &again.body),
        (
            StatusCode::BAD_REQUEST,
            &json!({"otp": ["Invalid or expired code."]})
        )
    );
}

/// The reset channel cannot be taken from the owner from another network: a request from
/// elsewhere does not replace the owner's live code, and wrong guesses from elsewhere do not
/// burn it.
pub(crate) async fn the_reset_channel_cannot_be_taken_from_the_owner(s: &mut Stack) {
    let s: &Stack = s;
    let (owner, attacker) = ("192.0.2.60", "2001:db8:66::1");
    let email = "vicky@example.com";
    s.register_and_login(owner, email, "vicky").await;
    let code = s.reset_code(owner, email).await;
    // Another network asks for a code for the same email: the same answer, but the owner's live
    // code stays and nothing is mailed.
    let sent = s.sink.messages().len();
    let r = s
        .post(
            "/api/auth/password/reset/",
            attacker,
            json!({ "email": email }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.sink.messages().len(),
        sent,
        "no code mailed for the other network"
    );
    // Five wrong guesses from two other networks...
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let invalid = json!({"otp": ["Invalid or expired code."]});
    for (i, ip) in [
        "192.0.2.61",
        "192.0.2.61",
        "192.0.2.61",
        "192.0.2.62",
        "192.0.2.62",
    ]
    .into_iter()
    .enumerate()
    {
        let r = s
            .post(
                "/api/auth/password/reset/verify-otp/",
                ip,
                json!({"email": email, "otp": wrong}),
            )
            .await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::BAD_REQUEST, &invalid),
            "guess {i}"
        );
    }
    // ...leave the owner's code usable from the owner's network.
    let r = s
        .post(
            "/api/auth/password/reset/confirm/",
            owner,
            json!({"email": email, "otp": code, "new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}
