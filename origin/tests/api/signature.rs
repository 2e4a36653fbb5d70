use reqwest::StatusCode;
use serde_json::json;
use shared::signing::{
    Identity, RequestSigner, SessionId, SignedParts, HEADER_CLIENT_AGENT, HEADER_CLIENT_NETWORK,
    HEADER_IDENTITY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

use shared::signing::{SignatureVersion, HEADER_SIGNATURE_VERSION};

use crate::helpers::{now, read, spawn_app, Reply, TestApp, SIGNING_SECRET};

const PATH: &str = "/internal/users";

async fn raw(app: &TestApp, headers: &[(&str, String)], body: &str) -> Reply {
    let mut request = app
        .http
        .post(format!("{}{PATH}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    read(request.send().await.unwrap()).await
}

fn signed_headers(
    signer: &RequestSigner,
    timestamp: i64,
    identity: Identity,
    body: &str,
) -> Vec<(&'static str, String)> {
    let signature = signer.sign(&SignedParts {
        method: "POST",
        path_and_query: PATH,
        timestamp,
        identity,
        body: body.as_bytes(),
        client_network: "",
        client_agent: "",
    });
    vec![
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_IDENTITY, identity.to_header()),
        (HEADER_SIGNATURE, signature),
    ]
}

fn assert_refused(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"detail": "Request signature missing, invalid or expired."})
    );
    assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"api\"");
    // What tells the edge that this 401 is about its own signature (answered 503 to clients).
    assert_eq!(
        reply.headers[shared::signing::HEADER_SIGNATURE_REFUSED],
        "1"
    );
}

