//! PostgreSQL sink: buffer, spool, adaptive-batch writer, monitor, health checker (issue 5).
//!
//! Three threads:
//!
//! * `sink-ingest` drains the input channel into the [`buffer::Buffer`] (memory up
//!   to `buffer_records`, then the append-only [`spool`]); it closes the buffer when
//!   the channel disconnects.
//! * `sink-writer` owns the write connection. When the breaker is closed it *pulls*
//!   up to `batch_size` records (waiting at most `linger` for the batch to fill),
//!   writes them ([`writer`]: binary COPY into staging tables + upsert, one
//!   transaction), commits them in the buffer and feeds the write time to the
//!   [`monitor::Monitor`], which picks the next batch size. On a lost connection or
//!   timeout it keeps the batch, trips the breaker and pauses; while paused, the batch
//!   and the memory buffer go to the spool (fsync'd) so a killed process loses
//!   nothing, and new records go straight to disk. After recovery it resumes with
//!   that same batch, at the head of the spool.
//! * `sink-health` probes the database every `health_interval` on its own
//!   connection and drives the [`health::Breaker`] (closed / open / half-open).
//!
//! The sink starts even when the database is down: the schema is created once it is
//! reachable; meanwhile records are buffered. A spool left by an earlier run is
//! replayed first.

pub mod buffer;
#[doc(hidden)]
pub mod fixture;
pub mod health;
pub mod monitor;
pub mod schema;
pub mod spool;
pub mod writer;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde::Serialize;

use self::buffer::Buffer;
use self::health::{Breaker, BreakerState, Event};
use self::monitor::Monitor;
use self::writer::{db_message, Conn, ErrorClass};
use crate::model::{unix_micros, Record};
use crate::stats::Histogram;

/// Sink settings.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// `postgres://user@host:port/db` or key=value form.
    pub database_url: String,
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
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
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
        }
    }
}

/// Why the sink could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid database URL: {0}")]
    Config(String),
    #[error("spool directory {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a sink thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the sink's {0} thread panicked (its buffer was moved to the spool)")]
    Panicked(&'static str),
}

/// Live counters of the sink (all relaxed atomics), plus the breaker.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub(crate) breaker: Breaker,
    /// Current batch size chosen by the monitor.
    pub batch_size: AtomicU64,
    /// Write time of the last batch, µs.
    pub last_write_us: AtomicU64,
    /// Records in the last batch.
    pub last_batch_rows: AtomicU64,
    /// 0 hold, 1 grow, 2 shrink.
    last_decision: AtomicU64,
    /// Records in memory.
    pub buffered: AtomicU64,
    /// Records in the spool not yet committed.
    pub spilled: AtomicU64,
    /// Records ever appended to the spool.
    pub spilled_total: AtomicU64,
    /// Records found in the spool at start.
    pub replayed_at_start: AtomicU64,
    /// Torn last lines cut at start.
    pub torn_lines: AtomicU64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub spool_corrupt: AtomicU64,
    /// Failed spool appends (disk full …); ingest blocks meanwhile.
    pub spool_write_errors: AtomicU64,
    /// Records received on the input channel.
    pub records_in: AtomicU64,
    /// Records whose batch committed.
    pub records_committed: AtomicU64,
    /// Tweet rows sent in committed batches (after in-batch de-duplication).
    pub written_tweets: AtomicU64,
    /// User rows sent in committed batches.
    pub written_users: AtomicU64,
    /// Rows actually inserted or updated (older versions are skipped).
    pub tweets_changed: AtomicU64,
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
}

/// A copy of [`SinkStats`] for the status line and the stats file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkSnapshot {
    pub batch_size: u64,
    pub last_write_ms: f64,
    pub last_batch_rows: u64,
    /// `grow`, `shrink` or `hold`: the monitor's last decision.
    pub decision: &'static str,
    /// `up`, `down` or `probing`.
    pub sink_state: &'static str,
    pub breaker_trips: u64,
    pub buffered: u64,
    pub spilled: u64,
    pub spilled_total: u64,
    pub replayed_at_start: u64,
    pub torn_lines: u64,
    pub spool_corrupt: u64,
    pub spool_write_errors: u64,
    pub records_in: u64,
    pub records_committed: u64,
    pub written_tweets: u64,
    pub written_users: u64,
    pub tweets_changed: u64,
    pub users_changed: u64,
    pub batches: u64,
    pub rejected_rows: u64,
    pub sanitized: u64,
    pub retries: u64,
    /// Receipt → commit latency quantiles, ms.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Batch write time quantiles, ms.
    pub write_p50_ms: Option<f64>,
    pub write_p99_ms: Option<f64>,
}

