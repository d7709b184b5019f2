//! The PostgreSQL sink: records in, users and tweets stored, nothing lost when the
//! database goes away or the process is killed.
//!
//! Three threads:
//!
//! * `sink-ingest` drains the input channel into the [`buffer::Buffer`] (memory up
//!   to `buffer_records`, then the append-only [`spool`]); it closes the buffer when
//!   the channel disconnects.
//! * `sink-writer` runs the writer loop (`writer`): it owns the write connection,
//!   pulls batches of the size the [`monitor::Monitor`] picks and writes each with
//!   binary COPY into staging tables plus one upsert per table, in one transaction
//!   (`conn`). On a lost connection or timeout it keeps the batch, trips the breaker
//!   and pauses; while paused, the batch and the memory buffer go to the spool
//!   (fsync'd) so a killed process loses nothing, and new records go straight to
//!   disk. After recovery it resumes with that same batch, at the head of the spool.
//! * `sink-health` probes the database every `health_interval` on its own
//!   connection and drives the [`health::Breaker`] (closed / open / half-open).
//!
//! The sink starts even when the database is down: the schema is created once it is
//! reachable; meanwhile records are buffered. A spool left by an earlier run is
//! replayed first.
//!
//! Inside, pure code is apart from I/O: the COPY encoding and value cleaning
//! ([`CopyBuf`], [`parse_twitter_time`], [`strip_nul`], [`sanitize_json`]) and the
//! raw JSON rewriting ([`replace_user`]) do no I/O; the classification of database
//! errors is [`WriteError`]; the connection and its transactions are in `conn`; the
//! rejected file in `rejected`. This file holds the settings, the counters and the
//! wiring of the threads.

mod buffer;
mod compat;
mod conn;
mod connect;
mod drain;
mod encode;
mod error;
#[cfg(any(test, feature = "testkit"))]
mod fault;
#[cfg(any(test, feature = "testkit"))]
pub(crate) mod fixture;
mod health;
mod monitor;
mod pause;
mod raw_json;
mod rejected;
mod schema;
#[cfg(any(test, feature = "testkit"))]
mod session;
mod spool;
mod writer;

pub(crate) use self::compat::check_tables;
#[cfg(any(test, feature = "testkit"))]
pub use self::conn::Prepared;
pub use self::connect::connect_database;
pub(crate) use self::connect::{redact_url, Db};
pub use self::encode::parse_twitter_time;
#[cfg(any(test, feature = "testkit"))]
pub use self::encode::{
    encode_tweet_row, encode_user_row, CopyBuf, EncodeError, Jsonb, TWEET_FIELDS, USER_FIELDS,
};
pub use self::error::{DatabaseProblem, ErrorClass, WriteError};
#[cfg(any(test, feature = "testkit"))]
pub use self::fault::{SeqPredicate, SinkFault};
pub use self::health::BreakerState;
pub use self::pause::{PauseOutcome, SinkControl};
#[cfg(any(test, feature = "testkit"))]
pub use self::schema::create as create_schema;
#[cfg(any(test, feature = "testkit"))]
pub use self::session::WriterSession;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use self::buffer::Buffer;
use self::drain::Drain;
use self::error::Who;
use self::health::Breaker;
use self::pause::Pause;
use self::writer::{writer_thread, WriterState};
use crate::budget::Budget;
use crate::model::{unix_micros, Record, SeqGen};
use crate::stats::Histogram;
use crate::supervise::StagePolicy;

