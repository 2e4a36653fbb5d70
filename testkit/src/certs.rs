//! Certificates for TLS tests, made with the openssl command: CAs, and server certificates for
//! `localhost` that a CA signed.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA: `dir/{name}.pem` and `dir/{name}.key`.
pub fn ca(dir: &Path, name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN=auth-api test {name}"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend(EC);
    args.extend([
        "-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subject,
    ]);
    openssl(dir, &args);
}

/// A server certificate for `localhost` signed by the CA `ca`: `dir/{name}.pem` and
/// `dir/{name}.key` (mode 0600).
pub fn server(dir: &Path, ca: &str, name: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let mut args = vec!["req"];
    args.extend(EC);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
}
