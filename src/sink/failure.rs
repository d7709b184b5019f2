//! How the sink fails: its threads, the error that stops it, the failure of a
//! thread while it should still run, and the permanent database problem behind
//! either.

use std::path::PathBuf;

#[cfg(doc)]
use super::{connect_database, SinkConfig};

/// One of the sink's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkThread {
    /// `sink-ingest`: input channel → buffer.
    Ingest,
    /// `sink-writer`: buffer → database.
    Writer,
    /// `sink-health`: probes the database, drives the breaker.
    Health,
}

impl std::fmt::Display for SinkThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SinkThread::Ingest => "ingest",
            SinkThread::Writer => "writer",
            SinkThread::Health => "health",
        })
    }
}

/// Why the sink could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// [`SinkConfig::database_url`] does not parse.
    #[error("invalid database URL: {0}")]
    Config(postgres::Error),
    /// The TLS settings (`sslmode`, the CA file) are unusable.
    #[error("database TLS: {0}")]
    Tls(String),
    /// A connection could not be opened ([`connect_database`]).
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The database URL, without its password.
        url: String,
        /// What failed, with the TLS settings when the handshake failed.
        message: String,
    },
    /// The spool directory cannot be created, opened or read.
    #[error("spool directory {path}")]
    Spool {
        /// [`SinkConfig::spool_dir`].
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The OS refused a new thread.
    #[error("cannot start the sink's {thread} thread")]
    Spawn {
        /// The thread that did not start.
        thread: SinkThread,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A thread panicked; the writer's buffer was moved to the spool first.
    #[error("the sink's {0} thread panicked (its buffer was moved to the spool)")]
    Panicked(SinkThread),
    /// The writer kept panicking and gave up; what it held is in the spool.
    #[error("the sink's writer failed for good ({cause}); its records are in the spool")]
    WriterFailed {
        /// The supervisor's account (restarts, last panic).
        cause: String,
    },
    /// The spool holds records written for another target; they are not replayed.
    #[error(
        "the spool {} holds {pending} records for {found}, not for {expected}; they are not \
         replayed into another database. Use another --spool-dir for this target, or run \
         once with --adopt-spool to write them into {expected} deliberately",
        dir.display()
    )]
    SpoolTarget {
        /// The spool directory.
        dir: PathBuf,
        /// The target its tag names.
        found: String,
        /// This run's target.
        expected: String,
        /// Records waiting in it.
        pending: u64,
    },
    /// The database cannot take the records and no retry can help (schema mismatch,
    /// privileges, read-only, login); what the sink held is in the spool.
    #[error(transparent)]
    Database(DatabaseProblem),
}

impl SinkError {
    /// Whether this is a permanent database problem (the process exits with code 2).
    pub fn is_database_problem(&self) -> bool {
        matches!(self, SinkError::Database(_))
    }
}

/// A thread of the sink that ended for good while the sink should still run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFailure {
    /// Which thread.
    pub thread: SinkThread,
    /// Why, in words.
    pub cause: String,
    /// The database problem behind it, when it is one.
    pub problem: Option<DatabaseProblem>,
}

impl std::fmt::Display for SinkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the sink's {} stopped: {}", self.thread, self.cause)
    }
}

/// A permanent database problem: what is wrong, where, and how to fix it. The
/// pipeline stops on it (exit code 2) after spooling what the sink held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseProblem {
    /// An existing table has other columns or types than tweetflow writes.
    #[error(
        "the table {table} does not match what tweetflow writes: {}. Fix: give tweetflow a \
         schema of its own with --schema, or rename or drop that table (tweetflow creates \
         missing tables itself)",
        problems.join("; ")
    )]
    SchemaMismatch {
        /// `schema.table`.
        table: String,
        /// One entry per column or property that differs.
        problems: Vec<String>,
    },
    /// The role lacks a privilege.
    #[error(
        "permission denied: {message}. Fix: grant the role {role} {needs}, or give \
         tweetflow a schema the role owns with --schema"
    )]
    Privilege {
        /// The role tweetflow logs in as.
        role: String,
        /// What the server (or the start-up check) said.
        message: String,
        /// The privileges it needs, as a `GRANT` clause would name them.
        needs: String,
    },
    /// The server accepts no writes.
    #[error(
        "the database {database} is read-only: {message}. Fix: point --database-url at the \
         primary server; if default_transaction_read_only is set, run `ALTER DATABASE \
         {database} SET default_transaction_read_only = off` (or `ALTER ROLE … SET …` for \
         the role)"
    )]
    ReadOnly {
        /// The database.
        database: String,
        /// What the server (or the start-up check) said.
        message: String,
    },
    /// The login was refused.
    #[error(
        "the server refused the login: {message}. Fix: check the user and password in \
         --database-url (or DATABASE_URL) and the server's pg_hba.conf"
    )]
    Authentication {
        /// What the server said.
        message: String,
    },
    /// The database does not exist.
    #[error(
        "the database {database} does not exist: {message}. Fix: create it (`createdb \
         {database}`) or correct --database-url"
    )]
    NoDatabase {
        /// The database.
        database: String,
        /// What the server said.
        message: String,
    },
    /// Another error no retry can help with.
    #[error("the database refused tweetflow's statements: {message}")]
    Other {
        /// What the server said.
        message: String,
    },
}
