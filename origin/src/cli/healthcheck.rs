//! `origin healthcheck`: the container image's HEALTHCHECK (the image has no shell or curl).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The address `serve` listens on; 0.0.0.0 is asked on 127.0.0.1.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Set when `serve` speaks HTTPS: the check then does too (a liveness probe on this
    /// machine; the certificate is not checked).
    #[arg(long, env = "TLS_CERT")]
    tls_cert: Option<PathBuf>,
}

/// `healthy`: printed only when `/healthz` answered 200.
pub struct Healthy;

impl fmt::Display for Healthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "healthy")
    }
}

impl HealthcheckArgs {
    pub async fn run(self) -> anyhow::Result<Healthy> {
        let status = healthcheck(self.bind, self.tls_cert.is_some()).await?;
        anyhow::ensure!(status == 200, "/healthz answered {status}");
        Ok(Healthy)
    }
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