/// Sink settings. Its `Debug` shows the database URL without its password.
#[derive(Clone)]
pub struct SinkConfig {
    /// `postgres://user@host:port/db` or key=value form; `sslmode` (libpq's five
    /// modes) and `sslrootcert` are honoured.
    pub database_url: String,
    /// CA certificates (PEM) that sign the server's certificate, for
    /// `sslmode=verify-ca` and `verify-full` (default: the URL's `sslrootcert`,
    /// else the system's roots).
    pub db_ca_file: Option<PathBuf>,
    /// Schema of the `users` and `tweets` tables (created if missing). Default `public`.
    pub schema: String,
    /// Smallest batch the monitor may choose (default 10).
    pub batch_min: usize,
    /// Largest batch (default 20,000).
    pub batch_max: usize,
    /// First batch size (default 500).
    pub batch_initial: usize,
    /// Target write time of one batch (default 200 ms).
    pub target_write: Duration,
    /// Longest wait for a batch to fill once its first record is there (default 50 ms).
    pub linger: Duration,
    /// Records kept in memory before spilling to the spool (default 100,000).
    pub buffer_records: usize,
    /// Directory of `spool.jsonl`, `spool.offset`, `rejected.jsonl` (default `spool`).
    pub spool_dir: PathBuf,
    /// Probe period of the health checker (default 500 ms).
    pub health_interval: Duration,
    /// Connect timeout of both connections (default 3 s).
    pub connect_timeout: Duration,
    /// Statement timeout of the writer's connection (default 60 s); a batch that takes
    /// longer is treated as a timeout (retried after recovery).
    pub statement_timeout: Duration,
    /// When the input has closed while the database is down, how long to wait for it
    /// before leaving the rest in the spool (default 5 s).
    pub shutdown_grace: Duration,
    /// Longest time spooled appends may stay without fsync (default 200 ms).
    pub spool_sync: Duration,
    /// Most bytes of records kept in memory (as `Tweet::heap_bytes` counts
    /// them), besides `buffer_records`; beyond, records spill to the spool.
    /// Default unlimited; the pipeline sets half of `--memory-limit`.
    pub buffer_bytes: u64,
    /// A batch stops growing at this many bytes (at least one record), which
    /// bounds what the writer holds outside the memory budget: the spool lines
    /// it read, their records and the COPY buffer. Default 64 MiB.
    pub batch_max_bytes: u64,
    /// Uncommitted spool bytes at which [`SinkConfig::budget`] is told the
    /// spool is full, so that ingest waits (`--spool-max-bytes`). The sink itself
    /// never refuses a record: what is already in memory still lands in the
    /// spool. Default `None`: no maximum.
    pub spool_max_bytes: Option<u64>,
    /// The memory budget that the spool-full state is reported to.
    pub budget: Arc<Budget>,
    /// Restarts of the writer after a panic (a bug): at most 5 within 60 s by
    /// default, with a back-off from 100 ms to 5 s; beyond, the writer gives up,
    /// its records are spooled and the sink reports the failure.
    pub restart: StagePolicy,
    /// Replay a spool tagged for another target (database URL without password, and
    /// schema) into this one; without it such a spool is refused (default false).
    pub adopt_spool: bool,
    /// Test hook, see [`SinkFault`].
    #[cfg(any(test, feature = "testkit"))]
    pub fault: Option<SinkFault>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            db_ca_file: None,
            schema: "public".into(),
            batch_min: 10,
            batch_max: 20_000,
            batch_initial: 500,
            target_write: Duration::from_millis(200),
            linger: Duration::from_millis(50),
            buffer_records: 100_000,
            spool_dir: PathBuf::from("spool"),
            health_interval: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            spool_sync: Duration::from_millis(200),
            buffer_bytes: u64::MAX,
            batch_max_bytes: 64 << 20,
            spool_max_bytes: None,
            budget: Budget::unlimited(),
            restart: StagePolicy {
                max_restarts: 5,
                window: Duration::from_secs(60),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
                backoff_reset: Duration::from_secs(30),
            },
            adopt_spool: false,
            #[cfg(any(test, feature = "testkit"))]
            fault: None,
        }
    }
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("db_ca_file", &self.db_ca_file)
            .field("schema", &self.schema)
            .field("batch_min", &self.batch_min)
            .field("batch_max", &self.batch_max)
            .field("batch_initial", &self.batch_initial)
            .field("target_write", &self.target_write)
            .field("linger", &self.linger)
            .field("buffer_records", &self.buffer_records)
            .field("spool_dir", &self.spool_dir)
            .field("health_interval", &self.health_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("spool_sync", &self.spool_sync)
            .finish()
    }
}

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

