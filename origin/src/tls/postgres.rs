//! TLS to PostgreSQL with libpq's `sslmode` semantics, read from DATABASE_URL, over rustls:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (the default) | if the server offers it | no |
//! | `require` | always | no; with `sslrootcert`, as `verify-ca` (as libpq does) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the platform's roots) |
//! | `verify-full` | always | chain, and the host name in the certificate |
//!
//! `sslrootcert=/path/ca.pem` names the CA file; without it (or with `sslrootcert=system`) the
//! platform's roots are used (a managed PostgreSQL with a public CA).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::client::unverified_client_config;
use super::pem::pem_certificates;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> anyhow::Result<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // `allow` (plain first, TLS on refusal) is not offered: it never protects anything.
            other => bail!(
                "sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
            ),
        })
    }
}

/// A DATABASE_URL split into what tokio-postgres reads and the TLS settings it does not.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    /// `None`: the platform's roots.
    pub root_cert: Option<PathBuf>,
}

/// Reads `sslmode` and `sslrootcert` out of a `postgres://` URL; the rest goes to
/// tokio-postgres. Errors never contain the URL (it may hold a password). libpq's other form,
/// `key=value` pairs (`host=db sslmode=verify-full`), is refused: its `sslmode` would not be
/// read here, and the connection would silently fall back to `prefer`.
pub fn parse(url: &str) -> anyhow::Result<Target> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!(
            "DATABASE_URL must be a postgres:// URL (e.g. \
             postgres://user:password@host:5432/db?sslmode=verify-full); the key=value form is \
             not read, so its sslmode would be lost"
        );
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = value.parse()?,
            "sslrootcert" if value != "system" => {
                root_cert = Some(PathBuf::from(percent_decode(value)?));
            }
            "sslrootcert" => root_cert = None,
            _ => rest.push(pair),
        }
    }
    if mode == SslMode::Require && root_cert.is_some() {
        mode = SslMode::VerifyCa;
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid postgres:// URL"))?;
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    Ok(Target {
        config,
        mode,
        root_cert,
    })
}

fn percent_decode(value: &str) -> anyhow::Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .context("sslrootcert: a bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("sslrootcert is not UTF-8")
}

/// The connector for `target`'s mode (also used, never handshaking, for `disable`).
pub fn connector(target: &Target) -> anyhow::Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match target.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => unverified_client_config(),
        SslMode::VerifyCa => {
            let full = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(target.root_cert.as_ref())?),
                provider,
            )
            .build()
            .context("building the certificate verifier")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(full)))
                .with_no_client_auth()
        }
        SslMode::VerifyFull => builder
            .with_root_certificates(roots(target.root_cert.as_ref())?)
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn roots(file: Option<&PathBuf>) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            for cert in pem_certificates(path, "sslrootcert")? {
                store
                    .add(cert)
                    .with_context(|| format!("sslrootcert {}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                bail!("no platform CA certificates found (install ca-certificates, or set sslrootcert)");
            }
        }
    }
    Ok(store)
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_the_rest_passed_on() {
        let t = parse("postgres://u:p@db.example.com:5433/auth?sslmode=verify-full&sslrootcert=/etc/ca%20file.pem&application_name=origin").unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/etc/ca file.pem")));
        assert_eq!(t.config.get_application_name(), Some("origin"));
        assert_eq!(t.config.get_dbname(), Some("auth"));
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );

        let default = parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        assert_eq!(default.mode, SslMode::Prefer, "libpq's default");
        // As libpq: `require` with a CA file verifies the chain.
        let t = parse("postgres://h/db?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        let t = parse("postgres://h/db?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(t.root_cert, None);
        assert_eq!(
            parse("postgres://h/db?sslmode=disable")
                .unwrap()
                .config
                .get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn the_key_value_form_is_refused_rather_than_downgraded_to_prefer() {
        for form in [
            "host=db.example.com user=u password=secret dbname=auth sslmode=verify-full",
            "host=db.example.com sslmode=require",
            "",
        ] {
            let error = parse(form).err().expect(form).to_string();
            assert!(
                error.contains("postgres:// URL") && !error.contains("secret"),
                "{error}"
            );
        }
        assert!(parse("postgresql://u@h/db?sslmode=require").is_ok());
    }

    #[test]
    fn errors_do_not_repeat_the_url() {
        let bad_mode = parse("postgres://u:secret@h/db?sslmode=allow")
            .err()
            .unwrap()
            .to_string();
        assert!(
            bad_mode.contains("sslmode") && !bad_mode.contains("secret"),
            "{bad_mode}"
        );
        let bad_url = parse("postgres://u:secret@h:notaport/db")
            .err()
            .unwrap()
            .to_string();
        assert!(
            bad_url.contains("DATABASE_URL") && !bad_url.contains("secret"),
            "{bad_url}"
        );
    }
}
