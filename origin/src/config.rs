//! Configuration from the environment (or flags), parsed once at start-up into typed values.
//!
//! Every setting is listed with its default in the README's configuration table. Secrets are
//! `SecretString`s: they never appear in `Debug` output, in `--help`, or in a log line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use shared::keys::{Algorithm, Ed25519PrivateKey, Jwks, SigningKey, VerifyingKeys};
use shared::settings::{self, TokenParts, TokenSettings};
use shared::signing::RequestSigner;
use shared::token::{ResetTokens, TokenIssuer, TokenVerifier};
use shared::validate::PasswordPolicy;

/// A count that must be at least 1 (pool size, hashing threads, queue depth): refused by clap
/// with the variable's name, before anything starts.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// A positive number of seconds (token lifetimes, the lockout window).
fn seconds() -> clap::builder::RangedI64ValueParser<i64> {
    clap::value_parser!(i64).range(1..)
}

/// Default ARGON2_QUEUE_DEPTH per hashing thread.
pub const ARGON2_QUEUE_PER_THREAD: usize = 64;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection string.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: SecretString,

    /// Maximum connections in the pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16, value_parser = at_least_one())]
    pub database_pool_size: usize,

    /// How statements are sent: `named` (prepared once per connection and cached) or `unnamed`
    /// (one round trip each, for PgBouncer's transaction pooling before 1.21).
    #[arg(long, env = "DATABASE_STATEMENTS", value_enum, default_value = "named")]
    pub database_statements: Statements,

    /// Seconds a migration may wait for a table lock before it gives up (and the command or
    /// the start fails, changing nothing): a migration queued behind a long transaction would
    /// otherwise hold up every query on that table behind it.
    #[arg(long, env = "MIGRATION_LOCK_TIMEOUT", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub migration_lock_timeout: u64,
}