/// Live counters of the sink (all relaxed atomics), plus the breaker.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub(crate) breaker: Breaker,
    /// The operator's pause switch and the writer's answer.
    pub(crate) pause: Pause,
    /// Current batch size chosen by the monitor.
    pub batch_size: AtomicU64,
    /// Write time of the last batch, µs.
    pub last_write_us: AtomicU64,
    /// Records in the last batch.
    pub last_batch_rows: AtomicU64,
    /// 0 hold, 1 grow, 2 shrink.
    pub(super) last_decision: AtomicU64,
    /// Records in memory.
    pub buffered: AtomicU64,
    /// Records in the spool not yet committed.
    pub spilled: AtomicU64,
    /// Records ever appended to the spool.
    pub spilled_total: AtomicU64,
    /// Records found in the spool at start.
    pub replayed_at_start: AtomicU64,
    /// Records read back from the spool and committed.
    pub records_replayed: AtomicU64,
    /// Approximate bytes of the records in memory (their JSON and text).
    pub buffered_bytes: AtomicU64,
    /// Bytes of the spool file not committed yet (what `--spool-max-bytes` bounds).
    pub spool_bytes: AtomicU64,
    /// Torn last lines cut at start.
    pub torn_lines: AtomicU64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub spool_corrupt: AtomicU64,
    /// Failed spool appends (disk full …); ingest blocks meanwhile.
    pub spool_write_errors: AtomicU64,
    /// Bytes appended to the spool and not yet fsync'd (0 within `spool_sync` of
    /// the last append).
    pub spool_unsynced: AtomicU64,
    /// Records received on the input channel.
    pub records_in: AtomicU64,
    /// Records whose batch committed, rejected ones not included.
    pub records_committed: AtomicU64,
    /// Records with a part (user or tweet) that was rejected, or that could not be
    /// encoded (saved to `rejected.jsonl`); with `records_committed` they add up
    /// to the records written.
    pub records_rejected: AtomicU64,
    /// Writer restarts after a panic.
    pub writer_restarts: AtomicU64,
    /// Records whose batch committed, by the stream they came from (`/tweets/1`, `/tweets/2`).
    pub committed_streams: [AtomicU64; 2],
    /// Tweet rows sent in committed batches (after in-batch de-duplication).
    pub written_tweets: AtomicU64,
    /// User rows sent in committed batches.
    pub written_users: AtomicU64,
    /// Tweet rows actually inserted or updated (older versions are skipped).
    pub tweets_changed: AtomicU64,
    /// User rows actually inserted or updated (older versions are skipped).
    pub users_changed: AtomicU64,
    /// Committed batches.
    pub batches: AtomicU64,
    /// Tweets or users the database refused (saved to `rejected.jsonl`).
    pub rejected_rows: AtomicU64,
    /// Values cleaned of NUL characters.
    pub sanitized: AtomicU64,
    /// Failed batch attempts that were retried (connection lost, timeout …).
    pub retries: AtomicU64,
    /// Receipt → commit latency of each record, µs (`now - tweet.received_unix_us`).
    pub latency: Histogram,
    /// Batch write times, µs.
    pub write_time: Histogram,
    /// A thread that ended for good (the first one).
    failure: parking_lot::Mutex<Option<SinkFailure>>,
    /// Why the writer waits although the database is reachable (disk full …).
    waiting: parking_lot::Mutex<Option<String>>,
    /// The writer thread has ended.
    writer_done: AtomicBool,
}

