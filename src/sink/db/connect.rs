//! How the sink reaches PostgreSQL: one place that turns the database URL and
//! the CA file into connections, TLS included, for every connection the sink
//! opens (the writer, the health probe, the schema setup, the cancel of a batch
//! in flight) and for `tweetflow check`.
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
//! `sslrootcert`, else the platform's roots. The `postgres` crate knows only the
//! first three modes, so the two `verify-*` modes are read here and handed to it
//! as `require`, with the certificate checks configured on the rustls connector
//! ([`super::tls`]). Connection strings are printed only through [`redact_url`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::sink::config::SinkConfig;
use crate::sink::failure::SinkError;
use crate::sink::url::{redact_url, split_tls, SslMode};

/// What opens the sink's connections: the `postgres` settings plus the TLS
/// connector `sslmode` asks for.
#[derive(Clone)]
pub(crate) struct Db {
    /// Connection settings (host, user, timeouts, …).
    pub(crate) config: postgres::Config,
    mode: SslMode,
    ca: Option<PathBuf>,
    tls: Option<MakeRustlsConnect>,
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
            mode => Some(MakeRustlsConnect::new(
                super::tls::client_config(mode, ca.as_deref()).map_err(SinkError::Tls)?,
            )),
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

    /// What cancels the statement `client` (opened by [`Db::connect`]) runs, from
    /// another thread: the cancel request opens a connection of its own, with the
    /// same TLS.
    pub(crate) fn cancel_of(&self, client: &Client) -> Cancel {
        Cancel {
            token: client.cancel_token(),
            tls: self.tls.clone(),
        }
    }

    /// Describes a connection error; names the `sslmode` and the CA when TLS failed.
    pub(crate) fn describe(&self, e: &postgres::Error) -> String {
        let msg = super::error::db_message(e);
        if !msg.contains("TLS") && !msg.contains("SSL") && !msg.contains("certificate") {
            return msg;
        }
        // Causes may repeat each other: keep each distinct one once.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            let part = super::tls::certificate_refusal(x).unwrap_or_else(|| x.to_string());
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
    // Silence is named within `db_timeout`: keepalives start after a quarter of it
    // (a connection that waits for an answer sends nothing else), and the kernel
    // ends a connection whose sent data or keepalives stay unacknowledged that long
    // (TCP_USER_TIMEOUT, which also bounds the keepalive probes on Linux). A slow
    // statement on a live server is not cut: its TCP still acknowledges.
    let (idle, interval) = keepalive_timing(cfg.db_timeout);
    c.keepalives(true)
        .keepalives_idle(idle)
        .keepalives_interval(interval)
        .keepalives_retries(3)
        .tcp_user_timeout(cfg.db_timeout);
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

/// The keepalive idle time and probe interval for a silence deadline: a quarter
/// and an eighth of it, at least 1 s each (the kernel counts whole seconds).
pub(crate) fn keepalive_timing(db_timeout: Duration) -> (Duration, Duration) {
    let at_least_1s = |d: Duration| Duration::from_secs(d.as_secs().max(1));
    (at_least_1s(db_timeout / 4), at_least_1s(db_timeout / 8))
}

/// Cancels the statement a connection runs ([`Db::cancel_of`]), over the TLS
/// that connection was opened with.
#[derive(Clone)]
pub(crate) struct Cancel {
    token: postgres::CancelToken,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Cancel {
    /// Asks the server to cancel the statement in flight (opens a connection and may
    /// wait up to the connect timeout).
    pub(crate) fn cancel(&self) -> Result<(), postgres::Error> {
        match &self.tls {
            None => self.token.cancel_query(postgres::NoTls),
            Some(tls) => self.token.cancel_query(tls.clone()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_connection_ends_after_the_silence_deadline() {
        let secs = Duration::from_secs;
        assert_eq!(keepalive_timing(secs(10)), (secs(2), secs(1)));
        assert_eq!(keepalive_timing(secs(60)), (secs(15), secs(7)));
        assert_eq!(keepalive_timing(secs(1)), (secs(1), secs(1)));
        let cfg = SinkConfig {
            db_timeout: secs(4),
            ..SinkConfig::default()
        };
        for db in [
            pg_config(&cfg, secs(60), "t").unwrap(),
            writer_pg_config(&cfg).unwrap(),
        ] {
            let c = &db.config;
            assert!(c.get_keepalives());
            assert_eq!(c.get_tcp_user_timeout(), Some(&secs(4)));
            assert_eq!(c.get_keepalives_idle(), secs(1));
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
