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
//! Before all of these, a **pause** asked for by the operator ([`super::pause`])
//! wins: the writer drops its connection and spools what it holds exactly as in an
//! outage, says it is parked, and waits for the resume; nothing is written meanwhile.
//!
//! The loop ends when the input is closed and drained, or, while the database is
//! down, `shutdown_grace` after the input closed, or at once while paused, leaving
//! the rest in the spool for the next start.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::buffer::{self, Buffer};
use super::conn::{self, Conn};
use super::health::{BreakerState, Event};
use super::monitor::{self, Monitor};
use super::{SinkConfig, SinkStats, SinkSummary};
use crate::log_limit::LogLimiter;
use crate::model::unix_micros;

pub(super) fn writer_loop(
    cfg: &SinkConfig,
    st: &SinkStats,
    buffer: &Buffer,
    pg: &super::Db,
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
    let mut err_log = LogLimiter::every(Duration::from_secs(5));
    let mut evac_log = LogLimiter::every(Duration::from_secs(5));
    let idle = Duration::from_millis(200);
    let mut parked = false;
    loop {
        if st.pause.is_requested() {
            conn = None;
            if !parked {
                parked = true;
                log::info!(
                    "sink: paused; nothing is written until resumed, records go to the spool {}",
                    spool_dir.display()
                );
            }
            to_spool(buffer, held.take(), &mut evac_log);
            st.pause.set_parked(true);
            if buffer.is_closed() {
                return leave_in_spool(st, buffer, &spool_dir, "the sink is paused");
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
            to_spool(buffer, held.take(), &mut evac_log);
            if buffer.is_closed() {
                let c = *closed_at.get_or_insert_with(Instant::now);
                if c.elapsed() >= cfg.shutdown_grace {
                    return leave_in_spool(st, buffer, &spool_dir, "the database is down");
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
            match conn::open(pg, &cfg.schema, &mut schema_ready) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if err_log.check(Instant::now()).is_some() {
                        log::warn!(
                            "sink: cannot open the write connection: {}",
                            pg.describe(&e)
                        );
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
                if let buffer::Source::Spool { .. } = batch.source {
                    st.records_replayed.fetch_add(n as u64, Ordering::Relaxed);
                }
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
                st.records_committed.fetch_add(n as u64, Ordering::Relaxed);
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
            Err(e) => {
                st.retries.fetch_add(1, Ordering::Relaxed);
                let class = e.class();
                if err_log.check(Instant::now()).is_some() {
                    log::warn!(
                        "sink: batch of {n} failed ({class:?}: {}); keeping it for a retry after \
                         recovery",
                        e.message()
                    );
                }
                if e.is_schema() {
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

fn summary(st: &SinkStats, left: u64, dir: &Path) -> SinkSummary {
    SinkSummary {
        stats: st.snapshot(),
        left_in_spool: left,
        spool_path: dir.join("spool.jsonl"),
    }
}
