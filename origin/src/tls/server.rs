//! HTTPS on BIND when TLS_CERT and TLS_KEY are set: rustls on the ring provider, the files read
//! again on SIGHUP, so a renewed certificate needs no restart (a pair that does not load keeps
//! the previous one, and the log says why).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;

use super::pem::pem_certificates;

/// TLS_CERT (a PEM chain, leaf first) and TLS_KEY (its PEM private key).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The server configuration of the files as they are now.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = pem_certificates(&files.cert, "TLS_CERT")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("TLS_KEY {}: {e:?}", files.key.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("TLS_CERT and TLS_KEY are not a certificate and its key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reloads `config` from `files` on every SIGHUP until the process ends.
pub async fn reload_on_sighup(files: TlsFiles, config: RustlsConfig) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("SIGHUP cannot be caught: the TLS certificate is not reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match server_config(&files) {
            Ok(fresh) => {
                config.reload_from_config(fresh);
                tracing::info!("TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "TLS certificate not reloaded; the previous one stays"
            ),
        }
    }
}
