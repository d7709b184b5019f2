//! The TLS of the database connections: one rustls client configuration per
//! `sslmode`, with the `ring` provider, in pure Rust.
//!
//! * `prefer` and `require` encrypt without checking the server's certificate,
//!   as libpq does: [`Check::Nothing`] accepts any certificate chain but still
//!   checks the handshake signature, so the session key is bound to the
//!   certificate's key (what stops a passive listener; an active one with a
//!   certificate of its own is what the `verify-*` modes stop).
//! * `verify-ca` checks that the certificate chains up to a trusted CA and is
//!   within its validity dates; `verify-full` also that it names the host of the
//!   URL (a DNS name or an IP address in its subject alternative names).
//!
//! The trusted CAs are the CA file's certificates alone (`--db-ca-file`, else the
//! URL's `sslrootcert`), as in libpq; without one, the platform's store
//! (`rustls-native-certs`: the system's bundle, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` when set). A server certificate that is itself one of the CA
//! file's certificates (a self-signed server certificate given as its own CA,
//! which OpenSSL accepts even when it is marked as a CA) is trusted as it is; its
//! validity dates are not checked then.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::sink::url::SslMode;

/// The client configuration of `mode` (not `disable`), trusting `ca` or the
/// platform's roots.
pub(crate) fn client_config(mode: SslMode, ca: Option<&Path>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let check = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let (roots, pinned) = match ca {
                Some(ca) => {
                    let certs = read_ca_file(ca)?;
                    let mut roots = RootCertStore::empty();
                    let (_, bad) = roots.add_parsable_certificates(certs.iter().cloned());
                    if roots.is_empty() {
                        return Err(format!(
                            "cannot read the CA file {}: none of its {bad} certificate(s) is usable",
                            ca.display()
                        ));
                    }
                    (roots, certs)
                }
                None => (platform_roots(), Vec::new()),
            };
            Check::Ca {
                roots,
                pinned,
                name: mode == SslMode::VerifyFull,
            }
        }
        SslMode::Prefer | SslMode::Require | SslMode::Disable => Check::Nothing,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { check, provider }))
        .with_no_client_auth())
}

/// The certificates of a PEM file; an error names the file.
fn read_ca_file(ca: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("cannot read the CA file {}: {e}", ca.display());
    let pem = std::fs::read(ca).map_err(|e| bad(&e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// The platform's trusted roots; what cannot be read is logged and left out.
fn platform_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::warn!("sink: a certificate of the system's store is left out: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (_, bad) = roots.add_parsable_certificates(found.certs);
    if bad > 0 {
        log::debug!("sink: {bad} certificate(s) of the system's store are not usable roots");
    }
    if roots.is_empty() {
        log::warn!("sink: the system's store holds no CA certificate: give --db-ca-file");
    }
    roots
}

/// What [`Verifier`] checks of the server's certificate.
#[derive(Debug)]
enum Check {
    /// Nothing (`prefer`, `require`).
    Nothing,
    /// The chain up to one of `roots` (or the certificate is one of `pinned`),
    /// and with `name` the host name (`verify-ca`, `verify-full`).
    Ca {
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        name: bool,
    },
}

/// The server's certificate as [`Check`] says, and always a valid handshake
/// signature by its key.
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Check::Ca {
            roots,
            pinned,
            name,
        } = &self.check
        {
            let cert = ParsedCertificate::try_from(end_entity)?;
            if !pinned.iter().any(|p| p == end_entity) {
                verify_server_cert_signed_by_trust_anchor(
                    &cert,
                    roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )?;
            }
            if *name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// "certificate verify failed: …" when `e` is rustls' refusal of the server's
/// certificate (the words libpq and OpenSSL use), else `None`.
pub(crate) fn certificate_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let io = e.downcast_ref::<std::io::Error>()?;
    match io.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(c) => Some(format!("certificate verify failed: {c}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A CA file on disk, and a server chain (with its key) for `localhost`.
    struct Pki {
        ca_file: tempfile::NamedTempFile,
        chain: Vec<CertificateDer<'static>>,
        key: Vec<u8>,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        p
    }

    fn pki(cn: &str) -> Pki {
        let ca = ca_params(cn);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca_cert.pem()).unwrap();
        Pki {
            ca_file,
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }

    /// A handshake in memory between a client of `mode` trusting `ca` (naming
    /// the server `host`) and a rustls server presenting `chain`.
    fn handshake(
        mode: SslMode,
        ca: Option<&Path>,
        host: &str,
        chain: &[CertificateDer<'static>],
        key: &[u8],
    ) -> Result<(), rustls::Error> {
        let client = client_config(mode, ca).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain.to_vec(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )
        .unwrap();
        let name = ServerName::try_from(host.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            // The server's alert (if any) is what the client reads next.
            let _ = s.process_new_packets();
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not end");
    }

    fn refused(r: Result<(), rustls::Error>) -> String {
        match r {
            Err(rustls::Error::InvalidCertificate(c)) => c.to_string(),
            other => panic!("not a refused certificate: {other:?}"),
        }
    }

    #[test]
    fn each_sslmode_checks_what_libpq_checks() {
        let server = pki("the server's CA");
        let other = pki("another CA");
        let (chain, key) = (&server.chain[..], &server.key[..]);
        let right = Some(server.ca_file.path());
        let wrong = Some(other.ca_file.path());
        // require and prefer: any certificate.
        for mode in [SslMode::Require, SslMode::Prefer] {
            handshake(mode, wrong, "elsewhere.example", chain, key).unwrap();
        }
        // verify-ca: the CA, not the name.
        handshake(SslMode::VerifyCa, right, "elsewhere.example", chain, key).unwrap();
        let e = refused(handshake(SslMode::VerifyCa, wrong, "localhost", chain, key));
        assert!(e.contains("UnknownIssuer"), "{e}");
        // verify-full: the CA and the name.
        handshake(SslMode::VerifyFull, right, "localhost", chain, key).unwrap();
        let e = refused(handshake(
            SslMode::VerifyFull,
            right,
            "elsewhere.example",
            chain,
            key,
        ));
        assert!(e.contains("not valid for name"), "{e}");
        let e = refused(handshake(
            SslMode::VerifyFull,
            wrong,
            "localhost",
            chain,
            key,
        ));
        assert!(e.contains("UnknownIssuer"), "{e}");
    }

    #[test]
    fn a_self_signed_server_certificate_given_as_the_ca_file_is_trusted() {
        // As `openssl req -x509` makes it: marked as a CA, and the server's own.
        let mut p = ca_params("db.example");
        p.subject_alt_names = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .subject_alt_names;
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), cert.pem()).unwrap();
        let chain = [cert.der().clone()];
        let key = key.serialize_der();
        let ca = Some(file.path());
        handshake(SslMode::VerifyCa, ca, "elsewhere.example", &chain, &key).unwrap();
        handshake(SslMode::VerifyFull, ca, "localhost", &chain, &key).unwrap();
        let e = refused(handshake(
            SslMode::VerifyFull,
            ca,
            "elsewhere.example",
            &chain,
            &key,
        ));
        assert!(e.contains("not valid for name"), "{e}");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_by_name() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "no certificate here\n").unwrap();
        let e = client_config(SslMode::VerifyCa, Some(file.path())).unwrap_err();
        assert!(
            e.contains(&file.path().display().to_string()) && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
