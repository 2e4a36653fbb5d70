//! `origin keygen`: a fresh Ed25519 signing key (and secrets), in a form that reaches the
//! program unchanged.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use shared::keys::{Ed25519PrivateKey, Jwks};

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
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
    worker_secrets: Option<PathBuf>,
}

/// What `keygen` prints: the values in the chosen format.
pub struct Printed(String);

impl fmt::Display for Printed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl KeygenArgs {
    pub fn run(self) -> anyhow::Result<Printed> {
        let keys = Keys::generate(self.with_secrets);
        if let Some(path) = self.worker_secrets {
            write_private(&path, &keys.worker_json())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote the Worker's values to {}", path.display());
        }
        Ok(Printed(keys.render(self.format)))
    }
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
