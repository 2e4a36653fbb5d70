//! The HTTP workloads: public API calls through a Worker, internal calls to the origin, login timing.

use crate::prelude::*;

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .expect("http client")
}

/// A client address per load worker (each its own throttle bucket, as real clients are).
pub(crate) fn ip(worker: usize) -> String {
    format!("10.0.{}.{}", worker / 200, 1 + worker % 200)
}

pub(crate) async fn status_is(request: reqwest::RequestBuilder, expected: StatusCode) -> bool {
    match request.send().await {
        Ok(r) => {
            let ok = r.status() == expected;
            // Read the body: the connection goes back to the pool only after it.
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The origin

pub(crate) async fn public_tokens(
    http: &reqwest::Client,
    base: &str,
    email: &str,
) -> (String, String) {
    let username = email.split('@').next().unwrap();
    let r = http
        .post(format!("{base}/api/auth/users/"))
        .header("CF-Connecting-IP", "10.9.9.9")
        .json(&json!({"email": email, "username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{base} register: {:?}",
        r.text().await
    );
    let r = http
        .post(format!("{base}/api/auth/jwt/create/"))
        .header("CF-Connecting-IP", "10.9.9.9")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK, "{base} login");
    let body: Value = r.json().await.unwrap();
    (
        body["access"].as_str().unwrap().to_owned(),
        body["refresh"].as_str().unwrap().to_owned(),
    )
}

/// `/jwt/verify/`, `/me`, login through one public API; `origin` is watched when the public
/// API forwards to our origin.
pub(crate) async fn public_workloads(
    bench: &mut Bench,
    section: &'static str,
    system: &str,
    base: &str,
    server: &Watch,
    origin: Option<&Watch>,
    email: &str,
) {
    let http = http();
    let (access, _) = public_tokens(&http, base, email).await;
    let verify = Payload::Json(json!({ "token": access }).to_string());
    let login = Payload::Json(json!({"email": email, "password": PASSWORD}).to_string());
    for (workload, path, origin, send) in [
        ("POST /jwt/verify/", "/api/auth/jwt/verify/", None, verify),
        ("GET /me/", "/api/auth/me/", origin, Payload::Bearer(access)),
        (
            "POST /jwt/create/ (login)",
            "/api/auth/jwt/create/",
            origin,
            login,
        ),
    ] {
        let url = format!("{base}{path}");
        public(bench, section, system, workload, server, origin, url, send).await;
    }
}

// ---------------------------------------------------------------------------------------------

/// `GET /internal/me` signed as the edge signs it, for `identity`.
pub(crate) async fn internal_me(
    bench: &mut Bench,
    workload: &str,
    o: &Arc<Origin>,
    identity: Identity,
) {
    let (h, oo) = (http(), o.clone());
    bench
        .run(
            "origin",
            "origin",
            workload,
            Some(&o.watch),
            None,
            move |_| {
                let (h, oo) = (h.clone(), oo.clone());
                async move {
                    let request = signed_request(
                        &h,
                        &oo.signer,
                        &oo.base,
                        Method::GET,
                        "/internal/me",
                        identity,
                        None,
                    );
                    status_is(request, StatusCode::OK).await
                }
            },
        )
        .await;
}

// Each round's right password clears its wrong one's failure (LOCKOUT_THRESHOLD is per account
// and network), so the rounds never reach the back-off.
pub(crate) const TIMING_ROUNDS: usize = 40;

/// Sequential logins, one of each kind per round (so drift hits all three alike): does an
/// unknown email answer faster than a known one? Medians in ms: [unknown, wrong, right].
pub(crate) async fn login_timing(origin: &Origin, http: &reqwest::Client) -> [f64; 3] {
    origin.user(http, "timing@example.com").await;
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..TIMING_ROUNDS {
        for (i, (email, password)) in [
            ("nobody-here@example.com", "00000000"),
            ("timing@example.com", "00000000"),
            ("timing@example.com", PASSWORD),
        ]
        .into_iter()
        .enumerate()
        {
            let body = json!({"email": email, "password": password});
            let started = Instant::now();
            let _ = origin
                .call(
                    http,
                    Method::POST,
                    "/internal/tokens",
                    Identity::Anonymous,
                    Some(&body),
                )
                .await;
            samples[i].push(started.elapsed());
        }
    }
    samples.map(|mut v| {
        v.sort();
        percentile(&v, 0.5)
    })
}

/// What a public-API workload sends: a JSON body (`POST`) or a bearer token (`GET`).
#[derive(Clone)]
pub(crate) enum Payload {
    Json(String),
    Bearer(String),
}

/// One public-API workload against `url`, each load loop as its own client address; the answer
/// must be 200.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn public(
    bench: &mut Bench,
    section: &'static str,
    system: &str,
    workload: &str,
    server: &Watch,
    origin: Option<&Watch>,
    url: String,
    send: Payload,
) {
    let h = http();
    bench
        .run(section, system, workload, Some(server), origin, move |w| {
            let request = match &send {
                Payload::Json(body) => h
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone()),
                Payload::Bearer(token) => h.get(&url).bearer_auth(token),
            };
            status_is(request.header("CF-Connecting-IP", ip(w)), StatusCode::OK)
        })
        .await;
}

/// A verify workload on a Worker served by workerd: `POST {path}` with `body`.
pub(crate) async fn verify_loop(
    bench: &mut Bench,
    system: &str,
    workload: &str,
    server: &Workerd,
    path: &str,
    body: &str,
) {
    let url = format!("{}{path}", server.base);
    let send = Payload::Json(body.to_owned());
    public(
        bench,
        "edge",
        system,
        workload,
        &server.watch,
        None,
        url,
        send,
    )
    .await;
}
