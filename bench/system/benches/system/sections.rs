//! The benchmark's sections, in the order `run` calls them: the origin direct, our Worker on
//! workerd (EdDSA, HS256, unthrottled), the jose peers, the Worker under `wrangler dev`, the
//! Django original. Each loads one system and adds its rows to the `Bench`.

use crate::prelude::*;

/// The origin's signed internal API, loaded directly; then `pgbench -S` on the same database.
/// Returns pgbench's tps at concurrency 16 and 8.
pub(crate) async fn origin_direct(
    bench: &mut Bench,
    http: &reqwest::Client,
    o: &Arc<Origin>,
    identity: Identity,
) -> (Option<f64>, Option<f64>) {
    internal_login(bench, http, o).await;
    internal_me(bench, "me (internal)", o, identity).await;
    internal_refresh(bench, http, o).await;
    internal_register(bench, http, o).await;
    // The one-row lookup again at concurrency 8, beside pgbench at both: on 2 cores,
    // 16 loops over-subscribe the origin's runtime and the load generator more than they
    // do pgbench's C client.
    bench.concurrency = 8;
    internal_me(bench, "me (internal, concurrency 8)", o, identity).await;
    bench.concurrency = CONCURRENCY;
    print!("  pgbench -S -j 2 on the same PostgreSQL, -c {CONCURRENCY} and -c 8 ... ");
    let tps = pgbench(bench.opts.seconds, &[CONCURRENCY, 8]);
    let show = |t: Option<f64>| t.map_or("unavailable".into(), |t| format!("{t:.0} tps"));
    println!("{} and {}", show(tps[0]), show(tps[1]));
    (tps[0], tps[1])
}

/// `POST /internal/tokens`: a login, argon2 included.
async fn internal_login(bench: &mut Bench, http: &reqwest::Client, o: &Arc<Origin>) {
    let ow = o.watch.clone();
    let (h, oo) = (http.clone(), o.clone());
    bench
        .run(
            "origin",
            "origin",
            "login (internal)",
            Some(&ow),
            None,
            move |w| {
                let (h, oo) = (h.clone(), oo.clone());
                async move {
                    let body = json!({"email": "bench@example.com", "password": PASSWORD});
                    oo.call_from(
                        &h,
                        Method::POST,
                        "/internal/tokens",
                        Identity::Anonymous,
                        Some(&body),
                        &ip(w),
                    )
                    .await
                    .0 == StatusCode::OK
                }
            },
        )
        .await;
}

/// `POST /internal/tokens/refresh`, each worker along its own rotation chain.
async fn internal_refresh(bench: &mut Bench, http: &reqwest::Client, o: &Arc<Origin>) {
    let ow = o.watch.clone();
    // Refresh rotation: each worker follows its own chain (every answer's refresh token is the
    // next request's).
    let mut chains = Vec::new();
    for _ in 0..CONCURRENCY {
        chains.push(Mutex::new(o.login(http, "bench@example.com").await.1));
    }
    let chains = Arc::new(chains);
    let (h, oo) = (http.clone(), o.clone());
    bench
        .run(
            "origin",
            "origin",
            "refresh rotation (internal)",
            Some(&ow),
            None,
            move |w| {
                let (h, oo, chains) = (h.clone(), oo.clone(), chains.clone());
                async move {
                    let token = chains[w].lock().unwrap().clone();
                    let body = json!({ "refresh": token });
                    let (status, reply) = oo
                        .call(
                            &h,
                            Method::POST,
                            "/internal/tokens/refresh",
                            Identity::Anonymous,
                            Some(&body),
                        )
                        .await;
                    match reply["refresh"].as_str() {
                        Some(next) if status == StatusCode::OK => {
                            *chains[w].lock().unwrap() = next.to_owned();
                            true
                        }
                        _ => false,
                    }
                }
            },
        )
        .await;
}

/// `POST /internal/users`: a new account each time.
async fn internal_register(bench: &mut Bench, http: &reqwest::Client, o: &Arc<Origin>) {
    let ow = o.watch.clone();
    let counter = Arc::new(AtomicU64::new(0));
    let (h, oo) = (http.clone(), o.clone());
    bench
        .run(
            "origin",
            "origin",
            "register (internal)",
            Some(&ow),
            None,
            move |_| {
                let (h, oo) = (h.clone(), oo.clone());
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    let body = json!({
                        "email": format!("new{n}@example.com"),
                        "username": format!("new{n}"),
                        "password": PASSWORD,
                    });
                    oo.call(
                        &h,
                        Method::POST,
                        "/internal/users",
                        Identity::Anonymous,
                        Some(&body),
                    )
                    .await
                    .0 == StatusCode::CREATED
                }
            },
        )
        .await;
}

