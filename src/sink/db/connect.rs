//! How the sink reaches PostgreSQL: one place that turns the database URL and
//! the CA file into connections, TLS included, for every connection the sink
//! opens (the writer, the health probe, the schema setup) and for
//! `tweetflow check`.
//!
//! `sslmode` means what it means to libpq:
//!
//! | sslmode       | TLS                              | the server's certificate            |
//! |---------------|----------------------------------|-------------------------------------|
//! | `disable`     | never                            | —                                   |
//! | `prefer` (default) | if the server offers it     | not checked                         |
//! | `require`     | always                           | not checked                         |
//! | `verify-ca`   | always                           | signed by the CA                    |
//! | `verify-full` | always                           | signed by the CA and names the host |
//!
//! The CA is `--db-ca-file` ([`SinkConfig::db_ca_file`]), else the URL's
//! `sslrootcert`, else the system's roots. The `postgres` crate knows only the
//! first three modes, so the two `verify-*` modes are read here and handed to it
//! as `require`, with the certificate checks configured on the OpenSSL
//! connector. Connection strings are printed only through [`redact_url`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres::Client;
use postgres_openssl::MakeTlsConnector;

use crate::sink::config::SinkConfig;
use crate::sink::failure::SinkError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (the default).
    Prefer,
    /// TLS always, without checking the certificate.
    Require,
    /// TLS always; the certificate must be signed by the CA.
    VerifyCa,
    /// TLS always; the certificate must be signed by the CA and name the host.
    VerifyFull,
}

impl SslMode {
    /// The name as written in a URL.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` tries plain first; without TLS support for it, refuse
            // rather than silently picking another mode.
            other => {
                return Err(format!(
                    "sslmode {other:?} is not supported (disable, prefer, require, verify-ca, \
                     verify-full)"
                ))
            }
        })
    }
}

/// A database URL split into what the `postgres` crate parses and the TLS
/// settings read here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TlsUrl {
    /// The URL for `postgres::Config`: `sslmode=verify-*` became `require`,
    /// `sslrootcert` was removed.
    pub(crate) url: String,
    /// The mode asked for (`prefer` when the URL names none).
    pub(crate) mode: SslMode,
    /// The URL's `sslrootcert`.
    pub(crate) root_cert: Option<PathBuf>,
}

/// Reads `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…`) or
/// a key=value string (`host=h sslmode=…`).
pub(crate) fn split_tls(url: &str) -> Result<TlsUrl, String> {
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut keep = |key: &str, value: &str| -> Result<Option<String>, String> {
        match key {
            "sslmode" => {
                mode = value.parse()?;
                Ok(Some(
                    match mode {
                        SslMode::VerifyCa | SslMode::VerifyFull => "require",
                        m => m.name(),
                    }
                    .to_string(),
                ))
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(value));
                Ok(None)
            }
            _ => Ok(Some(value.to_string())),
        }
    };
    let out = if url.contains("://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut params = Vec::new();
                for p in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    if let Some(v) = keep(k, v)? {
                        params.push(format!("{k}={v}"));
                    }
                }
                if params.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", params.join("&"))
                }
            }
        }
    } else {
        let mut parts = Vec::new();
        for kv in url.split_whitespace() {
            match kv.split_once('=') {
                Some((k, v)) => {
                    if let Some(v) = keep(k, v.trim_matches('\''))? {
                        parts.push(format!("{k}={v}"));
                    }
                }
                None => parts.push(kv.to_string()),
            }
        }
        parts.join(" ")
    };
    Ok(TlsUrl {
        url: out,
        mode,
        root_cert,
    })
}

/// What opens the sink's connections: the `postgres` settings plus the TLS
/// connector `sslmode` asks for.
#[derive(Clone)]
pub(crate) struct Db {
    /// Connection settings (host, user, timeouts, …).
    pub(crate) config: postgres::Config,
    mode: SslMode,
    ca: Option<PathBuf>,
    tls: Option<MakeTlsConnector>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("config", &self.config)
            .field("mode", &self.mode)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Parses [`SinkConfig::database_url`] and builds the TLS connector.
    pub(crate) fn new(cfg: &SinkConfig) -> Result<Db, SinkError> {
        let split = split_tls(&cfg.database_url).map_err(SinkError::Tls)?;
        let config = postgres::Config::from_str(&split.url).map_err(SinkError::Config)?;
        let ca = cfg.db_ca_file.clone().or(split.root_cert);
        let tls = match split.mode {
            SslMode::Disable => None,
            mode => Some(connector(mode, ca.as_deref()).map_err(SinkError::Tls)?),
        };
        Ok(Db {
            config,
            mode: split.mode,
            ca,
            tls,
        })
    }

