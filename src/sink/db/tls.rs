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
//! which OpenSSL accepts even when it is marked as a CA) is trusted without a
//! chain, but like any other only within its validity dates: an expired or not
//! yet valid one is refused as OpenSSL refuses it. Its dates are read from the
//! DER by a reader of just the fields up to them, which checks every length
//! against the bytes left.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::civil::{days_from_civil, days_in_month};
use crate::sink::url::SslMode;

/// The client configuration of `mode` (not `disable`), trusting `ca` or the
/// platform's roots.
pub(crate) fn client_config(mode: SslMode, ca: Option<&Path>) -> Result<ClientConfig, String> {
    let verifier = verifier(mode, ca)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The check of the server's certificate of `mode`, trusting `ca` or the
/// platform's roots.
fn verifier(mode: SslMode, ca: Option<&Path>) -> Result<Verifier, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
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
    Ok(Verifier { check, provider })
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
            if pinned.iter().any(|p| p == end_entity) {
                check_dates(end_entity, now)?;
            } else {
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

/// Whether `now` is within the validity dates of the DER certificate `cert`,
/// refused with the error rustls' own check of a chain gives.
fn check_dates(cert: &[u8], now: UnixTime) -> Result<(), CertificateError> {
    let v = validity(cert).ok_or(CertificateError::BadEncoding)?;
    let time = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    // A date before the epoch, which `UnixTime` cannot hold, is only ever a
    // notAfter in the past: the error without the dates then.
    let at = |secs: i64| u64::try_from(secs).ok().map(Duration::from_secs);
    if time < v.not_before {
        return Err(match at(v.not_before) {
            Some(d) => CertificateError::NotValidYetContext {
                time: now,
                not_before: UnixTime::since_unix_epoch(d),
            },
            None => CertificateError::NotValidYet,
        });
    }
    if time > v.not_after {
        return Err(match at(v.not_after) {
            Some(d) => CertificateError::ExpiredContext {
                time: now,
                not_after: UnixTime::since_unix_epoch(d),
            },
            None => CertificateError::Expired,
        });
    }
    Ok(())
}

/// The validity dates of a certificate, in seconds since the Unix epoch
/// (negative before it); both inclusive, as RFC 5280 has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validity {
    not_before: i64,
    not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT`: the version of a v2 or v3 certificate.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity of the DER certificate `cert` (RFC 5280 4.1: the fields of
/// `tbsCertificate` up to `validity` and its two times), or `None` when it is
/// not there as DER has it. Never panics: every length is checked against the
/// bytes left.
fn validity(cert: &[u8]) -> Option<Validity> {
    let cert = Der(cert).expect(SEQUENCE)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
    if tbs.0.first() == Some(&VERSION) {
        tbs.take()?;
    }
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature
    tbs.expect(SEQUENCE)?; // issuer
    let mut dates = Der(tbs.expect(SEQUENCE)?);
    let not_before = time(dates.take()?)?;
    let not_after = time(dates.take()?)?;
    dates.0.is_empty().then_some(Validity {
        not_before,
        not_after,
    })
}

/// What is left of a DER input, read one element at a time from the front.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element (its tag and its contents), or `None` when its header
    /// is not DER's or its contents run past the end.
    fn take(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            // A tag number of several bytes: none in the fields read here.
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => {
                let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
                let len = bytes.iter().try_fold(0usize, |n, &b| {
                    n.checked_mul(256)?.checked_add(usize::from(b))
                })?;
                (len, rest)
            }
            // 0x80 is BER's indefinite length; more than 4 bytes of length
            // cannot fit.
            _ => return None,
        };
        let (contents, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some((tag, contents))
    }

    /// The contents of the next element, when it has tag `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.take()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }
}

