//! The aggregator's clock of input progress: what its timeout is measured on.
//!
//! The timeout must mean "no missing half was *sent* within `timeout` of the
//! entry's first half", not "the aggregator has not *read* it yet". The two
//! differ whenever the aggregator itself is held up: blocked in `send` while
//! the sink pushes back, stopped with the rest of the process (Ctrl-Z), or on
//! a stalled host. If expiry ran on the wall clock, on resume it would emit
//! with NULLs every entry whose scores are already waiting in its channel.
//! Two rules prevent that:
//!
//! - **Caught-up time (mark and count).** At awake time `T` the channel holds
//!   `L` messages. The channel is FIFO, so once `L` more messages have been
//!   received, every message sent before `T` has been read: the aggregator has
//!   caught up to `T`. A sample that finds the channel empty catches up at
//!   once. An entry born at `B` may expire only when `caught_up − B ≥
//!   timeout`. Unlike "expire only when the channel is empty", this still
//!   expires under a load that never lets the channel empty.
//! - **Awake time (stalls do not count).** Time is counted on an awake clock:
//!   it advances by the real time between two looks, except that an interval
//!   longer than what the loop meant to wait plus [`STALL_SLACK`] (a blocked
//!   send, SIGSTOP, a stalled host) counts as nothing. On resume from Ctrl-Z,
//!   the workers (stopped too) may need a moment to send scores that the
//!   channel does not hold yet; this rule gives it to them. A delay wrongly
//!   taken for a stall only makes expiry later, never earlier.
//!
//! Pure: the caller passes the instants, so tests need no clock.

use std::time::{Duration, Instant};

/// An interval this much longer than the loop meant to wait is a stall.
pub(super) const STALL_SLACK: Duration = Duration::from_secs(1);

/// Awake time and how far the input has been read (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct Progress {
    awake: Duration,
    last: Instant,
    /// Awake time of a sample and how many messages it still waits for.
    mark: Option<(Duration, usize)>,
    caught_up: Duration,
}

impl Progress {
    /// A clock that starts now, caught up.
    pub(super) fn new(now: Instant) -> Progress {
        Progress {
            awake: Duration::ZERO,
            last: now,
            mark: None,
            caught_up: Duration::ZERO,
        }
    }

    /// Advances to `now`, where the loop meant to spend at most `meant` since
    /// the previous look (its receive timeout; zero while it processes).
    /// Returns the length of the interval if it was a stall (not counted).
    pub(super) fn tick(&mut self, now: Instant, meant: Duration) -> Option<Duration> {
        let real = now.saturating_duration_since(self.last);
        self.last = now;
        if real > meant.saturating_add(STALL_SLACK) {
            return Some(real);
        }
        self.awake += real;
        None
    }

    /// The input channel holds `queued` messages now.
    pub(super) fn sample(&mut self, queued: usize) {
        if queued == 0 {
            self.caught_up = self.awake;
            self.mark = None;
        } else if self.mark.is_none() {
            self.mark = Some((self.awake, queued));
        }
    }

    /// One message was received.
    pub(super) fn received(&mut self) {
        if let Some((at, left)) = self.mark.as_mut() {
            *left -= 1;
            if *left == 0 {
                self.caught_up = *at;
                self.mark = None;
            }
        }
    }

    /// The awake time now.
    pub(super) fn now(&self) -> Duration {
        self.awake
    }

    /// Every message sent before this awake time has been received.
    pub(super) fn caught_up(&self) -> Duration {
        self.caught_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_empty_channel_catches_up_at_once() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.tick(t0 + 300 * MS, 500 * MS), None);
        p.sample(0);
        assert_eq!(p.caught_up(), 300 * MS);
        assert_eq!(p.now(), 300 * MS);
    }

    #[test]
    fn a_sample_of_l_messages_catches_up_after_l_receives() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.tick(t0 + 100 * MS, Duration::ZERO);
        p.sample(3);
        for k in 1..=3u32 {
            p.tick(t0 + (100 + k * 10) * MS, Duration::ZERO);
            assert_eq!(p.caught_up(), Duration::ZERO, "not yet after {k} receives");
            p.received();
            // A new sample while the mark is open does not move it.
            p.sample(7);
        }
        assert_eq!(p.caught_up(), 100 * MS);
    }

    #[test]
    fn a_stall_does_not_count() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.tick(t0 + 100 * MS, 200 * MS);
        // Blocked 40 s in a send (meant: nothing).
        let stall = p.tick(t0 + 40_100 * MS, Duration::ZERO);
        assert_eq!(stall, Some(40_000 * MS));
        assert_eq!(p.now(), 100 * MS);
        // A long but intended wait counts, with the slack for scheduling.
        assert_eq!(p.tick(t0 + 40_900 * MS, 100 * MS), None);
        assert_eq!(p.now(), 900 * MS);
    }
}
