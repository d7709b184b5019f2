//! The HTTP client of the readers and the lexicon fetch: one ureq agent with
//! the timeouts of [`SourceConfig`] and TLS for `https://` servers.
//!
//! TLS is native-tls, which is OpenSSL on Linux: the same stack as the
//! database connections, so one library to patch. The server's certificate is
//! always checked, against [`SourceConfig::ca_file`] alone when it is given
//! (a self-signed or private CA), else against the system's roots.

use std::sync::Arc;

use super::{SourceConfig, SourceError};

/// An agent for the tweet server: `cfg`'s timeouts, TLS with its CA.
pub(crate) fn agent(cfg: &SourceConfig) -> Result<ureq::Agent, SourceError> {
    let mut tls = native_tls::TlsConnector::builder();
    if let Some(path) = &cfg.ca_file {
        let bad = |e: &dyn std::fmt::Display| SourceError::Tls {
            ca_file: path.clone(),
            message: e.to_string(),
        };
        let pem = std::fs::read(path).map_err(|e| bad(&e))?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| bad(&e))?;
        tls.add_root_certificate(cert).disable_built_in_roots(true);
    }
    let tls = tls.build().map_err(|e| SourceError::Tls {
        ca_file: cfg.ca_file.clone().unwrap_or_default(),
        message: e.to_string(),
    })?;
    Ok(ureq::AgentBuilder::new()
        .timeout_connect(cfg.connect_timeout)
        .timeout_read(cfg.read_timeout)
        .tls_connector(Arc::new(tls))
        .build())
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
}