    /// Opens one connection.
    pub(crate) fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            None => self.config.connect(postgres::NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        }
    }

    /// Describes a connection error; names the `sslmode` and the CA when TLS failed.
    pub(crate) fn describe(&self, e: &postgres::Error) -> String {
        let msg = super::error::db_message(e);
        if !msg.contains("TLS") && !msg.contains("SSL") && !msg.contains("certificate") {
            return msg;
        }
        // OpenSSL's causes repeat each other: keep each distinct one once.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            let part = x.to_string();
            if !msg.contains(&part) {
                msg.push_str(": ");
                msg.push_str(&part);
            }
            src = x.source();
        }
        let ca = match &self.ca {
            Some(p) => format!("CA file {}", p.display()),
            None => "the system's CA roots".to_string(),
        };
        let hint = match self.mode {
            SslMode::VerifyFull => {
                "; the server's certificate must be signed by that CA and name the host"
            }
            SslMode::VerifyCa => "; the server's certificate must be signed by that CA",
            _ => "",
        };
        format!(
            "TLS with sslmode={} ({ca}) failed: {msg}{hint}",
            self.mode.name()
        )
    }
}

/// Builds the connection settings (TLS included) from the URL.
pub(crate) fn pg_config(
    cfg: &SinkConfig,
    statement_timeout: Duration,
    app: &str,
) -> Result<Db, SinkError> {
    let mut db = Db::new(cfg)?;
    let c = &mut db.config;
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(cfg.connect_timeout);
    }
    c.keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(statement_timeout + Duration::from_secs(10));
    if c.get_application_name().is_none() {
        c.application_name(app);
    }
    c.notice_callback(|n| log::debug!("sink: server notice: {}", n.message()));
    let opts = format!(
        "{} -c statement_timeout={} -c work_mem=64MB -c temp_buffers=128MB",
        c.get_options().unwrap_or(""),
        statement_timeout.as_millis().max(1)
    );
    c.options(opts.trim());
    Ok(db)
}

/// The writer's connection settings: [`pg_config`] plus what only the writer needs.
///
/// `plan_cache_mode = force_custom_plan`: every execution of the writer's prepared
/// statements is planned for its own arguments and the tables' size at that moment.
/// A cached generic plan is made once, on whatever the tables held then (tiny first
/// batches on empty tables give a sequential scan with a per-row array search), and
/// nothing but ANALYZE or DDL replaces it; a batch then costs O(table × batch). A
/// custom plan costs a few milliseconds per batch at most (2.9 ms for 10,000 ids)
/// and is right at any table size, analyzed or not.
pub(crate) fn writer_pg_config(cfg: &SinkConfig) -> Result<Db, SinkError> {
    let mut db = pg_config(cfg, cfg.statement_timeout, "tweetflow-sink")?;
    let c = &mut db.config;
    let opts = format!(
        "{} -c plan_cache_mode=force_custom_plan",
        c.get_options().unwrap_or("")
    );
    c.options(opts.trim());
    Ok(db)
}

/// Opens one connection to the database of `cfg` the way the sink does (its
/// URL, `sslmode` and CA file), for a preflight check or a one-off query.
///
/// The error names the URL without its password, and the `sslmode` and CA
/// when the TLS handshake is what failed.
pub fn connect_database(cfg: &SinkConfig) -> Result<Client, SinkError> {
    let db = pg_config(cfg, cfg.statement_timeout, "tweetflow-check")?;
    db.connect().map_err(|e| SinkError::Connect {
        url: redact_url(&cfg.database_url),
        message: db.describe(&e),
    })
}