/// A copy of [`SinkStats`] for the status line and the stats file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkSnapshot {
    /// Current batch size chosen by the monitor.
    pub batch_size: u64,
    /// Write time of the last batch, ms.
    pub last_write_ms: f64,
    /// Records in the last batch.
    pub last_batch_rows: u64,
    /// `grow`, `shrink` or `hold`: the monitor's last decision.
    pub decision: &'static str,
    /// `up`, `down` or `probing` (the breaker), `paused` (by the operator, whatever
    /// the breaker says), `waiting` (the database refuses writes for now, e.g. its
    /// disk is full), `failed` (a thread of the sink ended for good) or `stopped`
    /// (the writer has finished). Never `up` without a writer.
    pub sink_state: &'static str,
    /// Why the state is `waiting` or `failed`.
    pub sink_reason: Option<String>,
    /// Times the breaker opened.
    pub breaker_trips: u64,
    /// Records in memory.
    pub buffered: u64,
    /// Records in the spool not yet committed.
    pub spilled: u64,
    /// Records ever appended to the spool.
    pub spilled_total: u64,
    /// Records found in the spool at start.
    pub replayed_at_start: u64,
    /// Records read back from the spool and committed.
    pub records_replayed: u64,
    /// Approximate bytes of the records in memory.
    pub buffered_bytes: u64,
    /// Bytes of the spool file not committed yet.
    pub spool_bytes: u64,
    /// Torn last lines cut at start.
    pub torn_lines: u64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub spool_corrupt: u64,
    /// Failed spool appends.
    pub spool_write_errors: u64,
    /// Bytes appended to the spool and not yet fsync'd.
    pub spool_unsynced: u64,
    /// Records received on the input channel.
    pub records_in: u64,
    /// Records whose batch committed, rejected ones not included.
    pub records_committed: u64,
    /// Records with a rejected part (saved to `rejected.jsonl`).
    pub records_rejected: u64,
    /// Writer restarts after a panic.
    pub writer_restarts: u64,
    /// Records whose batch committed, from `/tweets/1` and `/tweets/2`.
    pub committed_streams: [u64; 2],
    /// Tweet rows sent in committed batches.
    pub written_tweets: u64,
    /// User rows sent in committed batches.
    pub written_users: u64,
    /// Tweet rows actually inserted or updated.
    pub tweets_changed: u64,
    /// User rows actually inserted or updated.
    pub users_changed: u64,
    /// Committed batches.
    pub batches: u64,
    /// Tweets or users the database refused.
    pub rejected_rows: u64,
    /// Values cleaned of NUL characters.
    pub sanitized: u64,
    /// Failed batch attempts that were retried.
    pub retries: u64,
    /// Receipt → commit latency, median, ms.
    pub latency_p50_ms: Option<f64>,
    /// Receipt → commit latency, 99th percentile, ms.
    pub latency_p99_ms: Option<f64>,
    /// Batch write time, median, ms.
    pub write_p50_ms: Option<f64>,
    /// Batch write time, 99th percentile, ms.
    pub write_p99_ms: Option<f64>,
}

impl SinkStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> SinkSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0);
        let (sink_state, sink_reason) = self.state();
        SinkSnapshot {
            batch_size: l(&self.batch_size),
            last_write_ms: l(&self.last_write_us) as f64 / 1000.0,
            last_batch_rows: l(&self.last_batch_rows),
            decision: match l(&self.last_decision) {
                1 => "grow",
                2 => "shrink",
                _ => "hold",
            },
            sink_state,
            sink_reason,
            breaker_trips: l(&self.breaker.trips),
            buffered: l(&self.buffered),
            spilled: l(&self.spilled),
            spilled_total: l(&self.spilled_total),
            replayed_at_start: l(&self.replayed_at_start),
            records_replayed: l(&self.records_replayed),
            buffered_bytes: l(&self.buffered_bytes),
            spool_bytes: l(&self.spool_bytes),
            torn_lines: l(&self.torn_lines),
            spool_corrupt: l(&self.spool_corrupt),
            spool_write_errors: l(&self.spool_write_errors),
            spool_unsynced: l(&self.spool_unsynced),
            records_in: l(&self.records_in),
            records_committed: l(&self.records_committed),
            records_rejected: l(&self.records_rejected),
            writer_restarts: l(&self.writer_restarts),
            committed_streams: [l(&self.committed_streams[0]), l(&self.committed_streams[1])],
            written_tweets: l(&self.written_tweets),
            written_users: l(&self.written_users),
            tweets_changed: l(&self.tweets_changed),
            users_changed: l(&self.users_changed),
            batches: l(&self.batches),
            rejected_rows: l(&self.rejected_rows),
            sanitized: l(&self.sanitized),
            retries: l(&self.retries),
            latency_p50_ms: ms(self.latency.quantile(0.5)),
            latency_p99_ms: ms(self.latency.quantile(0.99)),
            write_p50_ms: ms(self.write_time.quantile(0.5)),
            write_p99_ms: ms(self.write_time.quantile(0.99)),
        }
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The state shown to people, and why (see [`SinkSnapshot::sink_state`]).
    fn state(&self) -> (&'static str, Option<String>) {
        if let Some(f) = self.failure.lock().as_ref() {
            return ("failed", Some(f.to_string()));
        }
        if self.writer_done.load(Ordering::Relaxed) {
            return ("stopped", None);
        }
        if self.pause.is_requested() {
            return ("paused", None);
        }
        if let Some(w) = self.waiting.lock().as_ref() {
            return ("waiting", Some(w.clone()));
        }
        (self.breaker.state().name(), None)
    }

    /// The first thread that ended for good, if any.
    pub fn failure(&self) -> Option<SinkFailure> {
        self.failure.lock().clone()
    }

    /// Records a thread's end for good (the first one is kept).
    pub(crate) fn fail(&self, f: SinkFailure) {
        let mut slot = self.failure.lock();
        if slot.is_none() {
            log::error!("sink: {f}");
            *slot = Some(f);
        }
    }

    /// The writer waits for `why` (a reachable database refusing writes), or no
    /// longer (`None`).
    pub(crate) fn set_waiting(&self, why: Option<String>) {
        *self.waiting.lock() = why;
    }
}

