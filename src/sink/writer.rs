//! The writer loop, on the `sink-writer` thread: it owns the write connection and
//! moves records from the [`Buffer`] to the database, pausing while the breaker is
//! open.
//!
//! Each turn, by the breaker's state:
//!
//! * **closed**: open the connection if needed (creating the schema the first time it
//!   is reachable), *pull* up to the monitor's batch size (waiting at most `linger`
//!   for the batch to fill), write it ([`Conn::write_batch`]), commit it in the
//!   buffer and feed the write time to the [`Monitor`], which picks the next batch
//!   size. A failed write keeps the batch, counts a retry and trips the breaker; a
//!   statement timeout also shrinks the batch; a vanished schema is recreated.
//! * **open**: drop the connection and move the held batch and the memory buffer to
//!   the spool (fsync'd), so a killed process loses nothing; new records then go
//!   straight to disk. After recovery the writer resumes with that same batch, at the
//!   head of the spool.
//! * **half-open** right after a failure: wait for the health checker's probe.
//!
//! A reachable database that refuses writes for now (disk full, a server error of
//! its own) is waited out with back-off, the records in the spool meanwhile and the
//! reason in the sink's state (`waiting`). A permanent problem (schema mismatch,
//! privileges, read-only, login) stops the writer: what it holds is spooled, the
//! failure recorded, and the sink ends with [`SinkError::Database`].
//!
//! The loop runs under [`keep_alive`]: the batch it holds lives outside the unwind,
//! so after a panic it is written again; a writer that keeps panicking gives up with
//! its records spooled.
//! Before all of these, a **pause** asked for by the operator ([`super::pause`])
//! wins: the writer drops its connection and spools what it holds exactly as in an
//! outage, says it is parked, and waits for the resume; nothing is written meanwhile.
//!
//! The loop ends when the input is closed and drained (at once when nothing is
//! left, whatever the database's state), or, while the database is down and records
//! wait, `shutdown_grace` after the input closed, or at once while paused, leaving
//! the rest in the spool for the next start.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::buffer::{self, Buffer};
use super::conn::{self, Conn};
use super::drain::Drain;
use super::error::{ErrorClass, Who};
use super::health::{BreakerState, Event};
use super::monitor::{self, Monitor};
use super::{SinkConfig, SinkError, SinkFailure, SinkStats, SinkSummary, SinkThread};
use crate::log_limit::LogLimiter;
use crate::model::{unix_micros, Record, SeqGen};
use crate::supervise::{keep_alive, Backoff};

/// What the writer keeps across a restart after a panic: above all the batch it
/// holds, so a panic loses no record (it is written again, or spooled if the writer
/// gives up).
#[derive(Debug)]
pub(super) struct WriterState {
    held: Option<buffer::Batch>,
    monitor: Monitor,
    schema_ready: bool,
    seq: Arc<SeqGen>,
}

impl WriterState {
    /// A fresh writer: nothing held, the monitor at its first batch size;
    /// `seq` is raised above the highest stored `ingest_seq` once the tables are
    /// checked (unless `schema_ready`: the start-up check did both).
    pub(super) fn new(cfg: &SinkConfig, seq: Arc<SeqGen>, schema_ready: bool) -> WriterState {
        WriterState {
            held: None,
            monitor: Monitor::new(
                cfg.batch_min,
                cfg.batch_max,
                cfg.batch_initial,
                cfg.target_write,
            ),
            schema_ready,
            seq,
        }
    }
}

/// The `sink-writer` thread: [`writer_loop`] under [`keep_alive`], with its
/// [`WriterState`] outside the unwind. A writer that keeps panicking gives up: the
/// batch it held and the memory buffer go to the spool, the failure is recorded for
/// the pipeline, and it waits for the input to close (records keep going to the
/// spool meanwhile).
pub(super) fn writer_thread(
    cfg: &SinkConfig,
    st: &SinkStats,
    buffer: &Buffer,
    pg: &super::Db,
    drain: &Drain,
    mut state: WriterState,
) -> Result<SinkSummary, SinkError> {
    let who = Who::new(&pg.config, &cfg.schema);
    let mut outcome = None;
    let mut runs = 0u64;
    let kept = keep_alive("sink writer", &cfg.restart, || {
        if runs > 0 {
            st.writer_restarts.fetch_add(1, Ordering::Relaxed);
        }
        runs += 1;
        outcome = Some(writer_loop(cfg, st, buffer, pg, drain, &who, &mut state));
    });
    match (kept, outcome) {
        (Ok(()), Some(r)) => r,
        (Ok(()), None) => Err(SinkError::Panicked(SinkThread::Writer)),
        (Err(e), _) => {
            let cause = e.to_string();
            st.fail(SinkFailure {
                thread: SinkThread::Writer,
                cause: cause.clone(),
                problem: None,
            });
            park(st, buffer, state.held.take());
            Err(SinkError::WriterFailed { cause })
        }
    }
}

