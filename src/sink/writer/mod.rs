//! The writer loop, on the `sink-writer` thread: it owns the write connection and
//! moves records from the [`Buffer`] to the database, pausing while the breaker is
//! open.
//!
//! Each turn, by the breaker's state:
//!
//! * **closed**: open the connection if needed (creating the schema the first time it
//!   is reachable), *pull* up to the monitor's batch size (waiting at most `linger`
//!   for the batch to fill), write it ([`Conn::write_batch`](super::db::batch::Conn::write_batch)), commit it in the
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
//! What to do next is decided by a pure policy ([`policy::next`]) from what the
//! writer observes; the [`Writer`] here carries it out, its database behind
//! [`Database`] ([`database::Postgres`], or a fake in the tests).
//!
//! The loop runs under [`keep_alive`]: the batch it holds lives outside the unwind,
//! so after a panic it is written again; a writer that keeps panicking gives up with
//! its records spooled.
//! Before all of these, a **pause** asked for by the operator ([`super::pause`])
//! wins: the writer drops its connection and spools what it holds exactly as in an
//! outage, says it is parked, and waits for the resume; nothing is written meanwhile.
//!
//! The loop ends when the input is closed and drained (at once when nothing is
//! left, whatever the database's state), or, while the database is down (or refuses
//! writes) and records wait, `shutdown_grace` after its first wait with the input
//! closed, or at once while paused, leaving the rest in the spool for the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod database;
mod policy;
#[cfg(test)]
mod tests;

use self::database::{Database, Postgres, Refusal};
use self::policy::{Held, Last, Observed, Step, Why};
use super::buffer::spool::spool_file;
use super::buffer::{self, Buffer};
use super::db::batch::WriteOutcome;
use super::drain::Drain;
use super::health::Event;
use super::monitor::{self, Monitor};
use super::{
    DatabaseProblem, SinkConfig, SinkError, SinkFailure, SinkStats, SinkSummary, SinkThread,
};
use crate::log_limit::LogLimiter;
use crate::model::{unix_micros, Record, SeqGen};
use crate::supervise::{keep_alive, Backoff};

/// How long the writer waits at most for one thing (a probe, a resume, a record)
/// before it looks again.
const IDLE: Duration = Duration::from_millis(200);

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

/// What one run of the loop keeps; a restart after a panic begins it afresh (and
/// drops the connection).
#[derive(Debug)]
struct Run {
    /// What the step before did.
    last: Last,
    /// The failure `last` refers to.
    refusal: Option<Refusal>,
    /// When the writer saw the outage begin.
    down_since: Option<Instant>,
    /// When the grace began (the first wait with the input closed).
    closed_at: Option<Instant>,
    /// A reachable database that refuses writes for now (disk full …): the next try
    /// waits until then, the records in the spool meanwhile.
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// Parked for the operator's pause.
    parked: bool,
    err_log: LogLimiter,
    evac_log: LogLimiter,
}

impl Run {
    fn new() -> Run {
        Run {
            last: Last::Turn,
            refusal: None,
            down_since: None,
            closed_at: None,
            retry_at: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            parked: false,
            err_log: LogLimiter::every(Duration::from_secs(5)),
            evac_log: LogLimiter::every(Duration::from_secs(5)),
        }
    }
}

/// The `sink-writer` thread: the [`Writer`] on PostgreSQL.
pub(super) fn writer_thread(
    cfg: &SinkConfig,
    st: &SinkStats,
    buffer: &Buffer,
    pg: &super::Db,
    drain: &Drain,
    state: WriterState,
) -> Result<SinkSummary, SinkError> {
    let db = Postgres::new(cfg, pg, drain, buffer.spool_dir());
    supervise(Writer::new(cfg, st, buffer, drain, db, state))
}

/// Runs the writer under [`keep_alive`], its [`WriterState`] outside the unwind. A
/// writer that keeps panicking gives up: the batch it held and the memory buffer
/// go to the spool, the failure is recorded for the pipeline, and it waits for the
/// input to close (records keep going to the spool meanwhile).
fn supervise<D: Database>(mut w: Writer<'_, D>) -> Result<SinkSummary, SinkError> {
    let mut outcome = None;
    let mut runs = 0u64;
    let (cfg, st) = (w.cfg, w.st);
    let kept = keep_alive("sink writer", &cfg.restart, || {
        if runs > 0 {
            st.writer_restarts.fetch_add(1, Ordering::Relaxed);
        }
        runs += 1;
        outcome = Some(w.run());
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
            park(st, w.buffer, w.state.held.take());
            Err(SinkError::WriterFailed { cause })
        }
    }
}

/// The writer: the state it owns, and the I/O that carries out the policy's steps.
struct Writer<'a, D: Database> {
    cfg: &'a SinkConfig,
    st: &'a SinkStats,
    buffer: &'a Buffer,
    drain: &'a Drain,
    db: D,
    state: WriterState,
    run: Run,
    spool_dir: PathBuf,
}