#[tokio::test]
async fn unsigned_stale_forged_and_tampered_requests_are_refused() {
    let app = spawn_app().await;
    let body = r#"{"email":"a@example.com","username":"a","password":"73926481"}"#;
    let signer = RequestSigner::new(SIGNING_SECRET).unwrap();

    assert_refused(&raw(&app, &[], body).await);
    assert_refused(
        &raw(
            &app,
            &signed_headers(&signer, now() - 120, Identity::Anonymous, body),
            body,
        )
        .await,
    );
    assert_refused(
        &raw(
            &app,
            &signed_headers(&signer, now() + 120, Identity::Anonymous, body),
            body,
        )
        .await,
    );
    let other = RequestSigner::new(&[7u8; 32]).unwrap();
    assert_refused(
        &raw(
            &app,
            &signed_headers(&other, now(), Identity::Anonymous, body),
            body,
        )
        .await,
    );
    // Signed for one body, sent with another.
    let headers = signed_headers(&signer, now(), Identity::Anonymous, body);
    assert_refused(&raw(&app, &headers, &body.replace("73926481", "11111111")).await);
    // Signed as anonymous, claiming to be user 1.
    let mut headers = signed_headers(&signer, now(), Identity::Anonymous, body);
    headers[1].1 = Identity::User {
        id: 1,
        token_version: 0,
        session: None,
    }
    .to_header();
    assert_refused(&raw(&app, &headers, body).await);
    // Signed as a user, claiming another session of theirs.
    let user = Identity::User {
        id: 1,
        token_version: 0,
        session: SessionId::parse("0b9c6d2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e"),
    };
    let mut headers = signed_headers(&signer, now(), user, body);
    headers[1].1 = Identity::User {
        id: 1,
        token_version: 0,
        session: SessionId::parse("7d1e4c2a-9b3f-4e5d-8c6b-1a2f3e4d5c6b"),
    }
    .to_header();
    assert_refused(&raw(&app, &headers, body).await);
    let mut headers = signed_headers(&signer, now(), Identity::Anonymous, body);
    headers[0].1 = "yesterday".into();
    assert_refused(&raw(&app, &headers, body).await);

    // None of them reached the handler.
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    // The correctly signed request does.
    let ok = raw(
        &app,
        &signed_headers(&signer, now(), Identity::Anonymous, body),
        body,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

#[tokio::test]
async fn every_internal_route_requires_a_signature() {
    let app = spawn_app().await;
    for route in shared::internal::InternalRoute::ALL {
        let (method, path) = (route.method().as_str(), route.path_and_query(None));
        let reply = read(
            app.http
                .request(method.parse().unwrap(), format!("{}{path}", app.address))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_refused(&reply);
    }
}

#[tokio::test]
async fn the_client_network_is_signed_and_checked() {
    let app = spawn_app().await;
    let body = r#"{"email":"a@example.com","username":"a","password":"73926481"}"#;
    let signer = RequestSigner::new(SIGNING_SECRET).unwrap();
    let headers_for = |network: &str| {
        let timestamp = now();
        let signature = signer.sign(&SignedParts {
            method: "POST",
            path_and_query: PATH,
            timestamp,
            identity: Identity::Anonymous,
            body: body.as_bytes(),
            client_network: network,
            client_agent: "",
        });
        vec![
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_IDENTITY, Identity::Anonymous.to_header()),
            (HEADER_SIGNATURE, signature),
            (HEADER_CLIENT_NETWORK, network.to_owned()),
        ]
    };
    // Signed for one network, sent claiming another (a forger spreading guesses).
    let mut headers = headers_for("203.0.113.7");
    headers[3].1 = "198.51.100.9".into();
    assert_refused(&raw(&app, &headers, body).await);
    // Signed without a network header value but sent with one.
    let mut headers = headers_for("");
    headers[3].1 = "203.0.113.7".into();
    assert_refused(&raw(&app, &headers, body).await);
    // Correctly signed but malformed: too long, or characters outside hex digits and `.:/`.
    for bad in ["f".repeat(65), "unknown".to_owned(), "1.2.3.4 x".to_owned()] {
        assert_refused(&raw(&app, &headers_for(&bad), body).await);
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    // A well-formed, correctly signed network (64 characters is the limit) gets through.
    let ok = raw(&app, &headers_for(&"f".repeat(64)), body).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    // An IPv6 prefix, as the edge will send it, on another route.
    let login = app
        .login_from("2001:db8:1:2::/64", "a@example.com", "73926481")
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
}

#[tokio::test]
async fn the_client_agent_is_signed_and_checked() {
    let app = spawn_app().await;
    let body = r#"{"email":"a@example.com","username":"a","password":"73926481"}"#;
    let signer = RequestSigner::new(SIGNING_SECRET).unwrap();
    let headers_for = |agent: &str| {
        let timestamp = now();
        let signature = signer.sign(&SignedParts {
            method: "POST",
            path_and_query: PATH,
            timestamp,
            identity: Identity::Anonymous,
            body: body.as_bytes(),
            client_network: "",
            client_agent: agent,
        });
        vec![
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_IDENTITY, Identity::Anonymous.to_header()),
            (HEADER_SIGNATURE, signature),
            (HEADER_CLIENT_AGENT, agent.to_owned()),
        ]
    };
    // Signed for one agent, sent with another; signed without one, sent with one.
    let mut headers = headers_for("curl/8.5.0");
    headers[3].1 = "Mozilla/5.0".into();
    assert_refused(&raw(&app, &headers, body).await);
    let mut headers = headers_for("");
    headers[3].1 = "Mozilla/5.0".into();
    assert_refused(&raw(&app, &headers, body).await);
    // Correctly signed but longer than the edge ever sends.
    assert_refused(&raw(&app, &headers_for(&"a".repeat(257)), body).await);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    let ok = raw(&app, &headers_for(&"a".repeat(256)), body).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

/// A rollout in either order: the origin takes the previous release's signature (v2, no version
/// header), the current one with or without its header, and refuses a version it does not know
/// or a header naming another version than the one signed.
#[tokio::test]
async fn the_previous_signature_version_is_accepted_during_a_rollout() {
    let app = spawn_app().await;
    let v3 = RequestSigner::new(SIGNING_SECRET).unwrap();
    let v2 = RequestSigner::new(SIGNING_SECRET)
        .unwrap()
        .signing(SignatureVersion::V2);
    let body = |n: u32| {
        format!(r#"{{"email":"v{n}@example.com","username":"v{n}","password":"73926481"}}"#)
    };
    let cases: [(&RequestSigner, Option<&str>, bool); 6] = [
        (&v2, None, true),
        (&v2, Some("2"), true),
        (&v3, None, true),
        (&v3, Some("3"), true),
        (&v2, Some("3"), false),
        (&v3, Some("4"), false),
    ];
    for (n, (signer, version, accepted)) in (0u32..).zip(cases) {
        let body = body(n);
        let mut headers = signed_headers(signer, now(), Identity::Anonymous, &body);
        if let Some(version) = version {
            headers.push((HEADER_SIGNATURE_VERSION, version.to_owned()));
        }
        let reply = raw(&app, &headers, &body).await;
        if accepted {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "case {n}: {}",
                reply.body
            );
        } else {
            assert_refused(&reply);
        }
    }
}

/// ORIGIN_SIGNING_SECRET rotation: while the origin lists the new secret and the old one, edges
/// signing with either are served; an edge with a third secret is not.
#[tokio::test]
async fn an_origin_listing_two_signing_secrets_takes_both() {
    const OLD: &[u8] = b"the-previous-origin-signing-secret-0123456789";
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        previous_signing_secret: Some(OLD),
        ..Default::default()
    })
    .await;
    let body = |n: u32| {
        format!(r#"{{"email":"r{n}@example.com","username":"r{n}","password":"73926481"}}"#)
    };
    let new = RequestSigner::new(SIGNING_SECRET).unwrap();
    let old = RequestSigner::new(OLD).unwrap();
    let other = RequestSigner::new(&[7u8; 32]).unwrap();
    for (n, signer) in [(0, &new), (1, &old)] {
        let body = body(n);
        let headers = signed_headers(signer, now(), Identity::Anonymous, &body);
        let reply = raw(&app, &headers, &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let body = body(2);
    assert_refused(
        &raw(
            &app,
            &signed_headers(&other, now(), Identity::Anonymous, &body),
            &body,
        )
        .await,
    );
}

/// A v2 signature does not cover `X-Client-Agent`: a login so signed keeps no agent, whatever
/// the header says (an unsigned header is not believed).
#[tokio::test]
async fn a_v2_login_does_not_believe_the_unsigned_agent() {
    let app = spawn_app().await;
    app.register("agent@example.com", "agent", "73926481").await;
    let v2 = RequestSigner::new(SIGNING_SECRET)
        .unwrap()
        .signing(SignatureVersion::V2);
    let body = r#"{"email":"agent@example.com","password":"73926481"}"#;
    let timestamp = now();
    let signature = v2.sign(&SignedParts {
        method: "POST",
        path_and_query: "/internal/tokens",
        timestamp,
        identity: Identity::Anonymous,
        body: body.as_bytes(),
        client_network: "",
        client_agent: "",
    });
    let reply = read(
        app.http
            .post(format!("{}/internal/tokens", app.address))
            .header("content-type", "application/json")
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_IDENTITY, Identity::Anonymous.to_header())
            .header(HEADER_SIGNATURE, signature)
            .header(HEADER_CLIENT_AGENT, "forged-agent/1.0")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let agent: String = app
        .db
        .client()
        .await
        .query_one("SELECT user_agent FROM refresh_families", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(agent, "");
}
