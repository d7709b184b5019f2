//! The drain deadline of the sink: after the first Ctrl-C the pipeline gives the
//! sink a time by which the process must have exited ([`Sink::drain_by`](super::Sink)).
//!
//! The writer keeps committing until its *stop point*, the deadline minus the time
//! it needs to move what is left to the spool ([`reserve`]); it starts no batch
//! that would end after the stop point. Meanwhile what it cannot commit by then, at
//! the rate of its last batch ([`can_commit`]), is moved to the spool a chunk at a
//! time, so the work of saving it is spread over the whole drain. At the stop point
//! the writer moves the batch it holds and the memory buffer to the spool, fsyncs
//! and returns; whatever arrives later goes straight to the spool (durable mode).
//! A batch still being written at the stop point, or stuck before it (twice its
//! usual time and a quarter of the budget: a lock, a stalled server), is cancelled
//! on the server (`Cancel`, from a helper thread, since the cancel request opens a
//! connection of its own, with the TLS of the writer's connection), so it does not
//! hold the exit for `statement_timeout`; it is rolled back and spooled with the
//! rest. PostgreSQL holds cancels off while it commits, so a batch either
//! committed (and is not spooled) or did not (and is).
//!
//! The pure parts are [`reserve`] and [`can_commit`]; the rest is the state shared by the writer and the
//! thread that joins the sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::db::connect::Cancel;
use crate::model::Record;

/// Time to leave, before the deadline, for cancelling the batch being written and
/// moving `buffered` records to the spool with an fsync: a fixed part plus a
/// per-record part, at most half of the drain's budget. The per-record part is an
/// estimate with room to spare (a release build spools tens of thousands of records
/// a second; a debug build on a loaded machine was seen at ~900 a second), and the
/// drain moves ahead of time what the writer cannot commit, so at the stop point
/// little is left for it to cover.
pub(crate) fn reserve(buffered: u64, budget: Duration) -> Duration {
    // The cancel's round trip, the rollback and spooling the batch that was held.
    const FIXED_S: f64 = 1.0;
    const PER_RECORD_S: f64 = 15e-6;
    let half = budget.as_secs_f64() / 2.0;
    Duration::from_secs_f64((FIXED_S + PER_RECORD_S * buffered as f64).min(half))
}