impl SinkStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> SinkSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0);
        SinkSnapshot {
            batch_size: l(&self.batch_size),
            last_write_ms: l(&self.last_write_us) as f64 / 1000.0,
            last_batch_rows: l(&self.last_batch_rows),
            decision: match l(&self.last_decision) {
                1 => "grow",
                2 => "shrink",
                _ => "hold",
            },
            sink_state: self.breaker.state().name(),
            breaker_trips: l(&self.breaker.trips),
            buffered: l(&self.buffered),
            spilled: l(&self.spilled),
            spilled_total: l(&self.spilled_total),
            replayed_at_start: l(&self.replayed_at_start),
            torn_lines: l(&self.torn_lines),
            spool_corrupt: l(&self.spool_corrupt),
            spool_write_errors: l(&self.spool_write_errors),
            records_in: l(&self.records_in),
            records_committed: l(&self.records_committed),
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
}

/// What the sink did, returned by [`Sink::join`].
#[derive(Debug, Clone, Serialize)]
pub struct SinkSummary {
    pub stats: SinkSnapshot,
    /// Records left in the spool for the next start (0 when everything committed).
    pub left_in_spool: u64,
    pub spool_path: PathBuf,
}

/// The running sink.
#[derive(Debug)]
pub struct Sink {
    stats: Arc<SinkStats>,
    ingest: JoinHandle<()>,
    writer: JoinHandle<Result<SinkSummary, SinkError>>,
    health: JoinHandle<()>,
    stop_health: Arc<AtomicBool>,
}

impl Sink {
    /// Shared counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Waits until the input disconnected and everything is committed (or, if the
    /// database is down then, moved to the spool).
    pub fn join(self) -> Result<SinkSummary, SinkError> {
        let ingest = self.ingest.join();
        let res = match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(SinkError::Panicked("writer")),
        };
        self.stop_health.store(true, Ordering::Relaxed);
        if self.health.join().is_err() {
            log::error!("sink: health thread panicked");
        }
        if ingest.is_err() {
            return Err(SinkError::Panicked("ingest"));
        }
        res
    }
}

/// Builds the connection settings from the URL.
fn pg_config(
    cfg: &SinkConfig,
    statement_timeout: Duration,
    app: &str,
) -> Result<postgres::Config, SinkError> {
    let mut c = postgres::Config::from_str(&cfg.database_url)
        .map_err(|e| SinkError::Config(e.to_string()))?;
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
    Ok(c)
}