impl<'a, D: Database> Writer<'a, D> {
    fn new(
        cfg: &'a SinkConfig,
        st: &'a SinkStats,
        buffer: &'a Buffer,
        drain: &'a Drain,
        db: D,
        state: WriterState,
    ) -> Writer<'a, D> {
        Writer {
            cfg,
            st,
            buffer,
            drain,
            db,
            state,
            run: Run::new(),
            spool_dir: buffer.spool_dir(),
        }
    }

    /// One run of the loop, until the writer ends (or panics).
    fn run(&mut self) -> Result<SinkSummary, SinkError> {
        self.run = Run::new();
        self.db.disconnect();
        show_batch_size(self.st, &self.state.monitor);
        loop {
            let o = self.observe();
            let step = policy::next(&o);
            self.run.last = Last::Turn;
            if let Some(end) = self.act(step, &o) {
                return end;
            }
        }
    }

    /// What the policy decides on.
    fn observe(&self) -> Observed {
        let stop_at = self.drain.stop_at(self.st.buffered.load(Ordering::Relaxed));
        Observed {
            now: Instant::now(),
            last: self.run.last,
            stop_at,
            drain_cancelled: self.drain.was_cancelled(),
            last_write: Duration::from_micros(self.st.last_write_us.load(Ordering::Relaxed)),
            finished: self.buffer.is_finished(),
            closed: self.buffer.is_closed(),
            closed_at: self.run.closed_at,
            grace: self.cfg.shutdown_grace,
            pause_requested: self.st.pause.is_requested(),
            parked: self.run.parked,
            retry_at: self.run.retry_at,
            breaker: self.st.breaker.state(),
            down: self.run.down_since.is_some(),
            connected: self.db.is_connected(),
            held: match &self.state.held {
                None => Held::Nothing,
                Some(b) if b.records.is_empty() => Held::Empty,
                Some(_) => Held::Records,
            },
        }
    }

    /// Carries out `step`; `Some` when the writer ends.
    fn act(&mut self, step: Step, o: &Observed) -> Option<Result<SinkSummary, SinkError>> {
        match step {
            Step::Drain => {
                let held = self.state.held.take();
                return Some(Ok(leave_to_spool(
                    self.st,
                    self.buffer,
                    held,
                    &self.spool_dir,
                )));
            }
            Step::Finish => return Some(Ok(self.finish())),
            Step::Leave(why) => return Some(Ok(self.leave(why))),
            Step::GiveUp => return Some(Err(self.give_up())),
            Step::Pause => {
                self.park_for_pause();
                self.st.pause.wait_resumed(IDLE);
            }
            Step::Resume => {
                self.run.parked = false;
                self.st.pause.set_parked(false);
                self.buffer.set_durable(false);
                log::info!("sink: resumed; {} records waiting", self.buffer.len());
            }
            Step::WaitRetry { until } => {
                self.start_grace();
                std::thread::sleep(until.saturating_duration_since(Instant::now()).min(IDLE));
            }
            Step::RetryDue => {
                self.run.retry_at = None;
                self.buffer.set_durable(false);
            }
            Step::WaitProbe => {
                self.db.disconnect();
                self.st.breaker.wait_closed(IDLE);
                self.start_grace();
            }
            Step::WaitDown { announce } => {
                self.go_down(announce);
                self.start_grace();
                self.st.breaker.wait_closed(IDLE);
            }
            Step::Recovered => {
                if let Some(t) = self.run.down_since.take() {
                    self.buffer.set_durable(false);
                    log::info!(
                        "sink: database back after {:.1} s; writer resumes ({} records waiting)",
                        t.elapsed().as_secs_f64(),
                        self.buffer.len()
                    );
                }
            }
            Step::Connect => self.connect(),
            Step::ConnectLater => {
                if let Some(r) = self.run.refusal.take() {
                    if self.run.err_log.check(Instant::now()).is_some() {
                        log::warn!("sink: cannot open the write connection: {}", r.message);
                    }
                }
                self.st.breaker.apply(Event::WriteFailed);
            }
            Step::Pull => {
                let size = self.state.monitor.batch_size();
                self.run.last = match self.buffer.pull(size, self.cfg.linger, IDLE) {
                    Some(b) => {
                        self.state.held = Some(b);
                        Last::Pulled
                    }
                    None => Last::InputEnded,
                };
            }
            Step::Discard => {
                if let Some(b) = self.state.held.take() {
                    if let buffer::Source::Spool { .. } = b.source {
                        // Only unreadable lines (counted and saved): nothing to write.
                        self.buffer.commit(b.source);
                    }
                }
            }
            Step::Write => self.write(),
            Step::Cancelled => {
                // Cancelled at the drain's stop point: rolled back; the batch is still
                // held and is spooled at the start of the next turn.
                log::info!(
                    "sink: drain deadline: the batch of {} being written was cancelled",
                    self.held_len()
                );
            }
            Step::BackOff => self.back_off(o.now),
            Step::Retry {
                recreate_schema,
                shrink,
            } => self.retry(recreate_schema, shrink),
        }
        None
    }

    fn held_len(&self) -> usize {
        self.state.held.as_ref().map_or(0, |b| b.records.len())
    }

    /// Starts the grace's clock if the input is closed and it has not started.
    fn start_grace(&mut self) {
        if self.buffer.is_closed() {
            self.run.closed_at.get_or_insert_with(Instant::now);
        }
    }

    /// The database is down: drop the connection, note the outage (saying so if
    /// `announce`), spool what is held and the memory buffer.
    fn go_down(&mut self, announce: bool) {
        self.db.disconnect();
        if self.run.down_since.is_none() {
            self.run.down_since = Some(Instant::now());
            if announce {
                log::warn!(
                    "sink: database unavailable; writer paused, records go to the spool {}",
                    self.spool_dir.display()
                );
            }
        }
        to_spool(self.buffer, self.state.held.take(), &mut self.run.evac_log);
    }

    /// The operator's pause: drop the connection, spool, say the writer is parked.
    fn park_for_pause(&mut self) {
        self.db.disconnect();
        if !self.run.parked {
            self.run.parked = true;
            log::info!(
                "sink: paused; nothing is written until resumed, records go to the spool {}",
                self.spool_dir.display()
            );
        }
        to_spool(self.buffer, self.state.held.take(), &mut self.run.evac_log);
        self.st.pause.set_parked(true);
    }

    /// The input closed while nothing can be written: the rest stays in the spool.
    fn leave(&mut self, why: Why) -> SinkSummary {
        let why = match why {
            Why::Paused => {
                self.park_for_pause();
                "the sink is paused"
            }
            Why::Refused => "the database refuses writes",
            Why::Down { announce } => {
                self.go_down(announce);
                "the database is down"
            }
        };
        leave_in_spool(self.st, self.buffer, &self.spool_dir, why)
    }

    /// Input closed and drained: fsync the spool, sum up.
    fn finish(&self) -> SinkSummary {
        self.buffer.sync_or_log();
        let left = self.buffer.len();
        log::info!(
            "sink: input closed and drained; {} records committed in {} batches",
            self.st.records_committed.load(Ordering::Relaxed),
            self.st.batches.load(Ordering::Relaxed)
        );
        summary(self.st, left, &self.spool_dir)
    }

    /// A permanent database problem: records the failure (so the pipeline stops),
    /// spools what is held and waits for the input to close.
    fn give_up(&mut self) -> SinkError {
        let problem = match self.run.refusal.take() {
            Some(Refusal {
                problem: Some(p), ..
            }) => p,
            Some(r) => DatabaseProblem::Other { message: r.message },
            None => DatabaseProblem::Other {
                message: "unknown".into(),
            },
        };
        self.st.fail(SinkFailure {
            thread: SinkThread::Writer,
            cause: problem.to_string(),
            problem: Some(problem.clone()),
        });
        park(self.st, self.buffer, self.state.held.take());
        SinkError::Database(problem)
    }

    /// Opens the write connection; the first time the schema is checked, raises
    /// the sequence above what is stored.
    fn connect(&mut self) {
        let checked = self.state.schema_ready;
        let st = self.st;
        let _wait = st.breaker.writer_waits();
        match self.db.connect(&mut self.state.schema_ready) {
            Ok(()) => {
                if !checked {
                    // The database was down at start: make sure new records still
                    // win over what is stored.
                    match self.db.stored_seq_max() {
                        Ok(max) => raise_seq(&self.state.seq, max),
                        Err(e) => {
                            log::warn!("sink: cannot read the highest stored ingest_seq: {e}")
                        }
                    }
                }
                self.run.last = Last::Connected;
            }
            Err(r) => {
                self.run.last = Last::ConnectFailed(r.failure());
                self.run.refusal = Some(r);
            }
        }
    }

    /// Writes the held batch; on success commits it and counts it.
    fn write(&mut self) {
        let Some(batch) = self.state.held.as_ref() else {
            return;
        };
        let st = self.st;
        let _wait = st.breaker.writer_waits();
        if batch.source == buffer::Source::Memory {
            // Reachable by the drain should the server never answer.
            self.drain.hold(batch.records.clone());
        }
        let t0 = Instant::now();
        let written = self.db.write(&batch.records);
        self.drain.release();
        match written {
            Ok(o) => {
                let elapsed = t0.elapsed();
                if let Some(batch) = self.state.held.take() {
                    let from_spool = matches!(batch.source, buffer::Source::Spool { .. });
                    self.buffer.commit(batch.source);
                    notify_committed(self.cfg, &batch.records);
                    self.st.set_waiting(None);
                    self.run.backoff.reset();
                    count_write(
                        self.st,
                        &mut self.state.monitor,
                        Written {
                            records: &batch.records,
                            from_spool,
                            elapsed,
                            outcome: &o,
                        },
                    );
                }
            }
            Err(r) => {
                self.run.last = Last::WriteFailed(r.failure());
                self.run.refusal = Some(r);
            }
        }
    }

    /// The database refuses writes for now: spool, wait with back-off.
    fn back_off(&mut self, now: Instant) {
        self.st.retries.fetch_add(1, Ordering::Relaxed);
        self.db.disconnect();
        let Some(r) = self.run.refusal.take() else {
            return;
        };
        let pause = self.run.backoff.next_wait(None, &mut rand::thread_rng());
        let why = if r.class == super::ErrorClass::DiskFull {
            format!(
                "the database server's disk is full ({}); waiting for space, records are \
                 kept in the spool",
                r.message
            )
        } else {
            format!(
                "the database failed the write ({}); retrying with back-off, records are kept \
                 in the spool",
                r.message
            )
        };
        if self.run.err_log.check(now).is_some() {
            log::warn!("sink: {why}; next try in {:.1} s", pause.as_secs_f64());
        }
        self.st.set_waiting(Some(why));
        if let Err(e) = self.buffer.evacuate(self.state.held.take()) {
            if self.run.evac_log.check(Instant::now()).is_some() {
                log::error!("sink: cannot move the buffer to the spool: {e}");
            }
        }
        self.run.retry_at = Some(Instant::now() + pause);
    }

    /// The write failed (connection, timeout, schema gone): keep the batch for a
    /// retry after recovery, trip the breaker.
    fn retry(&mut self, recreate_schema: bool, shrink: bool) {
        self.st.retries.fetch_add(1, Ordering::Relaxed);
        self.db.disconnect();
        if let Some(r) = self.run.refusal.take() {
            if self.run.err_log.check(Instant::now()).is_some() {
                log::warn!(
                    "sink: batch of {} failed ({:?}: {}); keeping it for a retry after recovery",
                    self.held_len(),
                    r.class,
                    r.message
                );
            }
        }
        if recreate_schema {
            self.state.schema_ready = false;
        }
        if shrink {
            // statement_timeout: the batch is too big for the database now.
            self.state.monitor.timed_out();
            show_batch_size(self.st, &self.state.monitor);
        }
        self.st.breaker.apply(Event::WriteFailed);
    }
}