/// The OpenSSL connector for a mode other than `disable`.
fn connector(mode: SslMode, ca: Option<&Path>) -> Result<MakeTlsConnector, String> {
    let err = |e: openssl::error::ErrorStack| format!("cannot set up TLS: {e}");
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(err)?;
    let verify = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
    if verify {
        if let Some(ca) = ca {
            // The CA file is the only trust (as in libpq), not an addition to the
            // system's roots.
            let bad = |e: &dyn std::fmt::Display| {
                format!("cannot read the CA file {}: {e}", ca.display())
            };
            let pem = std::fs::read(ca).map_err(|e| bad(&e))?;
            let certs = X509::stack_from_pem(&pem).map_err(|e| bad(&e))?;
            if certs.is_empty() {
                return Err(bad(&"no PEM certificate in it"));
            }
            let mut store = X509StoreBuilder::new().map_err(err)?;
            for c in certs {
                store.add_cert(c).map_err(err)?;
            }
            b.set_cert_store(store.build());
        }
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    let mut tls = MakeTlsConnector::new(b.build());
    let full = mode == SslMode::VerifyFull;
    tls.set_callback(move |c, _domain| {
        if !full {
            c.set_verify_hostname(false);
        }
        Ok(())
    });
    Ok(tls)
}

/// A connection string without its password, for messages.
///
/// Handles URLs (`postgres://user:secret@host/db`, and a `password=` query
/// parameter) and key=value strings (`host=h password=secret`).
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let path = match path.split_once('?') {
            None => path.to_string(),
            Some((p, query)) => {
                let q: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_string(),
                    })
                    .collect();
                format!("{p}?{}", q.join("&"))
            }
        };
        return format!("{scheme}://{authority}{path}");
    }
    // key=value: a quoted value may hold spaces (`password='a b'`).
    let mut out = String::with_capacity(url.len());
    let mut rest = url.trim_start();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (mut token, mut tail) = rest.split_at(end);
        if let Some((k, v)) = token.split_once('=') {
            if v.starts_with('\'') {
                // The value runs to the next unescaped quote.
                let start = k.len() + 1;
                let body = &rest[start + 1..];
                let mut close = None;
                let mut esc = false;
                for (i, ch) in body.char_indices() {
                    match ch {
                        '\\' if !esc => esc = true,
                        '\'' if !esc => {
                            close = Some(start + 1 + i + 1);
                            break;
                        }
                        _ => esc = false,
                    }
                }
                let end = close.unwrap_or(rest.len());
                token = &rest[..end];
                tail = &rest[end..];
            }
            if k.eq_ignore_ascii_case("password") {
                token = "";
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(k);
                out.push_str("=***");
            }
        }
        if !token.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
        }
        rest = tail.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db.example:5432/app?sslmode=require"),
            "postgres://bob:***@db.example:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://localhost/db"),
            "postgresql://localhost/db"
        );
        assert_eq!(
            redact_url("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
    }

    #[test]
    fn passwords_in_query_parameters_and_quoted_values_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob@db/app?sslmode=require&password=s3cret"),
            "postgres://bob@db/app?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("host=h password='a secret\\' one' dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(redact_url("password='never closed"), "password=***");
    }

    #[test]
    fn sslmode_is_read_and_verify_modes_reach_postgres_as_require() {
        let t = split_tls(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(t.url, "postgres://u@h/db?sslmode=require&connect_timeout=3");
        let t = split_tls("postgres://u@h/db?sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgres://u@h/db", SslMode::Prefer)
        );
        let t = split_tls("host=h sslmode='verify-ca' user=u").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("host=h sslmode=require user=u", SslMode::VerifyCa)
        );
        let t = split_tls("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(t.mode, SslMode::Disable);
        assert_eq!(t.url, "postgres://u@h/db?sslmode=disable");
        let t = split_tls("postgres://u@h/db").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgres://u@h/db", SslMode::Prefer)
        );
        let e = split_tls("postgres://u@h/db?sslmode=allow").unwrap_err();
        assert!(e.contains("\"allow\" is not supported"), "{e}");
    }

    #[test]
    fn the_sink_configs_debug_hides_the_password() {
        let cfg = SinkConfig {
            database_url: "postgres://u:hunter2@h/db".into(),
            ..SinkConfig::default()
        };
        let d = format!("{cfg:?}");
        assert!(
            !d.contains("hunter2") && d.contains("postgres://u:***@h/db"),
            "{d}"
        );
    }

    #[test]
    fn errors_about_a_url_do_not_print_its_password() {
        for url in [
            "postgres://u:hunter2@h:notaport/db",
            "postgres://u:hunter2@h/db?sslmode=verify-everything",
            "postgres://u:hunter2@h/db?nosuchoption=1",
            "host=h password=hunter2 port=x",
            "host=h password=hunter2 sslmode=bogus",
        ] {
            let cfg = SinkConfig {
                database_url: url.into(),
                ..SinkConfig::default()
            };
            let e = Db::new(&cfg).err().map(|e| e.to_string());
            let e = e.unwrap_or_else(|| panic!("{url} accepted"));
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let cfg = SinkConfig {
            database_url: "postgres://u@h/db?sslmode=verify-ca".into(),
            db_ca_file: Some("/nonexistent/ca.pem".into()),
            ..SinkConfig::default()
        };
        let e = Db::new(&cfg).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