/// Starts the sink. Fails only on a bad URL, an unusable spool directory or a thread
/// that cannot start; a database that is down is waited for.
pub fn spawn_sink(cfg: SinkConfig, input: Receiver<Record>) -> Result<Sink, SinkError> {
    let writer_pg = pg_config(&cfg, cfg.statement_timeout, "tweetflow-sink")?;
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
    let buffer = Arc::new(Buffer::new(spool, cfg.buffer_records, Arc::clone(&stats)));
    let stop_health = Arc::new(AtomicBool::new(false));

    let health = {
        let st = Arc::clone(&stats);
        let stop = Arc::clone(&stop_health);
        let interval = cfg.health_interval;
        spawn_health(st, health_pg, interval, stop).map_err(SinkError::Spawn)?
    };
    let writer = {
        let st = Arc::clone(&stats);
        let buf = Arc::clone(&buffer);
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("sink-writer".into())
            .spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    writer_loop(&cfg, &st, &buf, &writer_pg)
                }));
                match r {
                    Ok(s) => Ok(s),
                    Err(_) => {
                        log::error!("sink: writer panicked; moving the buffer to the spool");
                        st.breaker.apply(Event::WriteFailed);
                        if let Err(e) = buf.evacuate(None) {
                            log::error!("sink: cannot spool the buffer after the panic: {e}");
                        }
                        Err(SinkError::Panicked("writer"))
                    }
                }
            })
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            stop_health.store(true, Ordering::Relaxed);
            return Err(SinkError::Spawn(e));
        }
    };
    let ingest = {
        let st = Arc::clone(&stats);
        let buf = Arc::clone(&buffer);
        std::thread::Builder::new()
            .name("sink-ingest".into())
            .spawn(move || {
                for rec in input.iter() {
                    st.records_in.fetch_add(1, Ordering::Relaxed);
                    buf.push(rec);
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
            return Err(SinkError::Spawn(e));
        }
    };
    Ok(Sink {
        stats,
        ingest,
        writer,
        health,
        stop_health,
    })
}

fn spawn_health(
    stats: Arc<SinkStats>,
    pg: postgres::Config,
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

/// Rate-limits a repeated log line.
struct Every {
    last: Option<Instant>,
    period: Duration,
}

impl Every {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_none_or_older(now, self.period) {
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

trait OlderExt {
    fn is_none_or_older(&self, now: Instant, period: Duration) -> bool;
}

impl OlderExt for Option<Instant> {
    fn is_none_or_older(&self, now: Instant, period: Duration) -> bool {
        self.map_or(true, |t| now.duration_since(t) >= period)
    }
}

fn writer_loop(
    cfg: &SinkConfig,
    st: &SinkStats,
    buffer: &Buffer,
    pg: &postgres::Config,
) -> SinkSummary {
    let mut monitor = Monitor::new(
        cfg.batch_min,
        cfg.batch_max,
        cfg.batch_initial,
        cfg.target_write,
    );
    st.batch_size
        .store(monitor.batch_size() as u64, Ordering::Relaxed);
    let spool_dir = buffer.spool_dir();
    let mut conn: Option<Conn> = None;
    let mut schema_ready = false;
    let mut held: Option<buffer::Batch> = None;
    let mut down_since: Option<Instant> = None;
    let mut closed_at: Option<Instant> = None;
    let mut err_log = Every {
        last: None,
        period: Duration::from_secs(5),
    };
    let mut evac_log = Every {
        last: None,
        period: Duration::from_secs(5),
    };
    let idle = Duration::from_millis(200);
    loop {
        let state = st.breaker.state();
        if state == BreakerState::HalfOpen && down_since.is_none() {
            // First probe (or a probe after a write failure that was not yet seen as
            // an outage): wait for its verdict.
            conn = None;
            st.breaker.wait_closed(idle);
            if buffer.is_closed()
                && closed_at.get_or_insert_with(Instant::now).elapsed() >= cfg.shutdown_grace
            {
                down_since = Some(Instant::now());
            }
            continue;
        }
        if state != BreakerState::Closed {
            conn = None;
            if down_since.is_none() {
                down_since = Some(Instant::now());
                log::warn!(
                    "sink: database unavailable; writer paused, records go to the spool {}",
                    spool_dir.display()
                );
            }
            match buffer.evacuate(held.take()) {
                Ok(n) if n > 0 => log::info!("sink: moved {n} buffered records to the spool"),
                Ok(_) => {}
                Err(e) => {
                    if evac_log.due() {
                        log::error!("sink: cannot move the buffer to the spool: {e}; retrying");
                    }
                }
            }
            if buffer.is_closed() {
                let c = *closed_at.get_or_insert_with(Instant::now);
                if c.elapsed() >= cfg.shutdown_grace {
                    if let Err(e) = buffer.sync() {
                        log::error!("sink: fsync of the spool failed: {e}");
                    }
                    let left = buffer.len();
                    log::warn!(
                        "sink: input closed while the database is down; {left} records are in \
                         the spool {} (fsync'd) and are replayed at the next start",
                        spool_dir.join("spool.jsonl").display()
                    );
                    return summary(st, left, &spool_dir);
                }
            }
            st.breaker.wait_closed(idle);
            continue;
        }
        if let Some(t) = down_since.take() {
            buffer.set_durable(false);
            log::info!(
                "sink: database back after {:.1} s; writer resumes ({} records waiting)",
                t.elapsed().as_secs_f64(),
                buffer.len()
            );
        }
        if conn.is_none() {
            match open_conn(pg, &cfg.schema, &mut schema_ready) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if err_log.due() {
                        log::warn!("sink: cannot open the write connection: {}", db_message(&e));
                    }
                    st.breaker.apply(Event::WriteFailed);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let batch = match held.take() {
            Some(b) => b,
            None => match buffer.pull(monitor.batch_size(), cfg.linger, idle) {
                Some(b) => b,
                None => break,
            },
        };
        if batch.records.is_empty() {
            if let buffer::Source::Spool { .. } = batch.source {
                // Only unreadable lines (counted and saved): nothing to write.
                buffer.commit(batch.source);
            }
            continue;
        }
        let n = batch.records.len();
        let t0 = Instant::now();
        match c.write_batch(&batch.records, &spool_dir) {
            Ok(o) => {
                let el = t0.elapsed();
                buffer.commit(batch.source);
                if o.isolation_attempts == 0 {
                    let before = monitor.batch_size();
                    monitor.observe(n, el);
                    if monitor.batch_size() != before {
                        log::debug!(
                            "sink: batch of {n} written in {:.1} ms; batch size {before} -> {}",
                            el.as_secs_f64() * 1e3,
                            monitor.batch_size()
                        );
                    }
                }
                let now = unix_micros();
                for r in &batch.records {
                    st.latency
                        .record(now.saturating_sub(r.tweet.received_unix_us));
                }
                st.write_time.record(el.as_micros() as u64);
                st.batch_size
                    .store(monitor.batch_size() as u64, Ordering::Relaxed);
                st.last_decision.store(
                    match monitor.last_decision() {
                        monitor::Decision::Hold => 0,
                        monitor::Decision::Grow => 1,
                        monitor::Decision::Shrink => 2,
                    },
                    Ordering::Relaxed,
                );
                st.last_write_us
                    .store(el.as_micros() as u64, Ordering::Relaxed);
                st.last_batch_rows.store(n as u64, Ordering::Relaxed);
                st.records_committed.fetch_add(n as u64, Ordering::Relaxed);
                st.written_tweets.fetch_add(o.tweets, Ordering::Relaxed);
                st.written_users.fetch_add(o.users, Ordering::Relaxed);
                st.tweets_changed
                    .fetch_add(o.tweets_changed, Ordering::Relaxed);
                st.users_changed
                    .fetch_add(o.users_changed, Ordering::Relaxed);
                st.rejected_rows.fetch_add(o.rejected, Ordering::Relaxed);
                st.sanitized.fetch_add(o.sanitized, Ordering::Relaxed);
                st.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                st.retries.fetch_add(1, Ordering::Relaxed);
                let class = e.class();
                if err_log.due() {
                    log::warn!(
                        "sink: batch of {n} failed ({class:?}: {}); keeping it for a retry after \
                         recovery",
                        e.message()
                    );
                }
                if class == ErrorClass::Schema {
                    schema_ready = false;
                }
                if e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) {
                    // statement_timeout: the batch is too big for the database now.
                    monitor.timed_out();
                    st.batch_size
                        .store(monitor.batch_size() as u64, Ordering::Relaxed);
                }
                held = Some(batch);
                conn = None;
                st.breaker.apply(Event::WriteFailed);
            }
        }
    }
    if let Err(e) = buffer.sync() {
        log::error!("sink: fsync of the spool failed: {e}");
    }
    let left = buffer.len();
    log::info!(
        "sink: input closed and drained; {} records committed in {} batches",
        st.records_committed.load(Ordering::Relaxed),
        st.batches.load(Ordering::Relaxed)
    );
    summary(st, left, &spool_dir)
}

fn open_conn(
    pg: &postgres::Config,
    schema_name: &str,
    schema_ready: &mut bool,
) -> Result<Conn, postgres::Error> {
    let mut client = pg.connect(postgres::NoTls)?;
    if !*schema_ready {
        schema::create(&mut client, schema_name)?;
        *schema_ready = true;
        log::info!("sink: schema {schema_name:?} ready");
    }
    Conn::from_client(client, schema_name)
}

fn summary(st: &SinkStats, left: u64, dir: &std::path::Path) -> SinkSummary {
    SinkSummary {
        stats: st.snapshot(),
        left_in_spool: left,
        spool_path: dir.join("spool.jsonl"),
    }
}