/// What the sink did, returned by [`Sink::join`].
#[derive(Debug, Clone, Serialize)]
pub struct SinkSummary {
    /// The counters at the end.
    pub stats: SinkSnapshot,
    /// Records left in the spool for the next start (0 when everything committed).
    pub left_in_spool: u64,
    /// The spool file that holds them.
    pub spool_path: PathBuf,
}

/// The running sink.
#[derive(Debug)]
pub struct Sink {
    seq: Arc<SeqGen>,
    stats: Arc<SinkStats>,
    ingest: JoinHandle<()>,
    writer: JoinHandle<Result<SinkSummary, SinkError>>,
    health: JoinHandle<()>,
    stop_health: Arc<AtomicBool>,
    buffer: Arc<Buffer>,
    drain: Arc<Drain>,
}

impl Sink {
    /// Shared counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// The ingest sequence for this run's records: it starts above the highest
    /// `ingest_seq` stored and above the records waiting in the spool, so new
    /// versions always win (the wall clock only if the database could not be asked
    /// at start; the writer then raises it once it can).
    pub fn seq(&self) -> Arc<SeqGen> {
        Arc::clone(&self.seq)
    }

    /// A thread of the sink that ended for good while input may still come (the
    /// writer gave up, a permanent database error, the ingest or health thread
    /// died): the pipeline then stops. `None` while the sink works.
    pub fn failure(&self) -> Option<SinkFailure> {
        self.stats.failure().or_else(|| {
            let dead = |h: &JoinHandle<()>| h.is_finished();
            if dead(&self.health) {
                Some(SinkFailure {
                    thread: SinkThread::Health,
                    cause: "the health checker ended".into(),
                    problem: None,
                })
            } else if self.writer.is_finished() && !self.ingest.is_finished() {
                Some(SinkFailure {
                    thread: SinkThread::Writer,
                    cause: "the writer ended while input was still coming".into(),
                    problem: None,
                })
            } else {
                None
            }
        })
    }

    /// The operator's handle: pause and resume writing.
    pub fn control(&self) -> SinkControl {
        SinkControl::new(Arc::clone(&self.stats))
    }

    /// Whether the writer thread still runs and has not failed for good (a writer
    /// that gave up only waits for the input to close, spooling).
    pub fn writer_running(&self) -> bool {
        !self.writer.is_finished() && self.stats.failure().is_none()
    }

