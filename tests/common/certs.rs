//! Keys and certificates made with the `openssl` command-line tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::run_checked;
use super::random_hex;

/// Validity of every generated certificate, in days.
const VALIDITY_DAYS: &str = "2";

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM), which clients must trust.
    pub ca_cert: PathBuf,
    /// The server certificate followed by the CA certificate (PEM).
    pub server_chain: PathBuf,
    /// The server's private key (PEM).
    pub server_key: PathBuf,
    /// A directory containing only `ca.crt`, in the layout that skopeo's `--cert-dir` reads.
    pub cert_dir: PathBuf,
}

/// Generates a P-256 CA and a server certificate with subjectAltName
/// `IP:127.0.0.1,DNS:localhost` in `dir`.
pub fn generate_tls_files(dir: &Path) -> TlsFiles {
    let ca_key = dir.join("ca.key");
    let ca_cert = dir.join("ca.pem");
    run_checked(
        openssl(dir)
            .args(["req", "-x509", "-nodes", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert)
            .args([
                "-days",
                VALIDITY_DAYS,
                "-subj",
                "/CN=image-compliance-scanner test CA",
            ])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    );

    let server_key = dir.join("server.key");
    let server_csr = dir.join("server.csr");
    run_checked(
        openssl(dir)
            .args(["req", "-new", "-nodes", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .arg("-keyout")
            .arg(&server_key)
            .arg("-out")
            .arg(&server_csr)
            .args(["-subj", "/CN=localhost"]),
    );

    let extensions = dir.join("server.ext");
    fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("failed to write the server certificate extensions");
    let server_cert = dir.join("server.pem");
    run_checked(
        openssl(dir)
            .args(["x509", "-req", "-in"])
            .arg(&server_csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-set_serial", &format!("0x{}", random_hex(8))])
            .args(["-days", VALIDITY_DAYS, "-extfile"])
            .arg(&extensions)
            .arg("-out")
            .arg(&server_cert),
    );

    let server_chain = dir.join("server-chain.pem");
    let chain = [read(&server_cert), read(&ca_cert)].concat();
    fs::write(&server_chain, chain).expect("failed to write the server certificate chain");

    let cert_dir = dir.join("cert-dir");
    fs::create_dir_all(&cert_dir).expect("failed to create the certificate directory");
    fs::copy(&ca_cert, cert_dir.join("ca.crt")).expect("failed to copy the CA certificate");

    TlsFiles {
        ca_cert,
        server_chain,
        server_key,
        cert_dir,
    }
}

/// Generates an RSA 2048 key and a self-signed certificate for signing RS256 tokens, and
/// returns `(key, certificate)` paths.
pub fn generate_signing_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("token-signing.key");
    let cert = dir.join("token-signing.pem");
    run_checked(
        openssl(dir)
            .args(["req", "-x509", "-nodes", "-newkey", "rsa:2048", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-days",
                VALIDITY_DAYS,
                "-subj",
                "/CN=image-compliance-scanner test token signer",
            ]),
    );
    (key, cert)
}

fn openssl(dir: &Path) -> Command {
    let mut command = Command::new("openssl");
    command.current_dir(dir);
    command
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}