/// Tells [`SinkConfig::committed`], when set, the seqs of a batch just committed
/// (rejected records included: they are in `rejected.jsonl`). A listener that has gone
/// (its pipeline stopping) is not an error.
fn notify_committed(cfg: &SinkConfig, records: &[Record]) {
    if let Some(tx) = &cfg.committed {
        let _ = tx.send(records.iter().map(|r| r.tweet.seq).collect());
    }
}

/// A committed batch, as counted.
struct Written<'a> {
    records: &'a [Record],
    from_spool: bool,
    elapsed: Duration,
    outcome: &'a WriteOutcome,
}

/// Counts a committed batch: the one place the writer's counters move after a
/// write, and the monitor hears of its time.
fn count_write(st: &SinkStats, monitor: &mut Monitor, w: Written<'_>) {
    let (n, el, o) = (w.records.len(), w.elapsed, w.outcome);
    if w.from_spool {
        st.records_replayed.fetch_add(n as u64, Ordering::Relaxed);
    }
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
    for r in w.records {
        st.latency
            .record(now.saturating_sub(r.tweet.received_unix_us));
        // Stream 2 is `/tweets/2`; anything else counts as stream 1.
        by_stream[usize::from(r.tweet.stream == 2)] += 1;
    }
    st.write_time.record(el.as_micros() as u64);
    show_batch_size(st, monitor);
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

/// Shows the monitor's batch size in the stats.
fn show_batch_size(st: &SinkStats, monitor: &Monitor) {
    st.batch_size
        .store(monitor.batch_size() as u64, Ordering::Relaxed);
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
    buffer.sync_or_log();
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
    buffer.sync_or_log();
    let left = buffer.len();
    log::warn!(
        "sink: input closed while {why}; {left} records are in the spool {} (fsync'd) and \
         are replayed at the next start",
        spool_file(spool_dir).display()
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
            spool_file(spool_dir).display(),
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    summary(st, left, spool_dir)
}

fn summary(st: &SinkStats, left: u64, dir: &Path) -> SinkSummary {
    SinkSummary {
        stats: st.snapshot(),
        left_in_spool: left,
        spool_path: spool_file(dir),
    }
}
