//! Certificates for TLS tests, made with the `openssl` command: a CA, a server certificate for
//! 127.0.0.1 and a client certificate signed by it, and a client certificate from another CA.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Files written under one temporary directory.
pub struct Certs {
    pub dir: tempfile::TempDir,
    /// The CA that signs the server and the trusted client.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from a CA the server does not trust.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is installed (scripts/deps/apt.txt)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

fn ca(dir: &Path, name: &str) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "1"];
    args.extend(EC);
    args.extend(["-subj", "/CN=nodetel test CA", "-keyout", &key, "-out", &cert]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&args, dir);
}

/// A leaf certificate `name` signed by CA `ca`, with `extensions` (an openssl extension file).
fn leaf(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) {
    let (cert, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(EC);
    args.extend(["-subj", subject, "-keyout", &key, "-out", &csr]);
    openssl(&args, dir);
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ],
        dir,
    );
}

/// Makes a fresh set.
pub fn make() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    ca(d, "other-ca");
    leaf(
        d,
        "ca",
        "server",
        "/CN=127.0.0.1",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    leaf(d, "ca", "client", "/CN=trainer", client_ext);
    leaf(d, "other-ca", "stranger", "/CN=stranger", client_ext);
    Certs {
        ca: d.join("ca.pem"),
        server_cert: d.join("server.pem"),
        server_key: d.join("server-key.pem"),
        client_cert: d.join("client.pem"),
        client_key: d.join("client-key.pem"),
        stranger_cert: d.join("stranger.pem"),
        stranger_key: d.join("stranger-key.pem"),
        dir,
    }
}

impl Certs {
    /// The `tls:` YAML flow map for a server, with client certificates required when `mtls`.
    pub fn server_yaml(&self, mtls: bool) -> String {
        let mut y = format!(
            "{{cert_file: '{}', key_file: '{}'",
            self.server_cert.display(),
            self.server_key.display()
        );
        if mtls {
            y.push_str(&format!(", client_ca_file: '{}'", self.ca.display()));
        }
        y.push('}');
        y
    }

    pub fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    /// Certificate and key in one PEM, as reqwest's `Identity::from_pem` wants.
    pub fn identity_pem(cert: &Path, key: &Path) -> Vec<u8> {
        let mut pem = Self::read(cert);
        pem.extend(Self::read(key));
        pem
    }
}