/// Tells [`SinkConfig::committed`], when set, the seqs of a batch just committed. A
/// listener that has gone (its pipeline stopping) is not an error.
fn notify_committed(cfg: &SinkConfig, records: &[Record]) {
    if let Some(tx) = &cfg.committed {
        let _ = tx.send(records.iter().map(|r| r.tweet.seq).collect());
    }
}

/// The writer can no longer write: spools what it holds and the memory buffer
/// (retrying until the disk takes it), then waits for the input to close while
/// new records go straight to the spool, and fsyncs it.
fn park(st: &SinkStats, buffer: &Buffer, held: Option<buffer::Batch>) {
    st.breaker.apply(Event::WriteFailed);
    let mut held = held;
    let mut log = LogLimiter::every(Duration::from_secs(10));
    loop {
        match buffer.evacuate(held.take()) {
            Ok(n) => {
                log::info!("sink: moved {n} records to the spool; the writer has stopped");
                break;
            }
            Err(e) => {
                if log.check(Instant::now()).is_some() {
                    log::error!("sink: cannot move the buffer to the spool: {e}; retrying");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    while !buffer.is_closed() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = buffer.sync() {
        log::error!("sink: fsync of the spool failed: {e}");
    }
}

fn writer_loop(
    cfg: &SinkConfig,
    st: &SinkStats,
    buffer: &Buffer,
    pg: &super::Db,
    drain: &Drain,
    who: &Who,
    state: &mut WriterState,
) -> Result<SinkSummary, SinkError> {
    st.batch_size
        .store(state.monitor.batch_size() as u64, Ordering::Relaxed);
    let spool_dir = buffer.spool_dir();
    let mut conn: Option<Conn> = None;
    let mut down_since: Option<Instant> = None;
    let mut closed_at: Option<Instant> = None;
    // A reachable database that refuses writes for now (disk full …): wait with
    // back-off before the next try, the records in the spool meanwhile.
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut rng = rand::thread_rng();
    let mut err_log = LogLimiter::every(Duration::from_secs(5));
    let mut evac_log = LogLimiter::every(Duration::from_secs(5));
    let idle = Duration::from_millis(200);
    let mut parked = false;
    loop {
        if let Some(stop) = drain.stop_at(st.buffered.load(Ordering::Relaxed)) {
            // The drain deadline: no batch that would end after the stop point.
            let expected = Duration::from_micros(st.last_write_us.load(Ordering::Relaxed));
            if drain.was_cancelled() || Instant::now() + expected.mul_f64(1.5) >= stop {
                return Ok(leave_to_spool(st, buffer, state.held.take(), &spool_dir));
            }
        }
        if state.held.is_none() && buffer.is_finished() {
            // Input closed and nothing left to write or spool: end now, also while
            // the database is down or the writer waits to retry (no grace to wait).
            break;
        }
        if st.pause.is_requested() {
            conn = None;
            if !parked {
                parked = true;
                log::info!(
                    "sink: paused; nothing is written until resumed, records go to the spool {}",
                    spool_dir.display()
                );
            }
            to_spool(buffer, state.held.take(), &mut evac_log);
            st.pause.set_parked(true);
            if buffer.is_closed() {
                return Ok(leave_in_spool(st, buffer, &spool_dir, "the sink is paused"));
            }
            st.pause.wait_resumed(idle);
            continue;
        }
        if parked {
            parked = false;
            st.pause.set_parked(false);
            buffer.set_durable(false);
            log::info!("sink: resumed; {} records waiting", buffer.len());
        }
        if let Some(at) = retry_at {
            if Instant::now() < at {
                if buffer.is_closed()
                    && closed_at.get_or_insert_with(Instant::now).elapsed() >= cfg.shutdown_grace
                {
                    return Ok(leave_in_spool(
                        st,
                        buffer,
                        &spool_dir,
                        "the database refuses writes",
                    ));
                }
                std::thread::sleep(at.saturating_duration_since(Instant::now()).min(idle));
                continue;
            }
            retry_at = None;
            buffer.set_durable(false);
        }
        let state_now = st.breaker.state();
        if state_now == BreakerState::HalfOpen && down_since.is_none() {
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
        if state_now != BreakerState::Closed {
            conn = None;
            if down_since.is_none() {
                down_since = Some(Instant::now());
                log::warn!(
                    "sink: database unavailable; writer paused, records go to the spool {}",
                    spool_dir.display()
                );
            }
            to_spool(buffer, state.held.take(), &mut evac_log);
            if buffer.is_closed() {
                let c = *closed_at.get_or_insert_with(Instant::now);
                if c.elapsed() >= cfg.shutdown_grace {
                    return Ok(leave_in_spool(
                        st,
                        buffer,
                        &spool_dir,
                        "the database is down",
                    ));
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
            let checked = state.schema_ready;
            match conn::open(pg, &cfg.schema, &mut state.schema_ready, who) {
                Ok(mut c) => {
                    if !checked {
                        // The database was down at start: make sure new records
                        // still win over what is stored.
                        match c.stored_seq_max(&cfg.schema) {
                            Ok(max) => raise_seq(&state.seq, max),
                            Err(e) => log::warn!(
                                "sink: cannot read the highest stored ingest_seq: {}",
                                e.message()
                            ),
                        }
                    }
                    conn = Some(c)
                }
                Err(e) => {
                    if let Some(problem) = e.problem(who) {
                        return Err(stop(st, buffer, state, problem));
                    }
                    if err_log.check(Instant::now()).is_some() {
                        log::warn!("sink: cannot open the write connection: {}", e.message());
                    }
                    st.breaker.apply(Event::WriteFailed);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        #[cfg(any(test, feature = "testkit"))]
        {
            c.fault = cfg.fault.clone();
        }
        if state.held.is_none() {
            match buffer.pull(state.monitor.batch_size(), cfg.linger, idle) {
                Some(b) => state.held = Some(b),
                None => break,
            }
        }
        let Some(batch) = state.held.as_ref() else {
            continue;
        };
        if batch.records.is_empty() {
            if let Some(b) = state.held.take() {
                if let buffer::Source::Spool { .. } = b.source {
                    // Only unreadable lines (counted and saved): nothing to write.
                    buffer.commit(b.source);
                }
            }
            continue;
        }
        #[cfg(any(test, feature = "testkit"))]
        if let Some(f) = &cfg.fault {
            if f.batch_panics(batch.records.iter().map(|r| r.tweet.seq)) {
                panic!(
                    "test fault: writer panic on a batch of {}",
                    batch.records.len()
                );
            }
        }
        let n = batch.records.len();
        let t0 = Instant::now();
        drain.begin(c.cancel_token());
        let written = c.write_batch(&batch.records, &spool_dir);
        drain.end();
        match written {
            Ok(o) => {
                let el = t0.elapsed();
                let Some(batch) = state.held.take() else {
                    continue;
                };
                if let buffer::Source::Spool { .. } = batch.source {
                    st.records_replayed.fetch_add(n as u64, Ordering::Relaxed);
                }
                buffer.commit(batch.source);
                notify_committed(cfg, &batch.records);
                st.set_waiting(None);
                backoff.reset();
                let monitor = &mut state.monitor;
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
                let mut by_stream = [0u64; 2];
                for r in &batch.records {
                    st.latency
                        .record(now.saturating_sub(r.tweet.received_unix_us));
                    // Stream 2 is `/tweets/2`; anything else counts as stream 1.
                    by_stream[usize::from(r.tweet.stream == 2)] += 1;
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
                let rejected = o.records_rejected.min(n as u64);
                st.records_committed
                    .fetch_add(n as u64 - rejected, Ordering::Relaxed);
                st.records_rejected.fetch_add(rejected, Ordering::Relaxed);
                for (counter, n) in st.committed_streams.iter().zip(by_stream) {
                    counter.fetch_add(n, Ordering::Relaxed);
                }
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
            Err(e)
                if drain.was_cancelled()
                    && e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) =>
            {
                // Cancelled at the drain's stop point: rolled back; the batch is still
                // held and is spooled at the top of the loop.
                log::info!("sink: drain deadline: the batch of {n} being written was cancelled");
            }
            Err(e) => {
                let class = e.class();
                if class == ErrorClass::Permanent {
                    let problem = e.db().and_then(|d| who.problem(d, false));
                    if let Some(problem) = problem {
                        return Err(stop(st, buffer, state, problem));
                    }
                }
                st.retries.fetch_add(1, Ordering::Relaxed);
                conn = None;
                match class {
                    ErrorClass::DiskFull | ErrorClass::Busy => {
                        let pause = backoff.next_wait(None, &mut rng);
                        let why = if class == ErrorClass::DiskFull {
                            format!(
                                "the database server's disk is full ({}); waiting for space, \
                                 records are kept in the spool",
                                e.message()
                            )
                        } else {
                            format!(
                                "the database failed the write ({}); retrying with back-off, \
                                 records are kept in the spool",
                                e.message()
                            )
                        };
                        if err_log.check(Instant::now()).is_some() {
                            log::warn!("sink: {why}; next try in {:.1} s", pause.as_secs_f64());
                        }
                        st.set_waiting(Some(why));
                        if let Err(e) = buffer.evacuate(state.held.take()) {
                            if evac_log.check(Instant::now()).is_some() {
                                log::error!("sink: cannot move the buffer to the spool: {e}");
                            }
                        }
                        retry_at = Some(Instant::now() + pause);
                    }
                    _ => {
                        if err_log.check(Instant::now()).is_some() {
                            log::warn!(
                                "sink: batch of {n} failed ({class:?}: {}); keeping it for a \
                                 retry after recovery",
                                e.message()
                            );
                        }
                        if e.is_schema() {
                            state.schema_ready = false;
                        }
                        if e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) {
                            // statement_timeout: the batch is too big for the database now.
                            state.monitor.timed_out();
                            st.batch_size
                                .store(state.monitor.batch_size() as u64, Ordering::Relaxed);
                        }
                        st.breaker.apply(Event::WriteFailed);
                    }
                }
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
    Ok(summary(st, left, &spool_dir))
}

/// A permanent database problem: records the failure (so the pipeline stops),
/// spools what is held and waits for the input to close.
fn stop(
    st: &SinkStats,
    buffer: &Buffer,
    state: &mut WriterState,
    problem: super::DatabaseProblem,
) -> SinkError {
    st.fail(SinkFailure {
        thread: SinkThread::Writer,
        cause: problem.to_string(),
        problem: Some(problem.clone()),
    });
    park(st, buffer, state.held.take());
    SinkError::Database(problem)
}

/// Raises the sequence above `max` (the highest stored), saying so when it moves.
fn raise_seq(seq: &SeqGen, max: Option<u64>) {
    if let Some(max) = max {
        let next = max.saturating_add(1);
        if seq.raise_to(next) {
            log::warn!(
                "sink: the database holds ingest_seq up to {max}, above this run's sequence; \
                 new records continue from {next} (those read while it was down may lose to \
                 stored versions of the same ids)"
            );
        }
    }
}

/// Puts `held` back and moves the memory buffer to the spool (fsync'd): the
/// database is down or the sink is paused.
fn to_spool(buffer: &Buffer, held: Option<buffer::Batch>, evac_log: &mut LogLimiter) {
    match buffer.evacuate(held) {
        Ok(n) if n > 0 => log::info!("sink: moved {n} buffered records to the spool"),
        Ok(_) => {}
        Err(e) => {
            if evac_log.check(Instant::now()).is_some() {
                log::error!("sink: cannot move the buffer to the spool: {e}; retrying");
            }
        }
    }
}

/// The input closed while nothing can be written (`why`): the rest stays in the
/// spool, fsync'd, for the next start.
fn leave_in_spool(st: &SinkStats, buffer: &Buffer, spool_dir: &Path, why: &str) -> SinkSummary {
    if let Err(e) = buffer.sync() {
        log::error!("sink: fsync of the spool failed: {e}");
    }
    let left = buffer.len();
    log::warn!(
        "sink: input closed while {why}; {left} records are in the spool {} (fsync'd) and \
         are replayed at the next start",
        spool_dir.join("spool.jsonl").display()
    );
    summary(st, left, spool_dir)
}

/// The drain's stop point: the held batch and the memory buffer go to the spool
/// (fsync'd); what arrives later goes there too (durable mode).
fn leave_to_spool(
    st: &SinkStats,
    buffer: &Buffer,
    held: Option<buffer::Batch>,
    spool_dir: &Path,
) -> SinkSummary {
    let t = Instant::now();
    let moved = match buffer.evacuate(held) {
        Ok(n) => n,
        Err(e) => {
            log::error!("sink: drain deadline: cannot move the buffer to the spool: {e}");
            0
        }
    };
    let left = buffer.len();
    if left > 0 {
        log::warn!(
            "sink: drain deadline: {left} records not yet in the database are in the spool {} (fsync'd; \
             {moved} moved there in {:.0} ms) and are replayed at the next start",
            spool_dir.join("spool.jsonl").display(),
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    summary(st, left, spool_dir)
}

fn summary(st: &SinkStats, left: u64, dir: &Path) -> SinkSummary {
    SinkSummary {
        stats: st.snapshot(),
        left_in_spool: left,
        spool_path: dir.join("spool.jsonl"),
    }
}