    /// Waits until the input disconnected and everything is committed (or, if the
    /// database is down then, moved to the spool).
    pub fn join(self) -> Result<SinkSummary, SinkError> {
        let ingest = self.ingest.join();
        let res = match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(SinkError::Panicked(SinkThread::Writer)),
        };
        self.stop_health.store(true, Ordering::Relaxed);
        if self.health.join().is_err() {
            log::error!("sink: health thread panicked");
        }
        if ingest.is_err() {
            return Err(SinkError::Panicked(SinkThread::Ingest));
        }
        res
    }

    /// Starts the drain: the process must have exited by `deadline`. The writer goes
    /// on committing until its stop point (the deadline less the time needed to move
    /// what is left to the spool); then it moves the rest to the spool, fsyncs it and
    /// ends, whether or not the input has closed. The first deadline given wins.
    pub fn drain_by(&self, deadline: Instant) {
        self.drain.set(deadline);
    }

    /// One step of the drain, every few milliseconds after [`Sink::drain_by`] (the
    /// pipeline calls it while the stages above drain, [`Sink::join_by`] after).
    /// The stop point moves with what is left in memory. What the writer cannot
    /// commit before it goes to the spool now, a chunk at a time (so the writer
    /// can go on pulling), rather than all at the stop point; a batch still being
    /// written at the stop point is cancelled.
    pub fn drain_step(&self) {
        let buffered = self.stats.buffered.load(Ordering::Relaxed);
        let Some(stop) = self.drain.stop_at(buffered) else {
            return;
        };
        if self.writer.is_finished() {
            return;
        }
        let now = Instant::now();
        let last_write = Duration::from_micros(self.stats.last_write_us.load(Ordering::Relaxed));
        // A batch that has taken more than twice the last one's time and more than a
        // quarter of the drain's budget is stuck (a lock, a stalled server): cancel it
        // at once, while there is time to spool it; any other at the stop point.
        let stuck = self.drain.stuck(last_write);
        let can = drain::can_commit(
            self.stats.last_batch_rows.load(Ordering::Relaxed),
            last_write,
            stuck,
            stop.saturating_duration_since(now),
        );
        if buffered > can && !self.drain.spill_failed() {
            if let Err(e) = self.buffer.spill_front(1_000) {
                log::error!("sink: drain: cannot move records to the spool: {e}");
                self.drain.set_spill_failed();
            }
        }
        if (now >= stop || stuck) && self.drain.is_busy() && !self.drain.was_cancelled() {
            log::warn!(
                "sink: drain: cancelling the batch being written ({})",
                if stuck {
                    "it is stuck"
                } else {
                    "the deadline is near"
                }
            );
            self.drain.cancel_in_flight();
        }
    }

    /// [`Sink::drain_by`] `deadline`, then waits for the writer until then: a batch
    /// still being written at the stop point is cancelled on the server and spooled.
    /// Returns by the deadline: if the writer has not ended by then (a server that
    /// does not answer, even to the cancel), the memory buffer is moved to the spool
    /// from here. A thread still running then (the ingest thread, when a stage above
    /// has not closed the input) is left behind: what it still receives goes to the
    /// spool. With `input_closed` (every sender is gone) the ingest thread is waited
    /// for even past the deadline, since what it still holds is bounded by the
    /// channel and would otherwise be lost.
    pub fn join_by(self, deadline: Instant, input_closed: bool) -> Result<SinkSummary, SinkError> {
        self.drain.set(deadline);
        let finished = drain::wait_until(deadline, || {
            self.drain_step();
            self.writer.is_finished()
        });
        self.stop_health.store(true, Ordering::Relaxed);
        if !finished {
            log::error!(
                "sink: the writer did not end by the drain deadline; moving the memory buffer \
                 to the spool and leaving the writer behind"
            );
            if let Err(e) = self.buffer.evacuate(None) {
                log::error!("sink: cannot move the buffer to the spool: {e}");
            }
            return Ok(summary_now(&self.stats, &self.buffer));
        }
        let res = match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(SinkError::Panicked(SinkThread::Writer)),
        };
        // What is still in the channel goes to the spool through the ingest thread. If
        // the senders are gone (`input_closed`), that is bounded and is waited for even
        // past the deadline: an exit a little late rather than records lost.
        let mut ingested = drain::wait_until(deadline, || self.ingest.is_finished());
        if !ingested && input_closed {
            log::warn!(
                "sink: drain deadline passed; spooling the records still in the sink's channel \
                 before exiting"
            );
            ingested = drain::wait_until(Instant::now() + Duration::from_secs(3600), || {
                self.ingest.is_finished()
            });
        }
        if ingested {
            if self.ingest.join().is_err() {
                return Err(SinkError::Panicked(SinkThread::Ingest));
            }
        } else {
            log::warn!(
                "sink: the input is still open at the drain deadline; what still arrives goes \
                 to the spool"
            );
        }
        if let Err(e) = self.buffer.sync() {
            log::error!("sink: fsync of the spool failed: {e}");
        }
        if drain::wait_until(deadline, || self.health.is_finished()) && self.health.join().is_err()
        {
            log::error!("sink: health thread panicked");
        }
        res.map(|mut s| {
            s.left_in_spool = self.buffer.len();
            s
        })
    }
}

