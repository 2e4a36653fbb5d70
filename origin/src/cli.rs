//! The command line: `origin serve | migrate | create-superuser | keygen`.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Parser, Subcommand};
use rand_core::{OsRng, RngCore};
use serde_json::json;
use shared::keys::{Ed25519PrivateKey, Jwks};
use shared::validate::{Email, Username};

use crate::config::{DatabaseArgs, ServeArgs};
use crate::startup::Application;
use crate::store::audit::{self, Event};
use crate::store::users;

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
    /// Write the OpenAPI 3.1 document of the public API (stdout without --out).
    Openapi {
        /// Where to write it; the edge serves `edge/assets/api/schema/index.json`.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Generate an Ed25519 signing key: prints JWT_PRIVATE_KEY (origin) and JWT_PUBLIC_KEYS
    /// (edge) as env-file lines.
    Keygen {
        /// Also print fresh ORIGIN_SIGNING_SECRET, RESET_TOKEN_SECRET and OTP_SECRET.
        #[arg(long)]
        with_secrets: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            crate::telemetry::init(args.log_format);
            let settings = args.validate()?;
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
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
            let pool = crate::db::pool(&database)?;
            crate::db::migrate(&pool).await?;
            let hash =
                tokio::task::spawn_blocking(move || crate::password::hash_blocking(&password))
                    .await??;
            let client = pool.get().await.context("connecting to the database")?;
            let (id, created) =
                users::upsert_superuser(&client, email.as_str(), username.as_str(), &hash)
                    .await
                    .map_err(|e| anyhow::anyhow!("could not create the superuser: {e}"))?;
            audit::record(
                &client,
                Some(id),
                Event::SuperuserSet,
                json!({ "created": created }),
            )
            .await?;
            println!(
                "{} superuser {} (id {id})",
                if created { "created" } else { "updated" },
                email
            );
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
        Command::Keygen { with_secrets } => {
            print!("{}", keygen(with_secrets));
            Ok(())
        }
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Env-file lines; the PEM's newlines are written as `\n` so the value fits on one line
/// (the origin accepts both forms).
pub fn keygen(with_secrets: bool) -> String {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let key = Ed25519PrivateKey::from_seed(seed);
    let jwk = key.public_jwk();
    let jwks = serde_json::to_string(&Jwks {
        keys: vec![jwk.clone()],
    })
    .expect("JWKS serialises");
    let mut out = format!(
        "# Ed25519 signing key, kid {}\nJWT_ALGORITHM=EdDSA\nJWT_PRIVATE_KEY=\"{}\"\nJWT_PUBLIC_KEYS='{}'\n",
        jwk.kid,
        key.to_pem().trim_end().replace('\n', "\\n"),
        jwks
    );
    if with_secrets {
        for name in ["ORIGIN_SIGNING_SECRET", "RESET_TOKEN_SECRET", "OTP_SECRET"] {
            out.push_str(&format!("{name}={}\n", random_secret()));
        }
    }
    out
}