/// Our Worker on workerd with EdDSA: the public workloads, and the JWKS answer as the floor.
pub(crate) async fn edge_ours(bench: &mut Bench, http: &reqwest::Client, o: &Arc<Origin>) {
    let ow = o.watch.clone();
    println!("\n[edge: workerd via Miniflare (workerd's own socket)]");
    let ours = our_worker(&bench.opts, "workerd-ours", our_worker_bindings(o, "EdDSA"));
    public_workloads(
        bench,
        "edge",
        "ours (workerd)",
        &ours.base,
        &ours.watch,
        Some(&ow),
        "edge@example.com",
    )
    .await;
    let (h, b) = (http.clone(), ours.base.clone());
    bench
        .run(
            "edge",
            "ours (workerd)",
            "GET /.well-known/jwks.json (floor)",
            Some(&ours.watch),
            None,
            move |w| {
                status_is(
                    h.get(format!("{b}/.well-known/jwks.json"))
                        .header("CF-Connecting-IP", ip(w)),
                    StatusCode::OK,
                )
            },
        )
        .await;
    drop(ours);
}

/// Our Worker configured for HS256, verifying tokens minted here with the same secret.
pub(crate) async fn edge_hs256(bench: &mut Bench, o: &Arc<Origin>, claims: &Claims) {
    let hs_token = hs256_token(claims);
    let ours_hs = our_worker(
        &bench.opts,
        "workerd-ours-hs256",
        our_worker_bindings(o, "HS256"),
    );
    let hs_body = json!({ "token": hs_token }).to_string();
    verify_loop(
        bench,
        "ours (workerd)",
        "POST /jwt/verify/ HS256",
        &ours_hs,
        "/api/auth/jwt/verify/",
        &hs_body,
    )
    .await;
    drop(ours_hs);
}

/// Our Worker with the anon and user scopes off: what the limiter call costs.
pub(crate) async fn edge_unthrottled(bench: &mut Bench, o: &Arc<Origin>, access: &str) {
    let ow = o.watch.clone();
    let ed_body = json!({ "token": access }).to_string();
    let mut bindings = our_worker_bindings(o, "EdDSA");
    bindings["THROTTLE_RATES"] = json!(RATES_OFF);
    let off = our_worker(&bench.opts, "workerd-ours-unthrottled", bindings);
    verify_loop(
        bench,
        UNTHROTTLED,
        "POST /jwt/verify/",
        &off,
        "/api/auth/jwt/verify/",
        &ed_body,
    )
    .await;
    public(
        bench,
        "edge",
        UNTHROTTLED,
        "GET /me/",
        &off.watch,
        Some(&ow),
        format!("{}/api/auth/me/", off.base),
        Payload::Bearer(access.to_owned()),
    )
    .await;
    drop(off);
}