/// The summary as it stands, for a writer that was left behind.
fn summary_now(stats: &SinkStats, buffer: &Buffer) -> SinkSummary {
    SinkSummary {
        stats: stats.snapshot(),
        left_in_spool: buffer.len(),
        spool_path: buffer.spool_dir().join("spool.jsonl"),
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

/// Starts the sink. Fails only on a bad URL, an unusable spool directory or a thread
/// that cannot start; a database that is down is waited for.
pub fn spawn_sink(cfg: SinkConfig, input: Receiver<Record>) -> Result<Sink, SinkError> {
    let writer_pg = writer_pg_config(&cfg)?;
    let health_pg = pg_config(
        &cfg,
        Duration::from_secs(2).max(cfg.health_interval * 4),
        "tweetflow-health",
    )?;
    let spool_err = |source| SinkError::Spool {
        path: cfg.spool_dir.clone(),
        source,
    };
    let (mut spool, report) = spool::Spool::open(&cfg.spool_dir).map_err(spool_err)?;
    // The spool belongs to one target: never replay it into another by accident.
    let target = target_tag(&writer_pg.config, &cfg.schema);
    match spool::read_tag(&cfg.spool_dir) {
        Some(t) if t == target => {}
        found if report.pending == 0 || cfg.adopt_spool => {
            if let (Some(f), true) = (&found, report.pending > 0) {
                log::warn!(
                    "sink: adopting the spool of {f}: its {} records are written into {target}",
                    report.pending
                );
            }
            spool::write_tag(&cfg.spool_dir, &target).map_err(spool_err)?;
        }
        found => {
            return Err(SinkError::SpoolTarget {
                dir: cfg.spool_dir.clone(),
                found: found.unwrap_or_else(|| "no recorded target (an older tweetflow)".into()),
                expected: target,
                pending: report.pending,
            })
        }
    }
    spool.sync_interval = cfg.spool_sync;
    let stats = Arc::new(SinkStats::default());
    stats
        .replayed_at_start
        .store(report.pending, Ordering::Relaxed);
    stats
        .torn_lines
        .store((report.torn_bytes > 0) as u64, Ordering::Relaxed);
    if report.pending > 0 {
        log::info!(
            "sink: {} records left in {} by an earlier run; replaying them first",
            report.pending,
            spool.path().display()
        );
    }
    // Before a single record: the tables are checked (a mismatch or a missing
    // privilege stops here), and the sequence starts above what is stored.
    let who = Who::new(&writer_pg.config, &cfg.schema);
    let stored = preflight(&cfg, &who)?;
    let spool_next = report.max_seq.map_or(0, |m| m.saturating_add(1));
    let first = match stored {
        Some(max) => max.map_or(0, |m| m.saturating_add(1)).max(spool_next),
        None => unix_micros().max(spool_next),
    };
    let seq = Arc::new(SeqGen::starting_at(first.max(1)));
    let limits = buffer::Limits {
        memory_bytes: cfg.buffer_bytes,
        batch_bytes: cfg.batch_max_bytes,
        spool_max_bytes: cfg.spool_max_bytes,
        budget: Arc::clone(&cfg.budget),
    };
    let buffer = Arc::new(Buffer::new(
        spool,
        cfg.buffer_records,
        limits,
        Arc::clone(&stats),
    ));
    let stop_health = Arc::new(AtomicBool::new(false));

    let health = {
        let st = Arc::clone(&stats);
        let stop = Arc::clone(&stop_health);
        let interval = cfg.health_interval;
        spawn_health(st, health_pg, interval, stop).map_err(|source| SinkError::Spawn {
            thread: SinkThread::Health,
            source,
        })?
    };
    let drain = Arc::new(Drain::default());
    let writer = {
        let st = Arc::clone(&stats);
        let buf = Arc::clone(&buffer);
        let drain = Arc::clone(&drain);
        let cfg = cfg.clone();
        let state = WriterState::new(&cfg, Arc::clone(&seq), stored.is_some());
        crate::stats::spawn_thread("sink-writer", None, move || {
            let r = writer_thread(&cfg, &st, &buf, &writer_pg, &drain, state);
            st.writer_done.store(true, Ordering::Relaxed);
            r
        })
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            stop_health.store(true, Ordering::Relaxed);
            return Err(SinkError::Spawn {
                thread: SinkThread::Writer,
                source: e,
            });
        }
    };
    let ingest = {
        let st = Arc::clone(&stats);
        let buf = Arc::clone(&buffer);
        crate::stats::spawn_thread("sink-ingest", None, move || {
            // The thread that appends owns the fsync timer: an idle tail of the
            // spool is synced within `spool_sync`, not only on a later append.
            let mut wait = None;
            loop {
                match input.recv_timeout(wait.unwrap_or(Duration::from_secs(1))) {
                    Ok(rec) => {
                        st.records_in.fetch_add(1, Ordering::Relaxed);
                        buf.push(rec);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                wait = buf.sync_if_due();
            }
            buf.close();
        })
    };
    let ingest = match ingest {
        Ok(i) => i,
        Err(e) => {
            // The writer ends once the buffer is closed (and drained).
            buffer.close();
            stop_health.store(true, Ordering::Relaxed);
            return Err(SinkError::Spawn {
                thread: SinkThread::Ingest,
                source: e,
            });
        }
    };
    Ok(Sink {
        seq,
        stats,
        ingest,
        writer,
        health,
        stop_health,
        buffer,
        drain,
    })
}

/// The target a spool belongs to: `postgres://user@host:port/database schema=<s>`,
/// from the parsed settings (never the password; URL and key=value forms of the
/// same target give the same tag).
fn target_tag(pg: &postgres::Config, schema: &str) -> String {
    let who = Who::new(pg, schema);
    let host = match pg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{} schema={schema}",
        who.role, who.database
    )
}

/// The start-up check: if the database answers, creates what is missing, checks
/// the tables and privileges, and reads the highest stored `ingest_seq`
/// (`Some(max)`); `None` when it cannot be reached now (the writer does it all once
/// it can). A permanent problem is an error: the sink does not start.
fn preflight(cfg: &SinkConfig, who: &Who) -> Result<Option<Option<u64>>, SinkError> {
    let pg = pg_config(cfg, cfg.statement_timeout, "tweetflow-check")?;
    let mut client = match pg.connect() {
        Ok(c) => c,
        Err(e) => {
            if let Some(p) = who.problem(&e, true) {
                return Err(SinkError::Database(p));
            }
            log::warn!(
                "sink: the database cannot be reached at start ({}); the tables are checked \
                 once it can",
                error::db_message(&e)
            );
            return Ok(None);
        }
    };
    if let Err(e) = schema::prepare(&mut client, &cfg.schema, who) {
        if let Some(p) = e.problem(who) {
            return Err(SinkError::Database(p));
        }
        log::warn!(
            "sink: cannot check the tables at start ({}); the writer does once it can",
            e.message()
        );
        return Ok(None);
    }
    match schema::stored_seq_max(&mut client, &cfg.schema) {
        Ok(max) => Ok(Some(max)),
        Err(e) => {
            log::warn!(
                "sink: cannot read the highest stored ingest_seq ({}); the writer does once it \
                 can",
                error::db_message(&e)
            );
            Ok(None)
        }
    }
}

fn spawn_health(
    stats: Arc<SinkStats>,
    pg: Db,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    // The checker needs an `Arc<Breaker>`; the breaker lives in the stats, so wrap a
    // forwarding view: share the whole stats Arc.
    health::spawn_checker(BreakerRef(stats), pg, interval, stop)
}

/// An `Arc<SinkStats>` seen as the breaker it holds.
#[derive(Debug, Clone)]
pub(crate) struct BreakerRef(Arc<SinkStats>);

impl std::ops::Deref for BreakerRef {
    type Target = Breaker;
    fn deref(&self) -> &Breaker {
        &self.0.breaker
    }
}
