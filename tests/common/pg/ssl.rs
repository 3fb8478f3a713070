//! A throwaway certificate authority and server certificate made with the `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::setup::{hand_over, run};

/// The files of a throwaway TLS setup for one cluster.
#[derive(Debug, Clone)]
pub struct SslFiles {
    /// The CA certificate clients trust (`sslrootcert`).
    pub ca_cert: PathBuf,
    /// The server certificate, for `localhost` and `127.0.0.1`, signed by the CA.
    pub server_cert: PathBuf,
    /// The server key, owned by the server user with mode 0600 as PostgreSQL demands.
    pub server_key: PathBuf,
}

const OPENSSL_CONF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = poolwatch test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes a CA and a server certificate (CN and SAN `localhost`, SAN `127.0.0.1`) in `dir`.
///
/// ECDSA P-256 keys: generating them takes milliseconds, and rustls accepts them.
pub fn generate(dir: &Path) -> Result<SslFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let conf = dir.join("openssl.cnf");
    std::fs::write(&conf, OPENSSL_CONF).map_err(|e| format!("write {}: {e}", conf.display()))?;
    let files = SslFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let ca_key = dir.join("ca.key");
    let csr = dir.join("server.csr");
    let openssl = || {
        let mut c = Command::new("openssl");
        c.current_dir(dir);
        c
    };
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(
        openssl()
            .args([
                "req",
                "-x509",
                "-new",
                "-days",
                "3",
                "-extensions",
                "v3_ca",
                "-config",
            ])
            .arg(&conf)
            .args(new_key)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&files.ca_cert),
        "openssl: make CA",
    )?;
    run(
        openssl()
            .args(["req", "-new", "-subj", "/CN=localhost", "-config"])
            .arg(&conf)
            .args(new_key)
            .arg("-keyout")
            .arg(&files.server_key)
            .arg("-out")
            .arg(&csr),
        "openssl: make server key",
    )?;
    let serial = format!("0x{:016x}", rand::random::<u64>());
    run(
        openssl()
            .args([
                "x509",
                "-req",
                "-days",
                "3",
                "-set_serial",
                &serial,
                "-extensions",
                "v3_server",
            ])
            .arg("-extfile")
            .arg(&conf)
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&files.ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&files.server_cert),
        "openssl: sign server certificate",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&files.server_key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod server key: {e}"))?;
    for path in [dir, &files.server_key, &files.server_cert, &files.ca_cert] {
        hand_over(path)?;
    }
    Ok(files)
}

/// A rustls client configuration trusting only `ca_cert`, for `sslmode=verify-full`-style
/// connections with `tokio-postgres-rustls` (rustls always checks the chain and host name).
pub fn client_config(ca_cert: &Path) -> Result<rustls::ClientConfig, String> {
    let pem = std::fs::read(ca_cert).map_err(|e| format!("read {}: {e}", ca_cert.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("parse {}: {e}", ca_cert.display()))?;
        roots.add(cert).map_err(|e| format!("add CA: {e}"))?;
    }
    Ok(client_config_with_roots(roots))
}

/// A rustls client configuration trusting exactly `roots` (empty: trusts nothing).
pub fn client_config_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
