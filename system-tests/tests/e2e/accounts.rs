//! Sign-up, login, profile and the admin list.

use crate::prelude::*;

pub(crate) async fn register_login_me_and_patch(s: &mut Stack) {
    let ip = "198.51.100.1";
    let r = s
        .post(
            "/api/auth/users/",
            ip,
            json!({"email": "Ada@Example.com", "username": "ada", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"email": "Ada@example.com", "username": "ada", "id": id})
    );
    let dup = s
        .post(
            "/api/auth/users",
            ip,
            json!({"email": "ada@example.com", "username": "ada2", "password": PASSWORD}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        dup.body,
        json!({"email": ["user with this email address already exists."]})
    );

    let ip = "198.51.100.2";
    let t = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK);
    let access = t.body["access"].as_str().unwrap();
    let me = s
        .request(Method::GET, "/api/auth/me/", ip, Some(access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], id);
    assert_eq!(me.body["role"], "user");
    let patched = s
        .request(
            Method::PATCH,
            "/api/auth/me/",
            ip,
            Some(access),
            Some(json!({"first_name": "Ada", "role": "admin"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["first_name"], "Ada");
    assert_eq!(patched.body["role"], "user", "PATCH me cannot change role");

    let wrong = s
        .post(
            "/api/auth/jwt/create/",
            ip,
            json!({"email": "ada@example.com", "password": "11112222"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body,
        json!({"detail": "No active account found with the given credentials"})
    );
    assert_eq!(wrong.headers["www-authenticate"], "Bearer realm=\"api\"");
}

pub(crate) async fn admin_list_is_403_then_200(s: &mut Stack) {
    let ip = "198.51.100.6";
    let (access, _) = s.register_and_login(ip, "boss@example.com", "boss").await;
    let denied = s
        .request(Method::GET, "/api/auth/users/", ip, Some(&access), None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.body,
        json!({"detail": "You do not have permission to perform this action."})
    );
    s.db.client()
        .await
        .batch_execute("UPDATE users SET role = 'admin' WHERE username = 'boss'")
        .await
        .unwrap();
    s.db.client()
        .await
        .batch_execute("INSERT INTO users (email, username, password_hash) SELECT 'p' || i || '@example.com', 'p' || i, 'x' FROM generate_series(1, 25) i")
        .await
        .unwrap();
    let t = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.60",
            json!({"email": "boss@example.com", "password": PASSWORD}),
        )
        .await;
    let admin = t.body["access"].as_str().unwrap();
    let page = s
        .request(Method::GET, "/api/auth/users/", ip, Some(admin), None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["results"].as_array().unwrap().len(), 20);
    assert_eq!(
        page.body["next"],
        format!("{}/api/auth/users/?page=2", s.edge)
    );
    let two = s
        .request(
            Method::GET,
            "/api/auth/users/?page=2",
            ip,
            Some(admin),
            None,
        )
        .await;
    assert_eq!(two.body["previous"], format!("{}/api/auth/users/", s.edge));
}

/// Djoser frontends read and edit the profile at `users/me/`: the same resource as `me/`, with
/// the same rules (role read-only, authentication required).
pub(crate) async fn djoser_users_me_is_the_same_resource(s: &mut Stack) {
    let ip = "198.51.100.30";
    let (access, _) = s
        .register_and_login(ip, "djoser@example.com", "djoser")
        .await;
    let me = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    let users_me = s
        .request(Method::GET, "/api/auth/users/me/", ip, Some(&access), None)
        .await;
    assert_eq!(users_me.status, StatusCode::OK, "{}", users_me.body);
    assert_eq!(users_me.body, me.body);
    assert_eq!(users_me.body["email"], "djoser@example.com");

    let patched = s
        .request(
            Method::PATCH,
            "/api/auth/users/me/",
            ip,
            Some(&access),
            Some(json!({"last_name": "Lovelace", "role": "admin"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["last_name"], "Lovelace");
    assert_eq!(patched.body["role"], "user", "role stays read-only");
    let after = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(after.body, patched.body);

    let anonymous = s
        .request(Method::GET, "/api/auth/users/me/", ip, None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    let bad = s
        .request(
            Method::PATCH,
            "/api/auth/users/me/",
            ip,
            Some(&access),
            Some(json!({"username": "not valid!"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body["username"].is_array(), "{}", bad.body);
}

/// Djoser's account deletion through the Worker: the current password is required (a wrong one
/// is Djoser's field error), then the account, its tokens and its sessions are gone and the
/// email can sign up again.
pub(crate) async fn deleting_my_account_needs_its_password_and_frees_the_email(s: &mut Stack) {
    let ip = "198.51.100.31";
    let (access, refresh) = s
        .register_and_login(ip, "leaving@example.com", "leaving")
        .await;
    let wrong = s
        .request(
            Method::DELETE,
            "/api/auth/users/me/",
            ip,
            Some(&access),
            Some(json!({"current_password": "11112222"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert_eq!(
        wrong.body,
        json!({"current_password": ["Invalid password."]})
    );
    let missing = s
        .request(
            Method::DELETE,
            "/api/auth/me/",
            ip,
            Some(&access),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        missing.body,
        json!({"current_password": ["This field is required."]})
    );
    let still = s
        .request(Method::GET, "/api/auth/me/", ip, Some(&access), None)
        .await;
    assert_eq!(still.status, StatusCode::OK);

    let deleted = s
        .request(
            Method::DELETE,
            "/api/auth/me/",
            ip,
            Some(&access),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);

    let me = s
        .request(Method::GET, "/api/auth/users/me/", ip, Some(&access), None)
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert_eq!(me.body["code"], "token_not_valid");
    let refreshed = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.32",
            json!({ "refresh": refresh }),
        )
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refreshed.body
    );
    let again = s
        .post(
            "/api/auth/users/",
            "198.51.100.33",
            json!({"email": "leaving@example.com", "username": "leaving", "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

/// Djoser's `users/set_username/` through the Worker: the password is asked again, a taken name
/// is Djoser's field error, and the session goes on with the new name.
pub(crate) async fn set_username_needs_the_password(s: &mut Stack) {
    let ip = "198.51.100.34";
    let (access, _) = s
        .register_and_login(ip, "renamer@example.com", "renamer")
        .await;
    let set = |body: Value| {
        let access = access.clone();
        let s = &*s;
        async move {
            s.request(
                Method::POST,
                "/api/auth/users/set_username/",
                ip,
                Some(&access),
                Some(body),
            )
            .await
        }
    };
    let wrong = set(json!({"new_username": "renamed", "current_password": "11112222"})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert_eq!(
        wrong.body,
        json!({"current_password": ["Invalid password."]})
    );
    s.register_and_login("198.51.100.35", "occupied@example.com", "occupied")
        .await;
    let taken = set(json!({"new_username": "occupied", "current_password": PASSWORD})).await;
    assert_eq!(
        taken.body,
        json!({"new_username": ["A user with that username already exists."]})
    );
    let done = set(json!({"new_username": "renamed", "current_password": PASSWORD})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let me = s
        .request(Method::GET, "/api/auth/users/me/", ip, Some(&access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "renamed");
    let anonymous = s
        .request(
            Method::POST,
            "/api/auth/users/set_username/",
            ip,
            None,
            Some(json!({"new_username": "x", "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// A user's sessions through the Worker: each login is listed with the client it came from,
/// ending one refuses its refresh token at once, a password change (Djoser's `set_password`)
/// ends every other session and keeps the caller's, and `revoke-others` keeps only the caller's.
pub(crate) async fn sessions_and_password_change_end_other_logins(s: &mut Stack) {
    let (laptop, phone, other) = ("198.51.100.36", "198.51.100.37", "198.51.100.38");
    let email = "sessions@example.com";
    let (access, refresh) = s.register_and_login(laptop, email, "sessions").await;
    let phone_login = |password: &'static str| {
        let s = &*s;
        async move {
            let request = s
                .http
                .post(format!("{}/api/auth/jwt/create/", s.edge))
                .header("CF-Connecting-IP", phone)
                .header("User-Agent", "AuthApp/2.1 (iPhone; iOS 18.1)")
                .json(&json!({"email": email, "password": password}));
            read(request.send().await.expect("edge answers")).await
        }
    };
    let get = |path: &'static str, bearer: Option<String>| {
        let s = &*s;
        async move {
            s.request(Method::GET, path, laptop, bearer.as_deref(), None)
                .await
        }
    };
    let t = phone_login(PASSWORD).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let phone_refresh = t.body["refresh"].as_str().unwrap().to_owned();

    let listed = get("/api/auth/sessions/", Some(access.clone())).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let sessions = listed.body.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{}", listed.body);
    let phone_session = &sessions[0];
    assert_eq!(
        phone_session["user_agent"],
        "AuthApp/2.1 (iPhone; iOS 18.1)"
    );
    assert_eq!(phone_session["client_network"], phone);
    assert_eq!(phone_session["current"], false);
    assert_eq!(sessions[1]["client_network"], laptop);
    assert_eq!(sessions[1]["current"], true);
    let anonymous = get("/api/auth/sessions/", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Ending the phone's session: its refresh token is refused at once.
    let delete = |id: String| {
        let access = access.clone();
        let s = &*s;
        async move {
            let path = format!("/api/auth/sessions/{id}/");
            s.request(Method::DELETE, &path, laptop, Some(&access), None)
                .await
        }
    };
    let missing = delete("7d1e4c2a-9b3f-4e5d-8c6b-1a2f3e4d5c6b".into()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(missing.body, json!({"detail": "Not found."}));
    assert_eq!(delete("nope".into()).await.status, StatusCode::NOT_FOUND);
    let ended = delete(phone_session["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);
    let refused = s
        .post(
            "/api/auth/jwt/refresh/",
            other,
            json!({ "refresh": phone_refresh }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);

    // A password change from the laptop ends the phone's new session, not the laptop's.
    let t = phone_login(PASSWORD).await;
    let phone_refresh = t.body["refresh"].as_str().unwrap().to_owned();
    let set = |body: Value| {
        let access = access.clone();
        let s = &*s;
        async move {
            s.request(
                Method::POST,
                "/api/auth/users/set_password/",
                laptop,
                Some(&access),
                Some(body),
            )
            .await
        }
    };
    let wrong = set(
        json!({"new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD,
                           "current_password": "11112222"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert_eq!(
        wrong.body,
        json!({"current_password": ["Invalid password."]})
    );
    let mismatch = set(
        json!({"new_password": NEW_PASSWORD, "re_new_password": "58203918",
                              "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(
        mismatch.body,
        json!({"re_new_password": ["The two password fields didn't match."]})
    );
    let done = set(
        json!({"new_password": NEW_PASSWORD, "re_new_password": NEW_PASSWORD,
                          "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let refused = s
        .post(
            "/api/auth/jwt/refresh/",
            other,
            json!({ "refresh": phone_refresh }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let me = get("/api/auth/me/", Some(access.clone())).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let kept = s
        .post(
            "/api/auth/jwt/refresh/",
            other,
            json!({ "refresh": refresh }),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    let access = kept.body["access"].as_str().unwrap().to_owned();

    // The new password logs in (a new session), the old one does not.
    let new_login = phone_login(NEW_PASSWORD).await;
    assert_eq!(new_login.status, StatusCode::OK, "{}", new_login.body);
    let old = s
        .post(
            "/api/auth/jwt/create/",
            "198.51.100.39",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);

    // revoke-others from the laptop: only the laptop's session is left.
    let others = s
        .request(
            Method::POST,
            "/api/auth/sessions/revoke-others/",
            laptop,
            Some(&access),
            None,
        )
        .await;
    assert_eq!(others.status, StatusCode::OK, "{}", others.body);
    assert_eq!(others.body, json!({"revoked": 1}));
    let left = get("/api/auth/sessions/", Some(access.clone())).await;
    let left = left.body.as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);
    let refused = s
        .post(
            "/api/auth/jwt/refresh/",
            "198.51.100.39",
            json!({ "refresh": new_login.body["refresh"] }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

/// Email verification at sign-up through the Worker, with the origin restarted with
/// SEND_ACTIVATION_EMAIL on (and back off at the end; this scenario runs last): the account
/// waits, the emailed link's uid/token activates it once, a resend mails a new code for another
/// account (the same 204 for an unknown email), and the code activates it.
pub(crate) async fn sign_up_waits_for_the_emailed_link_or_code(s: &mut Stack) {
    s.stop_origin();
    let plain = s.origin_env.clone();
    s.origin_env
        .push(("SEND_ACTIVATION_EMAIL".into(), "true".into()));
    s.origin_env
        .push(("ACTIVATION_URL".into(), "http://t/a/{uid}/{token}".into()));
    s.start_origin().await;

    let ip = "198.51.100.100";
    let before = s.sink.messages().len();
    let r = s
        .post(
            "/api/auth/users/",
            ip,
            json!({"email": "verify@example.com", "username": "verify", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let login = json!({"email": "verify@example.com", "password": PASSWORD});
    let refused = s.post("/api/auth/jwt/create/", ip, login.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "inactive until activated"
    );
    let messages = s.sink.wait_for(before + 1, Duration::from_secs(15)).await;
    let message = messages.last().unwrap();
    assert!(message.contains("To: verify@example.com"), "{message}");
    let at = message.find("http://t/a/").expect("the link") + "http://t/a/".len();
    let link: String = message[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (uid, token) = link.split_once('/').unwrap();
    // Throttled as the reset routes (3 an hour per network): two calls per network here.
    let activate = |ip: &'static str, body: Value| {
        let s = &*s;
        async move { s.post("/api/auth/users/activation/", ip, body).await }
    };
    let done = activate("198.51.100.101", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let stale = activate("198.51.100.101", json!({"uid": uid, "token": token})).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(stale.body, json!({"detail": "Stale token for given user."}));
    let ok = s.post("/api/auth/jwt/create/", ip, login).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // A second account activated by a resent code; an unknown email gets the same 204.
    let ip = "198.51.100.102";
    let r = s
        .post(
            "/api/auth/users/",
            ip,
            json!({"email": "coded@example.com", "username": "coded", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s.sink.wait_for(before + 2, Duration::from_secs(15)).await;
    for email in ["nobody@example.com", "coded@example.com"] {
        let resent = s
            .post(
                "/api/auth/users/resend_activation/",
                "198.51.100.103",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(resent.status, StatusCode::NO_CONTENT, "{}", resent.body);
        assert_eq!(resent.body, Value::Null);
    }
    let messages = s.sink.wait_for(before + 3, Duration::from_secs(15)).await;
    let message = messages.last().unwrap();
    assert!(message.contains("To: coded@example.com"), "{message}");
    let code = code_in(message);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = activate(
        "198.51.100.104",
        json!({"email": "coded@example.com", "code": wrong}),
    )
    .await;
    assert_eq!(refused.body, json!({"code": ["Invalid or expired code."]}));
    let done = activate(
        "198.51.100.104",
        json!({"email": "coded@example.com", "code": code}),
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);

    s.stop_origin();
    s.origin_env = plain;
    s.start_origin().await;
}
