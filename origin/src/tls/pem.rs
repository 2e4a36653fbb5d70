//! PEM files: the certificates of TLS_CERT (the server) and of `sslrootcert` (PostgreSQL).

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The certificates of the PEM file `path` (at least one), read for the setting `setting`.
pub fn pem_certificates(
    path: &std::path::Path,
    setting: &str,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {setting} {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{setting} {}: {e:?}", path.display()))?;
    if certs.is_empty() {
        bail!("{setting} {} holds no certificate", path.display());
    }
    Ok(certs)
}
