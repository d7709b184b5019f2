//! Certificates made on the spot for the TLS tests (rcgen, ring): a CA of
//! their own and a certificate for `localhost` / `127.0.0.1` that it signed,
//! the CA written as a PEM file in a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA and a server certificate it signed, with the server's key.
pub struct TestCa {
    /// The server's chain: its certificate, then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's key (PKCS#8 DER).
    pub key: Vec<u8>,
    /// The CA's certificate as a PEM file (the CA file of a client).
    pub cert_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// A CA with common name `cn`, and a certificate naming `localhost` and
    /// `127.0.0.1` signed by it.
    pub fn new(cn: &str) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, cn);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf
            .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_file = dir.path().join("ca.pem");
        std::fs::write(&cert_file, ca_cert.pem()).unwrap();
        TestCa {
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key: leaf_key.serialize_der(),
            cert_file,
            _dir: dir,
        }
    }
}

/// A TLS-terminating proxy on a free loopback port in front of a plain HTTP
/// server: each connection's request goes to `backend`, its answer back over
/// TLS until the backend closes. Runs until the process ends.
pub fn https_proxy(ca: &TestCa, backend: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(ca.chain.clone(), key)
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                // The handshake runs on the first read.
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // The request head (GET: no body).
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => return,
                    }
                }
                let Ok(mut up) = std::net::TcpStream::connect(backend) else {
                    return;
                };
                if up.write_all(&head).is_err() {
                    return;
                }
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match up.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).is_err() || tls.flush().is_err() {
                                break;
                            }
                        }
                    }
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}
