use reqwest::StatusCode;
use serde_json::json;
use shared::signing::{
    Identity, RequestSigner, SessionId, SignedParts, HEADER_CLIENT_AGENT, HEADER_CLIENT_NETWORK,
    HEADER_IDENTITY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

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