/// Shared between the writer and whoever joins the sink.
#[derive(Default)]
pub(crate) struct Drain {
    /// (when the drain began, its deadline)
    deadline: Mutex<Option<(Instant, Instant)>>,
    cancel: Mutex<Option<Cancel>>,
    busy: AtomicBool,
    /// When the batch being written started.
    since: Mutex<Option<Instant>>,
    cancelled: AtomicBool,
    spill_failed: AtomicBool,
    /// A copy of the batch from memory that the writer is writing (the records
    /// share their tweets): if the server answers neither the batch nor the
    /// cancel, the writer is left behind at the deadline and this goes to the
    /// spool instead ([`Drain::take_held`]).
    held: Mutex<Option<Vec<Record>>>,
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("deadline", &*self.deadline.lock())
            .field("busy", &self.busy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drain {
    /// Sets the deadline (the first call wins).
    pub(crate) fn set(&self, deadline: Instant) {
        let mut d = self.deadline.lock();
        if d.is_none() {
            *d = Some((Instant::now(), deadline));
        }
    }

    /// When the writer must stop writing, with `buffered` records left to spool.
    pub(crate) fn stop_at(&self, buffered: u64) -> Option<Instant> {
        self.deadline.lock().map(|(began, deadline)| {
            let budget = deadline.saturating_duration_since(began);
            deadline
                .checked_sub(reserve(buffered, budget))
                .unwrap_or(deadline)
        })
    }

    /// The writer starts writing a batch on the connection of `token`.
    pub(crate) fn begin(&self, token: Cancel) {
        *self.cancel.lock() = Some(token);
        *self.since.lock() = Some(Instant::now());
        self.busy.store(true, Ordering::SeqCst);
    }

    /// The batch is written (or failed): nothing to cancel any more.
    pub(crate) fn end(&self) {
        self.busy.store(false, Ordering::SeqCst);
        *self.since.lock() = None;
        *self.cancel.lock() = None;
    }

    /// The writer writes `records`, taken from memory (a batch from the spool
    /// stays there until it is committed).
    pub(crate) fn hold(&self, records: Vec<Record>) {
        *self.held.lock() = Some(records);
    }

    /// The batch the writer wrote is committed or back in its hands.
    pub(crate) fn release(&self) {
        *self.held.lock() = None;
    }

    /// The batch from memory the writer is still writing, for the spool: the
    /// writer is left behind. Should that batch commit after all, its rows carry
    /// the same `ingest_seq` as the spooled copy, and the replay of an equal
    /// `ingest_seq` changes nothing (upserts keep only a higher one).
    pub(crate) fn take_held(&self) -> Option<Vec<Record>> {
        self.held.lock().take()
    }

    /// How long the batch being written has taken so far.
    pub(crate) fn busy_for(&self) -> Option<Duration> {
        self.since.lock().map(|t| t.elapsed())
    }

    /// Whether the batch being written has taken more than twice `last_write` and
    /// more than a quarter of the drain's budget.
    pub(crate) fn stuck(&self, last_write: Duration) -> bool {
        let budget = self
            .deadline
            .lock()
            .map(|(began, deadline)| deadline.saturating_duration_since(began));
        match (self.busy_for(), budget) {
            (Some(b), Some(budget)) => b > last_write * 2 && b > budget / 4,
            _ => false,
        }
    }

    /// Whether a batch is being written.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Whether [`Drain::cancel_in_flight`] was called: a 57014 then is ours, not a
    /// statement timeout.
    pub(crate) fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Whether moving records to the spool failed during this drain (not retried).
    pub(crate) fn spill_failed(&self) -> bool {
        self.spill_failed.load(Ordering::SeqCst)
    }

    /// Moving records to the spool failed.
    pub(crate) fn set_spill_failed(&self) {
        self.spill_failed.store(true, Ordering::SeqCst);
    }

    /// Asks the server to cancel the batch in flight, from a helper thread (the
    /// request opens a connection and may wait up to the connect timeout).
    pub(crate) fn cancel_in_flight(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let Some(token) = self.cancel.lock().clone() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("sink-cancel".into())
            .spawn(move || {
                if let Err(e) = token.cancel() {
                    log::warn!("sink: cannot cancel the batch in flight: {e}");
                }
            });
        if let Err(e) = spawned {
            log::warn!("sink: cannot start the thread that cancels the batch in flight: {e}");
        }
    }
}

/// Records the writer can still commit in `left`, at the rate of its last batch
/// (`rows` in `write`): none if the batch it is writing is stuck, all if no batch
/// has been timed yet (then only the stop point decides).
pub(crate) fn can_commit(rows: u64, write: Duration, stuck: bool, left: Duration) -> u64 {
    if stuck {
        return 0;
    }
    if write.is_zero() {
        return u64::MAX;
    }
    (rows as f64 * left.as_secs_f64() / write.as_secs_f64()) as u64
}

/// Waits until `done()` or `until`, checking every 10 ms.
pub(crate) fn wait_until(until: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(10)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_grows_with_the_backlog_and_never_takes_more_than_half_the_budget() {
        let budget = Duration::from_secs(5);
        assert!((reserve(0, budget).as_secs_f64() - 1.0).abs() < 1e-6);
        assert!(reserve(10_000, budget) > reserve(0, budget));
        assert!((reserve(10_000_000, budget).as_secs_f64() - 2.5).abs() < 1e-6);
        assert_eq!(reserve(0, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_stuck_writer_can_commit_nothing_more() {
        let ms = Duration::from_millis;
        assert_eq!(can_commit(1_000, ms(200), false, ms(1_000)), 5_000);
        assert_eq!(can_commit(1_000, ms(200), true, ms(1_000)), 0);
        assert_eq!(can_commit(0, Duration::ZERO, false, ms(1_000)), u64::MAX);
    }

    #[test]
    fn a_batch_is_stuck_only_past_twice_its_usual_time_and_a_quarter_of_the_budget() {
        let d = Drain::default();
        d.set(Instant::now() + Duration::from_secs(4));
        assert!(
            !d.stuck(Duration::from_millis(1)),
            "nothing is being written"
        );
        // `begin` needs a connection's token; `since` alone decides here.
        *d.since.lock() = Some(Instant::now() - Duration::from_millis(500));
        assert!(
            !d.stuck(Duration::from_millis(1)),
            "under a quarter of the budget"
        );
        *d.since.lock() = Some(Instant::now() - Duration::from_millis(1_500));
        assert!(d.stuck(Duration::from_millis(200)));
        assert!(
            !d.stuck(Duration::from_millis(800)),
            "under twice the last write"
        );
    }

    #[test]
    fn the_stop_point_is_before_the_deadline_and_the_first_deadline_wins() {
        let d = Drain::default();
        assert!(d.stop_at(0).is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        d.set(deadline);
        d.set(deadline + Duration::from_secs(60));
        let stop = d.stop_at(1_000).unwrap();
        assert!(
            stop + Duration::from_secs(1) <= deadline && stop + Duration::from_secs(3) > deadline
        );
    }
}
