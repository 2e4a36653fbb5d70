//! The system under test: the origin binary, a PostgreSQL database, an SMTP sink and `wrangler dev`
//! running the prebuilt Worker; requests from a chosen client address.

use crate::prelude::*;

pub(crate) fn origin_log_path() -> PathBuf {
    repo_root().join("target/e2e-origin.log")
}

pub(crate) fn wrangler_log_path() -> PathBuf {
    repo_root().join("target/e2e-wrangler.log")
}

pub(crate) struct Stack {
    /// The `--var`s the Worker runs with.
    pub(crate) edge_vars: Vec<String>,
    pub(crate) edge: String,
    pub(crate) http: reqwest::Client,
    pub(crate) db: TestDb,
    pub(crate) sink: SmtpSink,
    pub(crate) origin_port: u16,
    pub(crate) origin_env: Vec<(String, String)>,
    pub(crate) origin: Option<Group>,
    pub(crate) _wrangler: Group,
    pub(crate) _state: tempdir::Dir,
}

pub(crate) mod tempdir {
    /// A scratch directory removed on drop (wrangler's Durable Object state lives here).
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir()
                .join(format!("e2e-wrangler-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Stack {
    pub(crate) async fn start() -> Self {
        let db = TestDb::create().await;
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp_port = smtp.local_addr().unwrap().port();
        let sink = SmtpSink::serve(smtp);

        let (key, jwks) = testkit::signing_key();
        let origin_port = free_port();
        let origin_env: Vec<(String, String)> = [
            ("DATABASE_URL", db.url.clone()),
            ("BIND", format!("127.0.0.1:{origin_port}")),
            ("METRICS_BIND", "127.0.0.1:0".into()),
            ("ORIGIN_SIGNING_SECRET", SIGNING.into()),
            ("RESET_TOKEN_SECRET", RESET.into()),
            ("JWT_PRIVATE_KEY", key.to_pem()),
            ("EMAIL_BACKEND", "smtp".into()),
            ("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
            ("LOG_FORMAT", "json".into()),
            // Our own debug lines too: the no-secrets check is stricter than production's `info`.
            ("RUST_LOG", "info,origin=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let state = tempdir::Dir::new();
        let edge_port = free_port();
        let wrangler = repo_root().join("node_modules/.bin/wrangler");
        assert!(
            wrangler.exists(),
            "{} missing: run `npm ci` (`cargo xtask test` does)",
            wrangler.display()
        );
        let vars = vec![
            format!("ORIGIN_URL:http://127.0.0.1:{origin_port}"),
            format!("JWT_PUBLIC_KEYS:{jwks}"),
            format!("ORIGIN_SIGNING_SECRET:{SIGNING}"),
            format!("RESET_TOKEN_SECRET:{RESET}"),
            format!("OTP_SECRET:{OTP}"),
            format!("CORS_ALLOWED_ORIGINS:{ALLOWED_ORIGIN}"),
            "ORIGIN_TIMEOUT_MS:3000".to_owned(),
            // The scenarios share a few /24s and one service: the nested reset budgets (per
            // site, provider and for everyone; tested by the edge's flow tests) are raised so
            // each scenario still meets the default per-client rates on its own.
            "THROTTLE_RATES:password_reset_site=1000/hour,password_reset_provider=1000/hour,\
             password_reset_all=1000/hour"
                .to_owned(),
        ];
        std::fs::write(origin_log_path(), "").unwrap();
        let log_path = wrangler_log_path();
        let config = prebuilt_worker_config("e2e", true);
        let wrangler = wrangler_dev(Some(&config), edge_port, &state.0, &log_path, &vars);

        let mut stack = Self {
            edge_vars: vars,
            edge: format!("http://127.0.0.1:{edge_port}"),
            http,
            db,
            sink,
            origin_port,
            origin_env,
            origin: None,
            _wrangler: wrangler,
            _state: state,
        };
        stack.start_origin().await;
        println!("waiting for wrangler dev (log: {})", log_path.display());
        let jwks = format!("{}/.well-known/jwks.json", stack.edge);
        wait_until_serving(
            &stack.http,
            &jwks,
            Duration::from_secs(600),
            &mut stack._wrangler,
            &log_path,
        )
        .await;
        stack
    }

    pub(crate) async fn start_origin(&mut self) {
        // Appended across restarts; the log check reads it at the end.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(origin_log_path())
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin-under-test"));
        cmd.arg("serve")
            .env_clear()
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in &self.origin_env {
            cmd.env(k, v);
        }
        self.origin = Some(testkit::process::spawn(&mut cmd));
        wait_until_up(
            &self.http,
            &format!("http://127.0.0.1:{}/readyz", self.origin_port),
            Duration::from_secs(30),
        )
        .await;
    }

    pub(crate) fn stop_origin(&mut self) {
        if let Some(mut origin) = self.origin.take() {
            origin.stop();
        }
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        ip: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request_at(&self.edge, method, path, ip, bearer, body)
            .await
    }

    /// [`Stack::request`] to another Worker at `edge` (a prebuilt one of a fault scenario).
    pub(crate) async fn request_at(
        &self,
        edge: &str,
        method: Method,
        path: &str,
        ip: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{edge}{path}"))
            .header("CF-Connecting-IP", ip);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.expect("edge answers")).await
    }

    pub(crate) async fn post(&self, path: &str, ip: &str, body: Value) -> Reply {
        self.request(Method::POST, path, ip, None, Some(body)).await
    }

    pub(crate) async fn register_and_login(
        &self,
        ip: &str,
        email: &str,
        username: &str,
    ) -> (String, String) {
        let r = self
            .post(
                "/api/auth/users/",
                ip,
                json!({"email": email, "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let t = self
            .post(
                "/api/auth/jwt/create/",
                ip,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.body);
        (
            t.body["access"].as_str().unwrap().to_owned(),
            t.body["refresh"].as_str().unwrap().to_owned(),
        )
    }

    /// Requests a reset for `email` and returns the code from the email that arrives.
    pub(crate) async fn reset_code(&self, ip: &str, email: &str) -> String {
        let before = self.sink.messages().len();
        let r = self
            .post("/api/auth/password/reset/", ip, json!({ "email": email }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let messages = self
            .sink
            .wait_for(before + 1, Duration::from_secs(15))
            .await;
        assert_eq!(messages.len(), before + 1, "reset email delivered");
        let message = messages.last().unwrap();
        assert!(message.contains(&format!("To: {email}")), "{message}");
        code_in(message)
    }
}

pub(crate) fn not_valid() -> Value {
    json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
}

/// `wrangler dev` on a [`prebuilt_worker_config`] and a Durable Object state directory, once it
/// answers; its log is `wrangler.log` beside the config.
pub(crate) async fn serve_prebuilt(s: &Stack, config: &Path, state: &Path) -> (Group, String) {
    serve_prebuilt_with(s, config, state, &s.edge_vars).await
}

/// [`serve_prebuilt`] with other `--var`s.
pub(crate) async fn serve_prebuilt_with(
    s: &Stack,
    config: &Path,
    state: &Path,
    vars: &[String],
) -> (Group, String) {
    let port = free_port();
    let log_path = config.with_file_name("wrangler.log");
    let mut edge = wrangler_dev(Some(config), port, state, &log_path, vars);
    let url = format!("http://127.0.0.1:{port}");
    wait_until_serving(
        &s.http,
        &format!("{url}/.well-known/jwks.json"),
        Duration::from_secs(120),
        &mut edge,
        &log_path,
    )
    .await;
    (edge, url)
}