/// DATABASE_STATEMENTS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Statements {
    /// Named prepared statements, cached per connection: parsed and planned once.
    #[default]
    Named,
    /// The unnamed statement with typed parameters: nothing outlives the statement, so any
    /// pooler works; parsed again each time.
    Unnamed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailBackend {
    /// Print emails to standard output (development).
    Console,
    /// Send through the SMTP server at SMTP_URL.
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Everything `origin serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Shared secret for edge→origin request signatures (at least 32 bytes).
    #[arg(long, env = "ORIGIN_SIGNING_SECRET", hide_env_values = true)]
    pub origin_signing_secret: SecretString,

    /// Secret for password-reset tokens, shared with the edge (at least 32 bytes).
    #[arg(long, env = "RESET_TOKEN_SECRET", hide_env_values = true)]
    pub reset_token_secret: SecretString,

    /// JWT algorithm: EdDSA (Ed25519) or HS256.
    #[arg(long, env = "JWT_ALGORITHM", default_value = settings::DEFAULT_ALGORITHM)]
    pub jwt_algorithm: String,

    /// EdDSA: the signing key, PKCS#8 PEM (`origin keygen` writes one).
    #[arg(long, env = "JWT_PRIVATE_KEY", hide_env_values = true)]
    pub jwt_private_key: Option<SecretString>,

    /// EdDSA: JWKS of other public keys that verify during a key rotation (next or previous).
    #[arg(long, env = "JWT_PREVIOUS_PUBLIC_KEYS")]
    pub jwt_previous_public_keys: Option<String>,

    /// HS256: the shared secret (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// `iss` claim of every token.
    #[arg(long, env = "JWT_ISSUER", default_value = settings::DEFAULT_ISSUER)]
    pub jwt_issuer: String,

    /// `aud` claim of every token.
    #[arg(long, env = "JWT_AUDIENCE", default_value = settings::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL", default_value_t = 300, value_parser = seconds())]
    pub access_token_ttl: i64,

    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "REFRESH_TOKEN_TTL", default_value_t = 86_400, value_parser = seconds())]
    pub refresh_token_ttl: i64,

    /// Seconds after a rotation during which the old refresh token still gets the same answer
    /// (a client retrying after a lost response); reuse after it revokes the family. Off (0) by
    /// default: within the window a stolen token replayed by an attacker also gets a valid child.
    #[arg(long, env = "REFRESH_REUSE_GRACE", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub refresh_reuse_grace: i64,

    /// Password rules: `seed` (exactly 8 digits, as the original) or `strong` (12–128 chars).
    #[arg(long, env = "PASSWORD_POLICY", default_value = "seed")]
    pub password_policy: PasswordPolicy,

    /// Argon2 hashes computed at once (default: the number of cores).
    #[arg(long, env = "ARGON2_MAX_CONCURRENCY", value_parser = at_least_one())]
    pub argon2_max_concurrency: Option<usize>,

    /// Hashes allowed to wait for a thread; when full, requests that need one are answered 503
    /// with Retry-After at once (default: 64 per thread).
    #[arg(long, env = "ARGON2_QUEUE_DEPTH", value_parser = at_least_one())]
    pub argon2_queue_depth: Option<usize>,

    /// Failed logins of one account from one client network after which that network backs
    /// off: each further attempt waits min(2^(failures - threshold) s, LOCKOUT_WINDOW) after
    /// the last checked failure. A successful login from the network resets it.
    #[arg(long, env = "LOCKOUT_THRESHOLD", default_value_t = 5,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub lockout_threshold: i32,

    /// Failed logins of one account from all networks within LOCKOUT_WINDOW after which
    /// networks that have not logged into it in the last 30 days are refused (the owner's
    /// known networks are not).
    #[arg(long, env = "LOCKOUT_ACCOUNT_THRESHOLD", default_value_t = 100,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub lockout_account_threshold: i32,

    /// Lockout window in seconds: the longest back-off, and the span of the account-wide count.
    #[arg(long, env = "LOCKOUT_WINDOW", default_value_t = DEFAULT_LOCKOUT_WINDOW,
          value_parser = seconds())]
    pub lockout_window: i64,

    /// Where emails go.
    #[arg(long, env = "EMAIL_BACKEND", value_enum, default_value = "console")]
    pub email_backend: EmailBackend,

    /// SMTP server when EMAIL_BACKEND=smtp, e.g. `smtp://127.0.0.1:1025` or
    /// `smtps://user:pass@mail.example.com`.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// The From header of outgoing mail.
    #[arg(
        long,
        env = "EMAIL_FROM",
        default_value = "Auth API <no-reply@localhost>"
    )]
    pub email_from: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// When set, `GET /metrics` requires `Authorization: Bearer <this token>`.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,

    /// A PEM certificate chain: with TLS_KEY, BIND speaks HTTPS (the files are read again on
    /// SIGHUP). Without both, plain HTTP: put TLS in front (docs/deploy.md).
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of TLS_CERT.
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Audit rows older than this many days are deleted by the janitor; 0 keeps them forever.
    #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    pub audit_retention_days: u32,

    /// Seconds between janitor runs (expired tokens, used reset ids, sent emails, old audit
    /// rows); 0 turns it off. One replica runs it at a time.
    #[arg(long, env = "JANITOR_INTERVAL", default_value_t = 3_600)]
    pub janitor_interval: u64,

    /// Seconds between a stop signal and the listener closing, during which `/readyz` answers
    /// 503 and every request is still served: time for a load balancer to take the replica out
    /// (at least two of its health-check intervals). 0 closes at once.
    #[arg(long, env = "SHUTDOWN_DELAY", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay: u64,

    /// Djoser's SEND_ACTIVATION_EMAIL: a new account is inactive until activated by the link or
    /// the code of the email sent at sign-up (off: accounts are active at once, as the seed's).
    #[arg(long, env = "SEND_ACTIVATION_EMAIL", default_value = "false",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub send_activation_email: bool,

    /// The activation link, with `{uid}` and `{token}` (Djoser's ACTIVATION_URL), e.g.
    /// `https://app.example.com/activate/{uid}/{token}`; required with SEND_ACTIVATION_EMAIL.
    #[arg(long, env = "ACTIVATION_URL")]
    pub activation_url: Option<String>,

    /// Accounts still waiting for activation this many days after sign-up are deleted by the
    /// janitor (the address is free again); 0 keeps them.
    #[arg(long, env = "PENDING_ACCOUNT_DAYS", default_value_t = DEFAULT_PENDING_ACCOUNT_DAYS)]
    pub pending_account_days: u32,

    /// Where `GET /metrics` is served: a listener of its own, never BIND (the edge's). `off`
    /// serves no metrics.
    #[arg(long, env = "METRICS_BIND", default_value = DEFAULT_METRICS_BIND)]
    pub metrics_bind: String,
}