/// A `Time` of a certificate in seconds since the Unix epoch: a UTCTime
/// `YYMMDDHHMMSSZ` (years 1950 to 2049) or a GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows (no fraction, no offset).
fn time((tag, v): (u8, &[u8])) -> Option<i64> {
    let (year, v) = match tag {
        UTC_TIME => {
            let (yy, v) = digits(v, 2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, v)
        }
        GENERALIZED_TIME => digits(v, 4)?,
        _ => return None,
    };
    let (month, v) = digits(v, 2)?;
    let (day, v) = digits(v, 2)?;
    let (hour, v) = digits(v, 2)?;
    let (minute, v) = digits(v, 2)?;
    let (second, v) = digits(v, 2)?;
    let valid = v == b"Z"
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// The number of `n` (at most 4) decimal digits at the front of `v`, and the rest.
fn digits(v: &[u8], n: usize) -> Option<(i64, &[u8])> {
    let (d, rest) = v.split_at_checked(n)?;
    let value = d.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })?;
    Some((value, rest))
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
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
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

    /// A self-signed certificate for `localhost` as `openssl req -x509` makes
    /// it (marked as a CA), with what `dates` sets of its validity, in a CA
    /// file of its own; and its key.
    struct SelfSigned {
        file: tempfile::NamedTempFile,
        der: CertificateDer<'static>,
        key: Vec<u8>,
    }

    fn self_signed(dates: impl FnOnce(&mut CertificateParams)) -> SelfSigned {
        let mut p = ca_params("db.example");
        p.subject_alt_names = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .subject_alt_names;
        dates(&mut p);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), cert.pem()).unwrap();
        SelfSigned {
            file,
            der: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    #[test]
    fn a_self_signed_server_certificate_given_as_the_ca_file_is_trusted() {
        let own = self_signed(|_| {});
        let chain = [own.der.clone()];
        let key = own.key.clone();
        let ca = Some(own.file.path());
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

    /// `secs` after the epoch.
    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    /// What the `verify-*` check of `mode` trusting `own`'s CA file says of
    /// `own`'s certificate presented for `localhost` at `now`.
    fn verify_pinned(
        mode: SslMode,
        own: &SelfSigned,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let v = verifier(mode, Some(own.file.path())).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        v.verify_server_cert(&own.der, &[], &name, &[], now)
    }

    #[test]
    fn a_pinned_certificate_is_refused_outside_its_validity_dates() {
        let past = self_signed(|p| {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        });
        let future = self_signed(|p| {
            p.not_before = date_time_ymd(4000, 1, 1);
            p.not_after = date_time_ymd(4001, 1, 1);
        });
        // From an hour ago to an hour from now.
        let current = self_signed(|p| {
            let now = date_time_ymd(1970, 1, 1) + Duration::from_secs(UnixTime::now().as_secs());
            p.not_before = now - Duration::from_secs(3_600);
            p.not_after = now + Duration::from_secs(3_600);
        });
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let now = UnixTime::now();
            // 2001-01-01 and 4000-01-01 (date -u -d ... +%s).
            assert_eq!(
                verify_pinned(mode, &past, now).unwrap_err(),
                CertificateError::ExpiredContext {
                    time: now,
                    not_after: at(978_307_200),
                }
                .into()
            );
            assert_eq!(
                verify_pinned(mode, &future, now).unwrap_err(),
                CertificateError::NotValidYetContext {
                    time: now,
                    not_before: at(64_060_588_800),
                }
                .into()
            );
            verify_pinned(mode, &current, now).unwrap();
        }
        // Through a handshake, the refusal names the cause.
        for (own, cause) in [(&past, "certificate expired"), (&future, "not valid yet")] {
            let e = refused(handshake(
                SslMode::VerifyFull,
                Some(own.file.path()),
                "localhost",
                std::slice::from_ref(&own.der),
                &own.key,
            ));
            assert!(e.contains(cause), "{e}");
        }
    }

    #[test]
    fn a_pinned_certificate_is_valid_from_its_first_to_its_last_second() {
        // 2001-02-03T04:05:06Z (a UTCTime) to 2060-07-08T09:10:11Z (a
        // GeneralizedTime): 981173106 and 2856503411 (date -u -d ... +%s).
        let own = self_signed(|p| {
            p.not_before = date_time_ymd(2001, 2, 3) + Duration::from_secs(4 * 3_600 + 5 * 60 + 6);
            p.not_after = date_time_ymd(2060, 7, 8) + Duration::from_secs(9 * 3_600 + 10 * 60 + 11);
        });
        let mode = SslMode::VerifyFull;
        assert_eq!(
            verify_pinned(mode, &own, at(981_173_105)).unwrap_err(),
            CertificateError::NotValidYetContext {
                time: at(981_173_105),
                not_before: at(981_173_106),
            }
            .into()
        );
        verify_pinned(mode, &own, at(981_173_106)).unwrap();
        verify_pinned(mode, &own, at(2_856_503_411)).unwrap();
        assert_eq!(
            verify_pinned(mode, &own, at(2_856_503_412)).unwrap_err(),
            CertificateError::ExpiredContext {
                time: at(2_856_503_412),
                not_after: at(2_856_503_411),
            }
            .into()
        );
    }

    /// A DER element: `tag`, the length in DER's shortest form, `contents`.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(contents);
        out
    }

    /// The DER of a certificate's outline up to its validity: `version` when
    /// given, a serial number, an empty algorithm, an issuer of `issuer_len`
    /// bytes and a validity of the elements `times`; then a key and a signature
    /// that are just bytes.
    fn outline(version: bool, issuer_len: usize, times: &[Vec<u8>]) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[0x01, 0x23]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &vec![0x31; issuer_len]));
        tbs.extend(tlv(0x30, &times.concat()));
        tbs.extend(tlv(0x30, &[0x05, 0x00]));
        let mut cert = tlv(0x30, &tbs);
        cert.extend(tlv(0x30, &[]));
        cert.extend(tlv(0x03, &[0x00]));
        tlv(0x30, &cert)
    }

    fn utc(s: &str) -> Vec<u8> {
        tlv(0x17, s.as_bytes())
    }

    fn generalized(s: &str) -> Vec<u8> {
        tlv(0x18, s.as_bytes())
    }

    /// The notBefore read from an outline with `t` as both of its times.
    fn read_time(t: Vec<u8>) -> Option<i64> {
        validity(&outline(true, 10, &[t.clone(), t])).map(|v| v.not_before)
    }

    #[test]
    fn the_validity_reader_reads_both_time_forms_as_rfc_5280_has_them() {
        // The expected values are those of `date -u -d ... +%s`.
        let cases = [
            (utc("500101000000Z"), -631_152_000), // UTCTime's first year, 1950
            (utc("491231235959Z"), 2_524_607_999), // and its last, 2049
            (utc("010203040506Z"), 981_173_106),
            (generalized("20000229120000Z"), 951_825_600), // a leap day
            (generalized("19691231235959Z"), -1),
            (generalized("99991231235959Z"), 253_402_300_799),
            (generalized("00000101000000Z"), -62_167_219_200),
            (generalized("20600708091011Z"), 2_856_503_411),
        ];
        for (t, secs) in cases {
            assert_eq!(read_time(t.clone()), Some(secs), "{t:?}");
        }
        // Without the version (a v1 certificate), with an issuer long enough
        // for lengths of 1 and 2 bytes, and both dates told apart.
        for (version, issuer_len) in [(false, 10), (true, 200), (true, 300), (false, 70_000)] {
            let der = outline(
                version,
                issuer_len,
                &[utc("010203040506Z"), generalized("20600708091011Z")],
            );
            assert_eq!(
                validity(&der),
                Some(Validity {
                    not_before: 981_173_106,
                    not_after: 2_856_503_411,
                }),
                "version {version}, issuer of {issuer_len} bytes"
            );
        }
    }

    #[test]
    fn the_validity_reader_refuses_what_is_not_a_time_of_rfc_5280() {
        for t in [
            generalized("21000229000000Z"), // 2100 is not a leap year
            generalized("19000229000000Z"), // nor 1900
            utc("010229000000Z"),           // nor 2001
            generalized("20001301000000Z"), // month 13
            generalized("20000100000000Z"), // day 0
            generalized("20000431000000Z"), // April 31st
            generalized("20000101240000Z"), // hour 24
            generalized("20000101006000Z"), // minute 60
            generalized("20000101000060Z"), // a leap second
            generalized("20000101000000"),  // no zone
            generalized("20000101000000+0000"),
            generalized("20000101000000.5Z"), // a fraction
            generalized("2000010100000Z"),    // a digit short
            generalized("2000-10100000Z"),
            utc("20000101000000Z"), // a GeneralizedTime's text as a UTCTime
            generalized("000101000000Z"), // and the other way round
            tlv(0x04, b"20000101000000Z"), // not a time
        ] {
            assert_eq!(read_time(t.clone()), None, "{t:?}");
        }
        let good = || generalized("20000101000000Z");
        // One time, three times, a foreign element first.
        assert_eq!(validity(&outline(true, 10, &[good()])), None);
        assert_eq!(
            validity(&outline(true, 10, &[good(), good(), good()])),
            None
        );
        let mut der = outline(true, 10, &[good(), good()]);
        assert!(validity(&der).is_some());
        der[0] = 0x31;
        assert_eq!(validity(&der), None);
        // BER's indefinite length.
        let mut der = outline(false, 10, &[good(), good()]);
        der[1] = 0x80;
        assert_eq!(validity(&der), None);
    }

    #[test]
    fn the_validity_reader_never_panics_and_only_reads_a_whole_certificate() {
        let own = self_signed(|_| {});
        let der: &[u8] = own.der.as_ref();
        assert!(validity(der).is_some());
        // Every truncation: the certificate's own length runs past the end.
        for n in 0..der.len() {
            assert_eq!(validity(&der[..n]), None, "{n} bytes");
        }
        // Whatever comes out of a damaged or random input is a date of years
        // 0 to 9999.
        let in_range = |v: Option<Validity>| {
            v.is_none_or(|v| {
                [v.not_before, v.not_after]
                    .iter()
                    .all(|t| (-62_167_219_200..=253_402_300_799).contains(t))
            })
        };
        for i in 0..der.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff, der[i] ^ 1] {
                let mut damaged = der.to_vec();
                damaged[i] = b;
                assert!(in_range(validity(&damaged)), "byte {i} as {b:#x}");
            }
        }
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            // Half of them after the start of a certificate, to get further in.
            let keep = if rng.gen() {
                rng.gen_range(0..=40.min(der.len()))
            } else {
                0
            };
            let mut bytes = der[..keep].to_vec();
            let mut random = vec![0u8; rng.gen_range(0..300)];
            rng.fill(&mut random[..]);
            bytes.extend(random);
            assert!(in_range(validity(&bytes)), "{bytes:?}");
        }
    }
}
