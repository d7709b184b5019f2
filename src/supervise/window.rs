//! OTP-style restart intensity.
//!
//! A supervised thing may restart at most `max` times within a sliding
//! `window`; one more restart means it is broken for good and the caller
//! escalates (a pool restarts whole, a stage gives up). Restarts older than
//! the window are forgotten, so a steady, bounded restart rate (the lab
//! server's kills) never trips it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// OTP-style restart intensity: the times of the restarts within a sliding window.
#[derive(Debug, Clone)]
pub(crate) struct RestartWindow {
    max: usize,
    window: Duration,
    times: VecDeque<Instant>,
}

impl RestartWindow {
    /// A window allowing `max` restarts within `window`.
    pub(crate) fn new(max: usize, window: Duration) -> RestartWindow {
        RestartWindow {
            max,
            window,
            times: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; true when the window then holds more than `max`.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        while let Some(&t) = self.times.front() {
            if now.saturating_duration_since(t) >= self.window {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        self.times.len() > self.max
    }

    /// Forgets every restart (after a pool restart).
    pub(crate) fn clear(&mut self) {
        self.times.clear();
    }

    /// Restarts in the window (as of the last `record`).
    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    #[cfg(test)]
    /// True when no restart is in the window.
    pub(crate) fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_only_recent_restarts() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(3, Duration::from_secs(5));
        assert!(!w.record(t0));
        assert!(!w.record(t0 + Duration::from_secs(1)));
        assert!(!w.record(t0 + Duration::from_secs(2)));
        assert!(w.record(t0 + Duration::from_secs(3)));
        // t0 and t0+1 have left the window by t0+6.
        assert!(!w.record(t0 + Duration::from_secs(6)));
        assert_eq!(w.len(), 3);
        w.clear();
        assert!(w.is_empty());
    }
}