/// LOCKOUT_WINDOW's default, in seconds (`serve` and `janitor` read it).
pub const DEFAULT_LOCKOUT_WINDOW: i64 = 3_600;

/// PENDING_ACCOUNT_DAYS's default (`serve` and `janitor` read it).
pub const DEFAULT_PENDING_ACCOUNT_DAYS: u32 = 7;

/// AUDIT_RETENTION_DAYS's default (`serve` and `janitor` read it).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;

/// Loopback: scraped from the host, or by a sidecar sharing the network namespace.
pub const DEFAULT_METRICS_BIND: &str = "127.0.0.1:9100";

/// METRICS_BIND: an address, or `off`; never BIND's address (port 0 aside: any free port).
pub fn metrics_bind(value: &str, bind: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let address: SocketAddr = value.parse().map_err(|_| {
        anyhow::anyhow!("invalid METRICS_BIND: expected host:port or off, got {value:?}")
    })?;
    if address.port() != 0 && address.port() == bind.port() {
        bail!("invalid METRICS_BIND: {address} is BIND's port; metrics are never served on the edge's listener");
    }
    Ok(Some(address))
}

/// Token settings, validated.
pub struct TokenConfig {
    pub issuer: TokenIssuer,
    pub verifier: TokenVerifier,
    pub resets: ResetTokens,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub reuse_grace: i64,
}

/// `serve` settings after validation: every error names the variable at fault.
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseArgs,
    pub signer: RequestSigner,
    pub tokens: TokenConfig,
    pub password_policy: PasswordPolicy,
    pub argon2_permits: usize,
    pub argon2_queue_depth: usize,
    pub lockout_threshold: i32,
    pub lockout_account_threshold: i32,
    pub lockout_window: Duration,
    pub email: EmailSettings,
    pub metrics_token: Option<SecretString>,
    /// `None`: METRICS_BIND=off.
    pub metrics_bind: Option<SocketAddr>,
    /// AUDIT_RETENTION_DAYS (the janitor's other settings are `lockout_window` and
    /// `pending_account_days`).
    pub audit_retention_days: u32,
    /// PENDING_ACCOUNT_DAYS; 0 keeps accounts waiting for activation.
    pub pending_account_days: u32,
    /// `Some`: HTTPS on BIND.
    pub tls: Option<crate::tls::server::TlsFiles>,
    /// `None`: JANITOR_INTERVAL=0.
    pub janitor_interval: Option<Duration>,
    /// SHUTDOWN_DELAY: how long `/readyz` answers 503 before the listener closes.
    pub shutdown_delay: Duration,
    /// SEND_ACTIVATION_EMAIL on: how to make the links and codes.
    pub activation: Option<Activation>,
}

/// Email verification at sign-up: the link's template and the keys of links and codes.
#[derive(Debug)]
pub struct Activation {
    /// ACTIVATION_URL, with `{uid}` and `{token}`.
    pub url: String,
    pub keys: shared::activation::ActivationKeys,
    /// PENDING_ACCOUNT_DAYS, told in the email (0: the account waits as long as it takes).
    pub pending_days: u32,
}

impl Activation {
    /// ACTIVATION_URL checked: an http(s) URL with both placeholders.
    /// `secrets`: RESET_TOKEN_SECRET's values, current first (links and codes made under a
    /// retiring one keep working).
    pub fn new(url: &str, secrets: &[&[u8]], pending_days: u32) -> anyhow::Result<Self> {
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("invalid ACTIVATION_URL: must be an http(s) URL, got {url:?}");
        }
        if !(url.contains("{uid}") && url.contains("{token}")) {
            bail!("invalid ACTIVATION_URL: must contain {{uid}} and {{token}}, got {url:?}");
        }
        Ok(Self {
            url: url.to_owned(),
            keys: shared::activation::ActivationKeys::rotating(secrets),
            pending_days,
        })
    }

    /// The link for `uid` and `token`.
    pub fn link(&self, uid: &str, token: &str) -> String {
        self.url.replace("{uid}", uid).replace("{token}", token)
    }
}

pub struct EmailSettings {
    pub backend: EmailBackend,
    pub smtp_url: Option<SecretString>,
    pub from: String,
}

