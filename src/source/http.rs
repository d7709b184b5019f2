//! The HTTP client of the readers and the lexicon fetch: one ureq agent with
//! the timeouts of [`SourceConfig`] and TLS for `https://` servers.
//!
//! TLS is rustls with the `ring` provider, the same stack as the database
//! connections. The server's certificate is always checked (chain, validity
//! dates, host name), against the certificates of [`SourceConfig::ca_file`]
//! alone when it is given (a self-signed or private CA), else against the
//! platform's store (`rustls-native-certs`: the system's bundle, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set). The server's certificate must be
//! signed by such a CA: a certificate marked as a CA is not accepted as the
//! server's own.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use ureq::{ReadWrite, TlsConnector};

use super::{SourceConfig, SourceError};

/// An agent for the tweet server: `cfg`'s timeouts, TLS with its CA.
pub(crate) fn agent(cfg: &SourceConfig) -> Result<ureq::Agent, SourceError> {
    let bad = |e: &dyn std::fmt::Display| SourceError::Tls {
        ca_file: cfg.ca_file.clone().unwrap_or_default(),
        message: e.to_string(),
    };
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| bad(&e))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&e))?;
            roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(bad(&"no usable PEM certificate in it"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::warn!("source: a certificate of the system's store is left out: {e}");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(ureq::AgentBuilder::new()
        .timeout_connect(cfg.connect_timeout)
        .timeout_read(cfg.read_timeout)
        .tls_connector(Arc::new(Tls(Arc::new(tls))))
        .build())
}

/// ureq's rustls connector, with a refused certificate named in the words libpq
/// and OpenSSL use ("certificate verify failed: …").
struct Tls(Arc<rustls::ClientConfig>);

impl TlsConnector for Tls {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ReadWrite>,
    ) -> Result<Box<dyn ReadWrite>, ureq::Error> {
        self.0.connect(dns_name, io).map_err(|e| {
            let refused = std::error::Error::source(&e)
                .and_then(|x| x.downcast_ref::<std::io::Error>())
                .and_then(|io| io.get_ref())
                .and_then(|x| x.downcast_ref::<rustls::Error>());
            match refused {
                Some(rustls::Error::InvalidCertificate(c)) => std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("TLS handshake: certificate verify failed: {c}"),
                )
                .into(),
                _ => e,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let cfg = SourceConfig {
            ca_file: Some("/nonexistent/server-ca.pem".into()),
            ..SourceConfig::default()
        };
        let e = agent(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("/nonexistent/server-ca.pem"), "{e}");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let cfg = SourceConfig {
            ca_file: Some(path.clone()),
            ..SourceConfig::default()
        };
        let e = agent(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("no usable PEM certificate"),
            "{e}"
        );
    }
}
