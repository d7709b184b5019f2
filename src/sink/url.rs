//! The database URL as the sink reads it before connecting: its TLS settings
//! (`sslmode`, `sslrootcert`) split off for the connector, and its redacted form
//! (without the password) for every message that names it.

use std::path::PathBuf;
use std::str::FromStr;

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
    use std::path::Path;

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
}