impl ServeArgs {
    /// The settings `serve` runs with. Numbers and enums were checked by clap as they were
    /// read; what is left are the rules across variables. Every error names the variable.
    pub fn validate(self) -> anyhow::Result<Settings> {
        // Issuer, audience, algorithm and the shared secrets: read as the edge reads them.
        let TokenSettings {
            audience,
            algorithm,
            hs256_secrets,
            reset_secrets,
            resets,
            signer,
        } = TokenSettings::from_parts(TokenParts {
            issuer: Some(&self.jwt_issuer),
            audience: Some(&self.jwt_audience),
            algorithm: Some(&self.jwt_algorithm),
            jwt_secret: self.jwt_secret.as_ref().map(|s| s.expose_secret()),
            reset_token_secret: Some(self.reset_token_secret.expose_secret()),
            origin_signing_secret: Some(self.origin_signing_secret.expose_secret()),
        })
        .map_err(|e| anyhow::anyhow!("invalid {e}"))?;
        let (signing, verifying) = self.jwt_keys(algorithm, &settings::bytes_of(&hs256_secrets))?;
        if self.email_backend == EmailBackend::Smtp && self.smtp_url.is_none() {
            bail!("SMTP_URL is required when EMAIL_BACKEND=smtp");
        }
        let (argon2_permits, argon2_queue_depth) = self.argon2_limits();
        let metrics_bind = metrics_bind(&self.metrics_bind, self.bind)?;
        let tls = self.tls_files()?;
        if self.database.database_statements == Statements::Unnamed && self.janitor_interval > 0 {
            // Unnamed statements are for a transaction-pooling PgBouncer, where consecutive
            // statements may reach different server sessions: a session lock cannot be held.
            bail!(
                "DATABASE_STATEMENTS=unnamed (a transaction pooler) cannot hold the janitor's \
                 lock: set JANITOR_INTERVAL=0 and run `origin janitor` on a schedule against \
                 PostgreSQL directly"
            );
        }
        let activation = self.activation(&settings::bytes_of(&reset_secrets))?;
        Ok(Settings {
            activation,
            bind: self.bind,
            database: self.database,
            signer,
            tokens: TokenConfig {
                issuer: TokenIssuer::new(signing, audience.clone()),
                verifier: TokenVerifier::new(verifying, audience),
                resets,
                access_ttl: self.access_token_ttl,
                refresh_ttl: self.refresh_token_ttl,
                reuse_grace: self.refresh_reuse_grace,
            },
            password_policy: self.password_policy,
            argon2_permits,
            argon2_queue_depth,
            lockout_threshold: self.lockout_threshold,
            lockout_account_threshold: self.lockout_account_threshold,
            lockout_window: Duration::from_secs(self.lockout_window as u64),
            email: EmailSettings {
                backend: self.email_backend,
                smtp_url: self.smtp_url,
                from: self.email_from,
            },
            metrics_token: self.metrics_token.filter(|t| !t.expose_secret().is_empty()),
            metrics_bind,
            audit_retention_days: self.audit_retention_days,
            pending_account_days: self.pending_account_days,
            tls,
            janitor_interval: (self.janitor_interval > 0)
                .then(|| Duration::from_secs(self.janitor_interval)),
            shutdown_delay: Duration::from_secs(self.shutdown_delay),
        })
    }

    /// The key tokens are signed with, and the keys they are verified with: EdDSA's private key
    /// and the previous public keys still accepted, or HS256's secrets (the first signs).
    fn jwt_keys(
        &self,
        algorithm: Algorithm,
        hs256_secrets: &[&[u8]],
    ) -> anyhow::Result<(SigningKey, VerifyingKeys)> {
        if algorithm == Algorithm::HS256 {
            let current = hs256_secrets.first().copied().unwrap_or_default();
            return Ok((
                SigningKey::hs256(current).context("invalid JWT_SECRET")?,
                VerifyingKeys::hs256_all(hs256_secrets).context("invalid JWT_SECRET")?,
            ));
        }
        let pem = self.jwt_private_key.as_ref().context(
            "JWT_PRIVATE_KEY is required when JWT_ALGORITHM=EdDSA (run `origin keygen`)",
        )?;
        let private =
            Ed25519PrivateKey::from_pem(pem.expose_secret()).context("invalid JWT_PRIVATE_KEY")?;
        let current = private.public_jwk();
        let mut jwks = Jwks {
            keys: vec![current.clone()],
        };
        // An empty value (compose's `${JWT_PREVIOUS_PUBLIC_KEYS:-}`) means none.
        if let Some(previous) = self
            .jwt_previous_public_keys
            .as_ref()
            .filter(|v| !v.trim().is_empty())
        {
            let previous: Jwks = serde_json::from_str(previous)
                .context("invalid JWT_PREVIOUS_PUBLIC_KEYS (expected a JWKS document)")?;
            jwks.keys
                .extend(previous.keys.into_iter().filter(|k| k.kid != current.kid));
        }
        let verifying =
            VerifyingKeys::from_jwks(&jwks).context("invalid JWT_PREVIOUS_PUBLIC_KEYS")?;
        Ok((SigningKey::ed25519(&private), verifying))
    }

