//! The command line: `origin serve | migrate | create-superuser | set-role | audit |
//! import-django | openapi | keygen`.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Parser, Subcommand};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use shared::keys::{Ed25519PrivateKey, Jwks};
use shared::validate::{Email, Username};

use crate::config::{DatabaseArgs, ServeArgs};
use crate::password::PasswordHasher;
use crate::services::account;
use crate::startup::Application;
use crate::store::audit;

#[derive(Debug, Parser)]
#[command(
    name = "origin",
    version,
    about = "Origin service of the auth API (users, tokens, email)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the internal API until Ctrl-C / SIGTERM.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run the janitor once (what `serve` does every JANITOR_INTERVAL) and print what it deleted.
    Janitor {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Audit rows older than this many days are deleted; 0 keeps them.
        #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = crate::config::DEFAULT_AUDIT_RETENTION_DAYS)]
        audit_retention_days: u32,
        /// Login failures younger than this many seconds are kept.
        #[arg(long, env = "LOCKOUT_WINDOW", default_value_t = crate::config::DEFAULT_LOCKOUT_WINDOW as u64)]
        lockout_window: u64,
        /// Accounts waiting for activation this many days after sign-up are deleted; 0 keeps them.
        #[arg(long, env = "PENDING_ACCOUNT_DAYS", default_value_t = crate::config::DEFAULT_PENDING_ACCOUNT_DAYS)]
        pending_account_days: u32,
    },
    /// Create an admin account, or make an existing one admin with this password.
    CreateSuperuser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        /// The password (not checked against the policy, as the original command).
        #[arg(long, env = "SUPERUSER_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Give an account the `admin` or the `user` role (takes effect at once at the origin; access
    /// tokens already issued keep their `role` claim until they expire).
    SetRole {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "user"])]
        role: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Deactivate an account: its logins are refused and every session ends at once (refresh
    /// tokens revoked, access tokens refused by the origin). Audited.
    DeactivateUser {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Reactivate an account deactivated by `deactivate-user` (its old sessions stay ended).
    /// Audited.
    ReactivateUser {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// End every session of an account (refresh tokens revoked, access tokens refused by the
    /// origin; the edge's `/jwt/verify/` accepts an access token until it expires). Audited.
    RevokeSessions {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the audit log, newest first: logins, refresh-token reuse, resets, role changes.
    Audit {
        /// Only events of this account.
        #[arg(long)]
        email: Option<String>,
        /// Only this event (register, login_ok, login_failed, login_locked,
        /// refresh_reuse_detected, logout, reset_requested, reset_completed, superuser_set,
        /// role_changed, password_rehashed, imported, account_deleted, current_password_refused,
        /// username_changed, user_deactivated, user_reactivated, sessions_revoked).
        #[arg(long)]
        event: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Import users from the Django original (its database, or `manage.py dumpdata` JSON), with
    /// their Django password hashes: they log in with their old passwords and are re-hashed to
    /// argon2id at their first login.
    ImportDjango {
        /// Django's database, e.g. postgres://user@host/authref.
        #[arg(
            long,
            env = "DJANGO_DATABASE_URL",
            hide_env_values = true,
            required_unless_present = "from_json",
            conflicts_with = "from_json"
        )]
        from_database: Option<SecretString>,
        /// The users table in Django's database (the stock model's is auth_user).
        #[arg(long, default_value = "accounts_user")]
        table: String,
        /// Output of `manage.py dumpdata accounts.User` instead of a database.
        #[arg(long)]
        from_json: Option<std::path::PathBuf>,
        /// Check and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Exit 0 when the origin at BIND answers `GET /healthz` with 200 within 3 s, else 1 (the
    /// container image's HEALTHCHECK: the image has no shell or curl).
    Healthcheck {
        /// The address `serve` listens on; 0.0.0.0 is asked on 127.0.0.1.
        #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
        bind: std::net::SocketAddr,
        /// Set when `serve` speaks HTTPS: the check then does too (a liveness probe on this
        /// machine; the certificate is not checked).
        #[arg(long, env = "TLS_CERT")]
        tls_cert: Option<std::path::PathBuf>,
    },
    /// Write the OpenAPI 3.1 document of the public API (stdout without --out).
    Openapi {
        /// Where to write it; the edge serves `edge/assets/api/schema/index.json`.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Generate an Ed25519 signing key: prints JWT_PRIVATE_KEY (origin) and JWT_PUBLIC_KEYS
    /// (edge), in a form that reaches the program unchanged (`--format`).
    Keygen {
        /// Also print fresh ORIGIN_SIGNING_SECRET, RESET_TOKEN_SECRET and OTP_SECRET.
        #[arg(long)]
        with_secrets: bool,
        /// `env`: NAME=value lines without quotes (the PEM on one line, `\n` for its line
        /// breaks), for a compose `.env` or `docker run --env-file`; `shell`: `export
        /// NAME='value'` lines, for `. file` or `eval`; `json`: one object.
        #[arg(long, value_enum, default_value = "env")]
        format: KeyFormat,
        /// Also write the Worker's values (JWT_PUBLIC_KEYS, and with --with-secrets
        /// ORIGIN_SIGNING_SECRET, RESET_TOKEN_SECRET, OTP_SECRET; never the private key) to this
        /// file as JSON, for `wrangler secret bulk <file>`.
        #[arg(long)]
        worker_secrets: Option<std::path::PathBuf>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let _log_writer = crate::telemetry::init(args.log_format);
            let settings = args.validate()?;
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Janitor {
            database,
            audit_retention_days,
            lockout_window,
            pending_account_days,
        } => {
            let pool = crate::db::pool(&database)?;
            let retention = crate::janitor::Retention {
                audit_days: audit_retention_days,
                lockout_window: std::time::Duration::from_secs(lockout_window),
                pending_days: pending_account_days,
            };
            match crate::janitor::run_once(&pool, &retention).await? {
                crate::janitor::Run::Busy => {
                    println!("another janitor run holds the lock: nothing done")
                }
                crate::janitor::Run::Done(purged) => {
                    for (what, count) in purged.counts() {
                        println!("{what}: {count} deleted");
                    }
                }
            }
            Ok(())
        }
        Command::Migrate(database) => {
            let pool = crate::db::pool(&database)?;
            let applied = crate::db::migrate(&pool).await?;
            println!("migrations applied: {applied}");
            Ok(())
        }
        Command::CreateSuperuser {
            email,
            username,
            password,
            database,
        } => {
            let email = Email::parse(&email).map_err(|m| anyhow::anyhow!("--email: {m}"))?;
            let username =
                Username::parse(&username).map_err(|m| anyhow::anyhow!("--username: {m}"))?;
            anyhow::ensure!(!password.is_empty(), "--password must not be empty");
            let pool = migrated_pool(&database).await?;
            // One hashing thread, the same hasher and parameters as the server's.
            let hasher = PasswordHasher::new(1, 1)?;
            let superuser = account::set_superuser(
                &pool,
                &hasher,
                &email,
                &username,
                SecretString::from(password),
            )
            .await
            .context("could not create the superuser")?;
            println!(
                "{} superuser {} (id {})",
                if superuser.created {
                    "created"
                } else {
                    "updated"
                },
                email,
                superuser.id
            );
            Ok(())
        }
        Command::SetRole {
            email,
            role,
            database,
        } => {
            let pool = migrated_pool(&database).await?;
            let change = account_step(
                account::set_role(&pool, &email, &role).await,
                &email,
                "could not set the role",
            )?;
            println!("{email} (id {}): role {} -> {role}", change.id, change.from);
            Ok(())
        }
        Command::DeactivateUser { email, database } => {
            let pool = migrated_pool(&database).await?;
            let step = account_step(
                account::set_active(&pool, &email, false).await,
                &email,
                "could not deactivate the account",
            )?;
            println!(
                "{email} (id {}): {}, {} sessions revoked",
                step.id,
                if step.was_active {
                    "deactivated"
                } else {
                    "was already inactive"
                },
                step.sessions_revoked
            );
            Ok(())
        }
        Command::ReactivateUser { email, database } => {
            let pool = migrated_pool(&database).await?;
            let step = account_step(
                account::set_active(&pool, &email, true).await,
                &email,
                "could not reactivate the account",
            )?;
            let what = if step.was_active {
                "was already active"
            } else {
                "reactivated"
            };
            println!("{email} (id {}): {what}", step.id);
            Ok(())
        }
        Command::RevokeSessions { email, database } => {
            let pool = migrated_pool(&database).await?;
            let step = account_step(
                account::revoke_sessions(&pool, &email).await,
                &email,
                "could not revoke the sessions",
            )?;
            println!(
                "{email} (id {}): {} sessions revoked, access tokens outdated",
                step.id, step.sessions_revoked
            );
            Ok(())
        }
        Command::Audit {
            email,
            event,
            limit,
            json,
            database,
        } => {
            anyhow::ensure!(limit > 0, "--limit must be positive");
            let pool = crate::db::pool(&database)?;
            let client = pool.get().await.context("connecting to the database")?;
            let entries = audit::recent(&client, email.as_deref(), event.as_deref(), limit).await?;
            if json {
                for entry in &entries {
                    println!("{}", serde_json::to_string(entry)?);
                }
            } else {
                println!(
                    "{:<8} {:<25} {:<8} {:<24} {:<30} detail",
                    "id", "at", "user", "event", "email"
                );
                for e in &entries {
                    println!(
                        "{:<8} {:<25} {:<8} {:<24} {:<30} {}",
                        e.id,
                        e.at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
                        e.user_id
                            .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                        e.event,
                        e.email.as_deref().unwrap_or("-"),
                        e.detail
                    );
                }
            }
            Ok(())
        }
        Command::ImportDjango {
            from_database,
            table,
            from_json,
            dry_run,
            database,
        } => {
            let (users, source) = match (&from_database, &from_json) {
                (Some(url), _) => (
                    crate::import::from_database(url.expose_secret(), &table).await?,
                    format!("django database table {table}"),
                ),
                (None, Some(path)) => (
                    crate::import::read_dumpdata(path)?,
                    format!("django dumpdata {}", path.display()),
                ),
                (None, None) => anyhow::bail!("give --from-database or --from-json"),
            };
            eprintln!("read {} users from the {source}", users.len());
            let pool = migrated_pool(&database).await?;
            let mut client = pool.get().await.context("connecting to the database")?;
            let report = crate::import::import(&mut client, &users, "django", dry_run).await?;
            print!("{report}");
            if dry_run {
                println!("dry run: nothing was written");
            }
            Ok(())
        }
        Command::Healthcheck { bind, tls_cert } => {
            let status = healthcheck(bind, tls_cert.is_some()).await?;
            anyhow::ensure!(status == 200, "/healthz answered {status}");
            println!("healthy");
            Ok(())
        }
        Command::Openapi { out } => {
            let document = crate::openapi::document();
            match out {
                Some(path) => {
                    std::fs::write(&path, document)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{document}"),
            }
            Ok(())
        }
        Command::Keygen {
            with_secrets,
            format,
            worker_secrets,
        } => {
            let keys = Keys::generate(with_secrets);
            if let Some(path) = worker_secrets {
                write_private(&path, &keys.worker_json())
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote the Worker's values to {}", path.display());
            }
            print!("{}", keys.render(format));
            Ok(())
        }
    }
}

/// A pool on `database`, with the migrations applied (the operator commands run on a database
/// the server may not have migrated yet).
async fn migrated_pool(database: &DatabaseArgs) -> anyhow::Result<crate::db::Pool> {
    let pool = crate::db::pool(database)?;
    crate::db::migrate(&pool).await?;
    Ok(pool)
}

/// An operator's step on the account with `email`: its outcome, or why it failed (`failed`, the
/// cause), or that there is no such account.
fn account_step<T>(
    outcome: crate::services::Result<Option<T>>,
    email: &str,
    failed: &'static str,
) -> anyhow::Result<T> {
    outcome
        .context(failed)?
        .ok_or_else(|| anyhow::anyhow!("no account with the email {email}"))
}

/// `GET /healthz` over a plain TCP connection; returns the status code.
async fn healthcheck(mut bind: std::net::SocketAddr, tls: bool) -> anyhow::Result<u16> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn ask(mut stream: impl AsyncRead + AsyncWrite + Unpin) -> anyhow::Result<Vec<u8>> {
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = Vec::new();
        stream.take(64).read_to_end(&mut head).await?;
        Ok(head)
    }
    if bind.ip().is_unspecified() {
        bind.set_ip(if bind.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(bind).await?;
        if tls {
            let connector =
                tokio_rustls::TlsConnector::from(crate::tls::client::probe_client_config());
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            ask(connector.connect(name, stream).await?).await
        } else {
            ask(stream).await
        }
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(3), exchange)
        .await
        .with_context(|| format!("no answer from {bind} within 3 s"))?
        .with_context(|| format!("cannot reach {bind}"))?;
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer from {bind}"))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How `keygen` writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    Env,
    Shell,
    Json,
}

/// A fresh signing key (and secrets), as (name, value) pairs; the PEM's newlines are written
/// as `\n` so every value is one line (the origin accepts both forms). No value holds a quote
/// or a `$`; the spaces of the PEM's header are fine in every format below.
pub struct Keys {
    kid: String,
    values: Vec<(&'static str, String)>,
}

/// The names the Worker is given (`wrangler secret`): never the private key.
const WORKER_VALUES: [&str; 4] = [
    "JWT_PUBLIC_KEYS",
    "ORIGIN_SIGNING_SECRET",
    "RESET_TOKEN_SECRET",
    "OTP_SECRET",
];

impl Keys {
    pub fn generate(with_secrets: bool) -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let key = Ed25519PrivateKey::from_seed(seed);
        let jwk = key.public_jwk();
        let jwks = serde_json::to_string(&Jwks {
            keys: vec![jwk.clone()],
        })
        .expect("JWKS serialises");
        let mut values = vec![
            ("JWT_ALGORITHM", "EdDSA".to_owned()),
            (
                "JWT_PRIVATE_KEY",
                key.to_pem().trim_end().replace('\n', "\\n"),
            ),
            ("JWT_PUBLIC_KEYS", jwks),
        ];
        if with_secrets {
            for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "OTP_SECRET"] {
                values.push((name, random_secret()));
            }
        }
        Self {
            kid: jwk.kid,
            values,
        }
    }

    pub fn render(&self, format: KeyFormat) -> String {
        match format {
            // Docker's --env-file and compose's .env take an unquoted value literally (quotes
            // would become part of it); nothing here needs quoting for them.
            KeyFormat::Env => {
                let mut out = format!("# Ed25519 signing key, kid {}\n", self.kid);
                for (name, value) in &self.values {
                    out.push_str(&format!("{name}={value}\n"));
                }
                out
            }
            // Single quotes keep everything literal in sh; no value contains one.
            KeyFormat::Shell => {
                let mut out = format!("# Ed25519 signing key, kid {}\n", self.kid);
                for (name, value) in &self.values {
                    debug_assert!(!value.contains('\''));
                    out.push_str(&format!("export {name}='{value}'\n"));
                }
                out
            }
            KeyFormat::Json => self.json(|_| true),
        }
    }

    /// The Worker's values as JSON (`wrangler secret bulk`).
    pub fn worker_json(&self) -> String {
        self.json(|name| WORKER_VALUES.contains(&name))
    }

    fn json(&self, keep: impl Fn(&str) -> bool) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, value)| ((*name).to_owned(), value.clone().into()))
            .collect();
        format!(
            "{}\n",
            serde_json::to_string_pretty(&object).expect("JSON serialises")
        )
    }
}

/// Env-file lines of a fresh key (and secrets): `keygen`'s default output.
pub fn keygen(with_secrets: bool) -> String {
    Keys::generate(with_secrets).render(KeyFormat::Env)
}

/// A file only its owner can read (it holds secrets).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}
