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
mod config;
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
mod stats;
mod writer;

pub(crate) use self::compat::check_tables;
pub use self::config::SinkConfig;
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
pub use self::fault::{DirSyncFn, SeqPredicate, SinkFault};
pub use self::health::BreakerState;
pub use self::pause::{PauseOutcome, SinkControl};
#[cfg(any(test, feature = "testkit"))]
pub use self::schema::create as create_schema;
#[cfg(any(test, feature = "testkit"))]
pub use self::session::WriterSession;
pub use self::stats::{SinkSnapshot, SinkState, SinkStats, SinkSummary};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use self::buffer::Buffer;
use self::drain::Drain;
use self::error::Who;
use self::health::Breaker;
use self::writer::{writer_thread, WriterState};
use crate::model::{unix_micros, Record, SeqGen};

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
    #[cfg(any(test, feature = "testkit"))]
    let hook = cfg.fault.as_ref().and_then(|f| f.sync_dir.clone());
    #[cfg(any(test, feature = "testkit"))]
    let sync_dir = |d: &std::path::Path| match &hook {
        Some(h) => h(d),
        None => spool::fsync_dir(d),
    };
    #[cfg(not(any(test, feature = "testkit")))]
    let sync_dir = spool::fsync_dir;
    let (mut spool, report) = spool::Spool::open(&cfg.spool_dir, &sync_dir).map_err(spool_err)?;
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
            spool::write_tag(&cfg.spool_dir, &target, &sync_dir).map_err(spool_err)?;
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
