//! The one log rate limiter.
//!
//! A condition that can repeat thousands of times a second (malformed events,
//! orphan scores, a pool that cannot grow) must be visible in the log without
//! flooding it. A [`LogLimiter`] answers "log now?" and, when it does, how
//! many occurrences it suppressed since the last line, so the line can say so.
//!
//! Two policies:
//!
//! - [`LogLimiter::every`]: at most one line per interval (the first
//!   occurrence logs at once); [`LogLimiter::once`] is the infinite interval.
//! - [`LogLimiter::first_then_every`]: the first `first` occurrences, then
//!   every `every`-th. Where the occurrences are already counted elsewhere (a
//!   statistics counter), [`LogLimiter::allows_count`] decides from that count
//!   without keeping any state.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Every(Duration),
    Counted { first: u64, every: u64 },
}

/// Decides which occurrences of a repeated condition are logged.
#[derive(Debug, Clone)]
pub(crate) struct LogLimiter {
    policy: Policy,
    last: Option<Instant>,
    seen: u64,
    suppressed: u64,
}

impl LogLimiter {
    /// At most one line per `interval`; the first occurrence logs at once.
    pub(crate) const fn every(interval: Duration) -> LogLimiter {
        LogLimiter::with(Policy::Every(interval))
    }

    /// Only the first occurrence logs.
    pub(crate) const fn once() -> LogLimiter {
        LogLimiter::every(Duration::MAX)
    }

    /// The first `first` occurrences log, then every `every`-th.
    pub(crate) const fn first_then_every(first: u64, every: u64) -> LogLimiter {
        LogLimiter::with(Policy::Counted { first, every })
    }

    const fn with(policy: Policy) -> LogLimiter {
        LogLimiter {
            policy,
            last: None,
            seen: 0,
            suppressed: 0,
        }
    }

    /// One occurrence at `now`: `Some(suppressed)` when it should be logged,
    /// with the number of occurrences suppressed since the last logged one;
    /// `None` when it should not.
    pub(crate) fn check(&mut self, now: Instant) -> Option<u64> {
        self.seen = self.seen.saturating_add(1);
        let log = match self.policy {
            Policy::Every(interval) => self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= interval),
            Policy::Counted { .. } => self.allows_count(self.seen),
        };
        if log {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }

    /// Whether the `count`-th occurrence (1-based, counted by the caller)
    /// should be logged under a [`LogLimiter::first_then_every`] policy.
    /// Always true under a time policy, which needs [`LogLimiter::check`].
    pub(crate) fn allows_count(&self, count: u64) -> bool {
        match self.policy {
            Policy::Counted { first, every } => {
                count <= first || (every > 0 && count.is_multiple_of(every))
            }
            Policy::Every(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_logs_the_first_then_every_nth() {
        let l = LogLimiter::first_then_every(10, 1000);
        let logged: Vec<u64> = (1..=5000).filter(|&n| l.allows_count(n)).collect();
        assert_eq!(logged.len(), 10 + 5);
        assert!(logged.contains(&3000) && !logged.contains(&11));
        let mut l = LogLimiter::first_then_every(1, 3);
        let now = Instant::now();
        let got: Vec<_> = (0..6).map(|_| l.check(now)).collect();
        assert_eq!(got, [Some(0), None, Some(1), None, None, Some(2)]);
    }

    #[test]
    fn every_logs_once_per_interval_and_counts_the_rest() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = LogLimiter::every(s(10));
        assert_eq!(l.check(t0), Some(0));
        assert_eq!(l.check(t0 + s(1)), None);
        assert_eq!(l.check(t0 + s(9)), None);
        assert_eq!(l.check(t0 + s(10)), Some(2));
        assert_eq!(l.check(t0 + s(11)), None);
    }

    #[test]
    fn once_logs_only_the_first() {
        let t0 = Instant::now();
        let mut l = LogLimiter::once();
        assert_eq!(l.check(t0), Some(0));
        assert_eq!(l.check(t0 + Duration::from_secs(1_000_000)), None);
    }
}