    /// (hashing threads, hashes allowed to wait). 64 waiting per thread by default: about one
    /// second of work at ~15 ms a hash, well inside the edge's 10 s origin timeout; a deeper
    /// queue only makes every caller wait longer.
    fn argon2_limits(&self) -> (usize, usize) {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = self.argon2_max_concurrency.unwrap_or(cores);
        let depth = self
            .argon2_queue_depth
            .unwrap_or(permits.saturating_mul(ARGON2_QUEUE_PER_THREAD));
        (permits, depth)
    }

    fn tls_files(&self) -> anyhow::Result<Option<crate::tls::server::TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            _ => bail!("TLS_CERT and TLS_KEY go together: set both for HTTPS, or neither"),
        }
    }

    /// `reset_secrets`: RESET_TOKEN_SECRET's values, current first.
    fn activation(&self, reset_secrets: &[&[u8]]) -> anyhow::Result<Option<Activation>> {
        match (self.send_activation_email, &self.activation_url) {
            (false, _) => Ok(None),
            (true, None) => bail!(
                "ACTIVATION_URL is required when SEND_ACTIVATION_EMAIL=true \
                 (e.g. https://app.example.com/activate/{{uid}}/{{token}})"
            ),
            (true, Some(url)) => Ok(Some(Activation::new(
                url,
                reset_secrets,
                self.pending_account_days,
            )?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_urls_need_both_placeholders() {
        let secret: &[&[u8]] = &[&[7; 32]];
        let ok =
            Activation::new("https://app.example.com/activate/{uid}/{token}", secret, 7).unwrap();
        assert_eq!(
            ok.link("NDI", "1-ab"),
            "https://app.example.com/activate/NDI/1-ab"
        );
        for bad in [
            "app.example.com/activate/{uid}/{token}",
            "https://app.example.com/activate/{uid}",
            "https://app.example.com/activate/{token}",
            "",
        ] {
            assert!(Activation::new(bad, secret, 7).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_bind_is_an_address_of_its_own_or_off() {
        let bind: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert_eq!(
            metrics_bind(DEFAULT_METRICS_BIND, bind).unwrap(),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(metrics_bind("off", bind).unwrap(), None);
        assert_eq!(metrics_bind(" OFF ", bind).unwrap(), None);
        let same = metrics_bind("127.0.0.1:8000", bind)
            .unwrap_err()
            .to_string();
        assert!(
            same.contains("METRICS_BIND") && same.contains("BIND's port"),
            "{same}"
        );
        let bad = metrics_bind("9100", bind).unwrap_err().to_string();
        assert!(bad.starts_with("invalid METRICS_BIND"), "{bad}");
        // Port 0 is any free port, never BIND's.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(metrics_bind("127.0.0.1:0", any).unwrap().is_some());
    }

    #[derive(clap::Parser)]
    struct Database {
        #[command(flatten)]
        database: DatabaseArgs,
    }

    fn statements(extra: &[&str]) -> Result<Statements, String> {
        use clap::Parser;
        let args = ["origin", "--database-url", "postgres://db/x"];
        Database::try_parse_from(args.iter().chain(extra))
            .map(|parsed| parsed.database.database_statements)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn database_statements_default_to_named_and_reject_other_values() {
        assert_eq!(statements(&[]).unwrap(), Statements::Named);
        for (value, expected) in [
            ("named", Statements::Named),
            ("unnamed", Statements::Unnamed),
        ] {
            assert_eq!(
                statements(&["--database-statements", value]).unwrap(),
                expected
            );
        }
        let bad = statements(&["--database-statements", "off"]).unwrap_err();
        assert!(
            bad.contains("DATABASE_STATEMENTS")
                && bad.contains("[possible values: named, unnamed]"),
            "{bad}"
        );
    }
}
