//! The PostgreSQL sink: records in, users and tweets stored, nothing lost when the
//! database goes away or the process is killed.
//!
//! Three threads:
//!
//! * `sink-ingest` drains the input channel into the [`buffer::Buffer`] (memory up
//!   to `buffer_records`, then the append-only spool); it closes the buffer when
//!   the channel disconnects.
//! * `sink-writer` runs the writer loop (`writer`): it owns the write connection,
//!   pulls batches of the size the [`monitor::Monitor`] picks and writes each with
//!   binary COPY into staging tables plus one upsert per table, in one transaction
//!   (`db::batch`). On a lost connection or timeout it keeps the batch, trips the
//!   breaker and pauses; while paused, the batch and the memory buffer go to the
//!   spool (fsync'd) so a killed process loses nothing, and new records go straight
//!   to disk. After recovery it resumes with that same batch, at the head of the
//!   spool.
//! * `sink-health` probes the database every `health_interval` on its own
//!   connection and drives the [`health::Breaker`] (closed / open / half-open).
//!
//! The sink starts even when the database is down: the schema is created once it is
//! reachable; meanwhile records are buffered. A spool left by an earlier run is
//! replayed first.
//!
//! The folders and files are the sink's actors:
//!
//! * `db/`: PostgreSQL. The settings and TLS of every connection (`connect`), the
//!   one column list and the SQL made from it (`tables`), creating and checking
//!   the tables (`schema`, `compat`), the batch write (`batch`), the pure COPY
//!   encoding (`encode`, `raw_json`) and the classification of its errors
//!   (`error`).
//! * `buffer/`: the memory buffer (`memory`) and the append-only spool (`spool`).
//! * the controllers: `monitor` (reactive pull: the batch size), `health` (the
//!   checker and its breaker), `pause` and `control` (the operator's pause),
//!   `drain` (the drain deadline); and `writer`, which runs them.
//! * `start` checks, opens and spawns it all; `stats` counts; `failure` says how
//!   it ends badly; `rejected` keeps what could not be stored.
//!
//! This file holds the running sink's handle.

pub(crate) mod buffer;
mod config;
mod control;
pub(crate) mod db;
mod drain;
mod failure;
mod health;
mod monitor;
mod pause;
mod rejected;
mod start;
mod stats;
mod url;
mod writer;

pub use self::config::{SinkConfig, SinkHook, WhenFull};
pub use self::control::{PauseOutcome, SinkControl};
pub(crate) use self::db::compat::check_tables;
pub use self::db::connect::connect_database;
pub(crate) use self::db::connect::Db;
pub use self::db::encode::parse_twitter_time;
pub use self::db::error::{ErrorClass, WriteError};
pub use self::failure::{DatabaseProblem, SinkError, SinkFailure, SinkThread};
pub use self::health::BreakerState;
pub use self::start::spawn_sink;
pub use self::stats::{SinkSnapshot, SinkState, SinkStats, SinkSummary};
pub(crate) use self::url::redact_url;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::buffer::Buffer;
use self::drain::Drain;
use crate::model::SeqGen;

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
    /// does not answer, even to the cancel), the batch it was writing from memory
    /// and the memory buffer are moved to the spool from here, fsync'd. A thread still running then (the ingest thread, when a stage above
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
            // The batch it is writing (from memory) goes first, ahead of the
            // buffer: a server that answers neither it nor the cancel loses nothing.
            let held = self.drain.take_held().map(|records| buffer::Batch {
                records,
                source: buffer::Source::Memory,
            });
            let in_flight = held.as_ref().map_or(0, |b| b.records.len());
            log::error!(
                "sink: the writer did not end by the drain deadline (the database does not \
                 answer); moving the batch it was writing ({in_flight} records) and the memory \
                 buffer to the spool and leaving the writer behind"
            );
            if let Err(e) = self.buffer.evacuate(held) {
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
        self.buffer.sync_or_log();
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
        spool_path: buffer.spool_path(),
    }
}
