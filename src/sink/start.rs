//! Starting the sink: the spool opened and checked against its target, the
//! tables checked before a single record, the sequence placed above what is
//! stored, then the health, writer and ingest threads spawned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::buffer::spool::{self, OpenReport, Spool};
use super::buffer::{Buffer, Limits};
use super::config::SinkConfig;
use super::db::connect::{pg_config, writer_pg_config, Db};
use super::db::error::{self, Who};
use super::db::schema;
use super::drain::Drain;
use super::failure::{SinkError, SinkThread};
use super::health::{self, Breaker};
use super::stats::SinkStats;
use super::writer::{writer_thread, WriterState};
use super::Sink;
use crate::model::{unix_micros, Record, SeqGen};

/// Starts the sink. Fails only on a bad URL, an unusable spool directory or a thread
/// that cannot start; a database that is down is waited for.
pub fn spawn_sink(cfg: SinkConfig, input: Receiver<Record>) -> Result<Sink, SinkError> {
    let writer_pg = writer_pg_config(&cfg)?;
    let health_pg = pg_config(
        &cfg,
        Duration::from_secs(2).max(cfg.health_interval * 4),
        "tweetflow-health",
    )?;
    let (mut spool, report) = open_spool(&cfg, &writer_pg)?;
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
    let stored = preflight_within(&cfg, &who)?;
    let seq = Arc::new(SeqGen::starting_at(first_seq(stored, &report)));
    let limits = Limits {
        memory_bytes: cfg.buffer_bytes,
        batch_bytes: cfg.batch_max_bytes,
        spool_max_bytes: cfg.spool_max_bytes,
        budget: Arc::clone(&cfg.budget),
        when_full: cfg.when_full,
    };
    let buffer = Arc::new(Buffer::new(
        spool,
        cfg.buffer_records,
        limits,
        Arc::clone(&stats),
    ));
    let stop_health = Arc::new(AtomicBool::new(false));
    let health = spawn_health(
        Arc::clone(&stats),
        health::CheckerConfig {
            db: health_pg,
            interval: cfg.health_interval,
            db_timeout: cfg.db_timeout,
        },
        Arc::clone(&stop_health),
    )
    .map_err(|source| SinkError::Spawn {
        thread: SinkThread::Health,
        source,
    })?;
    let drain = Arc::new(Drain::default());
    let state = WriterState::new(&cfg, Arc::clone(&seq), stored.is_some());
    let writer = spawn_writer(cfg, &stats, &buffer, writer_pg, &drain, state);
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
    let ingest = match spawn_ingest(&stats, &buffer, input) {
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

/// Opens the spool and checks that it belongs to this target: a spool of another
/// target that holds records is refused unless [`SinkConfig::adopt_spool`].
fn open_spool(cfg: &SinkConfig, writer_pg: &Db) -> Result<(Spool, OpenReport), SinkError> {
    let spool_err = |source| SinkError::Spool {
        path: cfg.spool_dir.clone(),
        source,
    };
    let sync_dir = |d: &std::path::Path| match cfg.fault.as_ref().and_then(|h| h.sync_dir(d)) {
        Some(hooked) => hooked,
        None => spool::fsync_dir(d),
    };
    let (spool, report) = Spool::open(&cfg.spool_dir, &sync_dir).map_err(spool_err)?;
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
    Ok((spool, report))
}

/// The first `ingest_seq` of this run: above the highest stored (`stored`, from
/// [`preflight`]) and above the records waiting in the spool; the wall clock when
/// the database could not be asked.
fn first_seq(stored: Option<Option<u64>>, report: &OpenReport) -> u64 {
    let spool_next = report.max_seq.map_or(0, |m| m.saturating_add(1));
    let first = match stored {
        Some(max) => max.map_or(0, |m| m.saturating_add(1)).max(spool_next),
        None => unix_micros().max(spool_next),
    };
    first.max(1)
}

/// The `sink-writer` thread.
fn spawn_writer(
    cfg: SinkConfig,
    stats: &Arc<SinkStats>,
    buffer: &Arc<Buffer>,
    pg: Db,
    drain: &Arc<Drain>,
    state: WriterState,
) -> std::io::Result<JoinHandle<Result<super::SinkSummary, SinkError>>> {
    let st = Arc::clone(stats);
    let buf = Arc::clone(buffer);
    let drain = Arc::clone(drain);
    crate::stats::spawn_thread("sink-writer", None, move || {
        let r = writer_thread(&cfg, &st, &buf, &pg, &drain, state);
        st.writer_done.store(true, Ordering::Relaxed);
        r
    })
}

/// The `sink-ingest` thread: input channel → buffer; closes the buffer when the
/// channel disconnects.
fn spawn_ingest(
    stats: &Arc<SinkStats>,
    buffer: &Arc<Buffer>,
    input: Receiver<Record>,
) -> std::io::Result<JoinHandle<()>> {
    let st = Arc::clone(stats);
    let buf = Arc::clone(buffer);
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

/// [`preflight`] on a thread of its own, waited for at most the connect timeout
/// plus `db_timeout`: a database that accepts the connection and then answers
/// nothing does not hold the start (the writer checks the tables once it can).
/// The thread is left behind; it ends when the connection does.
fn preflight_within(cfg: &SinkConfig, who: &Who) -> Result<Option<Option<u64>>, SinkError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (c, w) = (cfg.clone(), who.clone());
    let spawned = std::thread::Builder::new()
        .name("sink-check".into())
        .spawn(move || {
            // Nobody waits any more once the deadline passed.
            let _ = tx.send(preflight(&c, &w));
        });
    if let Err(e) = spawned {
        log::warn!("sink: cannot start the start-up check on a thread ({e}); checking inline");
        return preflight(cfg, who);
    }
    match rx.recv_timeout(cfg.connect_timeout + cfg.db_timeout) {
        Ok(r) => r,
        Err(_) => {
            log::warn!(
                "sink: the database cannot be reached at start ({}); the tables are checked \
                 once it can",
                super::health::silence_reason(cfg.db_timeout)
            );
            Ok(None)
        }
    }
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
    cfg: health::CheckerConfig,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    // The checker needs an `Arc<Breaker>`; the breaker lives in the stats, so wrap a
    // forwarding view: share the whole stats Arc.
    health::spawn_checker(BreakerRef(stats), cfg, stop)
}

/// An `Arc<SinkStats>` seen as the breaker it holds.
#[derive(Debug, Clone)]
struct BreakerRef(Arc<SinkStats>);

impl std::ops::Deref for BreakerRef {
    type Target = Breaker;
    fn deref(&self) -> &Breaker {
        &self.0.breaker
    }
}
