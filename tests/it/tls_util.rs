//! Certificates made on the spot for the TLS tests: a self-signed certificate
//! for `localhost` / `127.0.0.1`, written as PEM files in a temporary directory.

use std::path::PathBuf;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

/// A self-signed certificate (its own CA) and its key.
pub struct SelfSigned {
    pub cert: X509,
    pub key: PKey<Private>,
    /// The certificate as a PEM file (usable as a CA file).
    pub cert_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SelfSigned {
    /// A certificate naming `localhost` and `127.0.0.1`, with common name `cn`.
    pub fn new(cn: &str) -> SelfSigned {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let dir = tempfile::tempdir().unwrap();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
        SelfSigned {
            cert,
            key,
            cert_file,
            _dir: dir,
        }
    }
}

/// A TLS-terminating proxy on a free loopback port in front of a plain HTTP
/// server: each connection's request goes to `backend`, its answer back over
/// TLS until the backend closes. Runs until the process ends.
pub fn https_proxy(cert: &SelfSigned, backend: std::net::SocketAddr) -> std::net::SocketAddr {
    use openssl::ssl::{SslAcceptor, SslMethod};
    use std::io::{Read, Write};
    let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acc.set_private_key(&cert.key).unwrap();
    acc.set_certificate(&cert.cert).unwrap();
    let acc = std::sync::Arc::new(acc.build());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let acc = std::sync::Arc::clone(&acc);
            std::thread::spawn(move || {
                let Ok(mut tls) = acc.accept(tcp) else { return };
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
                let _ = tls.shutdown();
            });
        }
    });
    addr
}