/// The JavaScript `jose` Worker on the same workerd, bare and behind a Durable Object limiter.
pub(crate) async fn jose_peers(
    bench: &mut Bench,
    http: &reqwest::Client,
    o: &Arc<Origin>,
    claims: &Claims,
    access: &str,
) {
    let ed_body = json!({ "token": access }).to_string();
    let hs_body = json!({ "token": hs256_token(claims) }).to_string();
    match jose_peer() {
        Some(dir) => {
            let peer = serve_on_workerd(
                &bench.opts,
                "workerd-jose",
                json!({
                    "modulesRoot": dir,
                    "modules": [{"type": "ESModule", "path": dir.join("worker.mjs")}],
                    "bindings": {"ED_X": o.key_x, "HS_SECRET": HS_SECRET},
                }),
            );
            verify_loop(
                bench,
                "jose (workerd)",
                "POST /verify/eddsa",
                &peer,
                "/verify/eddsa",
                &ed_body,
            )
            .await;
            verify_loop(
                bench,
                "jose (workerd)",
                "POST /verify/hs256key",
                &peer,
                "/verify/hs256key",
                &hs_body,
            )
            .await;
            verify_loop(
                bench,
                "jose (workerd)",
                "POST /verify/hs256",
                &peer,
                "/verify/hs256",
                &hs_body,
            )
            .await;
            let (h, b) = (http.clone(), peer.base.clone());
            bench
                .run(
                    "edge",
                    "jose (workerd)",
                    "GET /hello (floor)",
                    Some(&peer.watch),
                    None,
                    move |_| status_is(h.get(format!("{b}/hello")), StatusCode::OK),
                )
                .await;
            drop(peer);
            // The JS way of doing our job: the same verify behind a Durable Object limiter
            // of our semantics, at our `anon` rate.
            let limited = serve_on_workerd(
                &bench.opts,
                "workerd-jose-limited",
                json!({
                    "modulesRoot": dir,
                    "modules": [{"type": "ESModule", "path": dir.join("limited.mjs")}],
                    "bindings": {"ED_X": o.key_x, "ANON_RATE": RATES.split(',').next().unwrap().trim_start_matches("anon=")},
                    "durableObjects": {"LIMITER": "Limiter"},
                }),
            );
            verify_loop(
                bench,
                JOSE_LIMITED,
                "POST /verify/eddsa",
                &limited,
                "/verify/eddsa",
                &ed_body,
            )
            .await;
        }
        None => {
            println!("  the jose peer is not built (`cargo xtask bench` builds it): skipped")
        }
    }
}

/// The same Worker under `wrangler dev`, for reference (its Node proxy sits in front of
/// workerd).
pub(crate) async fn wrangler(bench: &mut Bench, http: &reqwest::Client, o: &Arc<Origin>) {
    let ow = o.watch.clone();
    // --- the same Worker under wrangler dev ------------------------------------------------
    println!("\n[edge: wrangler dev (for reference: its Node proxy sits in front of workerd)]");
    if bench.wants("wrangler") {
        let state = bench
            .opts
            .target
            .join(format!("bench/wrangler-state-{}", std::process::id()));
        std::fs::create_dir_all(&state).unwrap();
        let port = free_port();
        let vars: Vec<String> = our_worker_bindings(o, "EdDSA")
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap()))
            .collect();
        let log = bench.opts.target.join("bench/wrangler.log");
        let config = prebuilt_worker_config("bench", true);
        let mut dev = wrangler_dev(Some(&config), port, &state, &log, &vars);
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(
            http,
            &format!("{base}/.well-known/jwks.json"),
            Duration::from_secs(600),
        )
        .await;
        let watch = Watch::Group(i32::try_from(dev.child().id()).unwrap());
        public_workloads(
            bench,
            "edge",
            "ours (wrangler dev)",
            &base,
            &watch,
            Some(&ow),
            "dev@example.com",
        )
        .await;
        drop(dev);
        let _ = std::fs::remove_dir_all(&state);
    }
}

/// The Django original under gunicorn, on the same PostgreSQL.
pub(crate) async fn django(bench: &mut Bench, http: &reqwest::Client) {
    // --- the Django original -----------------------------------------------------------------
    println!(
        "\n[the Django original: Django + DRF + Djoser + SimpleJWT, gunicorn, same PostgreSQL]"
    );
    if !bench.wants("django") {
        println!("  skipped (BENCH_ONLY)");
    } else if let Some(django) = start_django(&bench.opts, http).await {
        let watch = django.watch.clone();
        let base = django.base.clone();
        public_workloads(
            bench,
            "django",
            "django (gunicorn)",
            &base,
            &watch,
            None,
            "bench@example.com",
        )
        .await;
        django.stop().await;
    }
}

/// An access token for `claims`' user signed with the HS256 Worker's secret.
fn hs256_token(claims: &Claims) -> String {
    let issuer = TokenIssuer::new(
        SigningKey::hs256(HS_SECRET.as_bytes()).unwrap(),
        testkit::audience(),
    );
    let subject = shared::token::Subject {
        user_id: claims.user_id,
        token_version: claims.ver,
        role: claims.role.clone(),
    };
    let c = issuer.claims(
        TokenKind::Access,
        &subject,
        "bench-hs256".into(),
        testkit::now(),
        3600,
    );
    issuer.sign(&c).unwrap()
}
