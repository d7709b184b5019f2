//! The batch-size controller: pure, no I/O.
//!
//! A batch's write time is close to affine in its size, `w(n) = a + b·n` (a round
//! trip and a commit, plus a per-row cost), so rows/s `n / (a + b·n)` grows with `n`
//! and the best size under the constraint `w(n) ≤ target` is the largest one that
//! stays under it. The controller aims at `aim = headroom · target` (headroom 0.8,
//! so normal jitter stays under the target) with a multiplicative gradient step:
//!
//! ```text
//! r = aim / w(n)
//! w > target              → n' = n · clamp(r, 0.25, 0.9)    (decrease at once, ≥ 10 %)
//! w ≤ target, batch full  → n' = n · clamp(r, 1.0, 2.0)     (grow at most ×2 per batch)
//! w ≤ target, batch short → n' = n                          (the input is the limit, no evidence)
//! n' clamped to [min, max]
//! ```
//!
//! For the affine model the fixed point is `n* = (aim − a) / b` and the step is a
//! contraction (`f'(n*) = a / aim < 1`), so it converges without oscillating.
//!
//! When the fixed cost alone exceeds the target (a CPU-starved host, a database busy
//! flushing), no size meets it, and shrinking only costs throughput. So a shrink that
//! left the write time over the target *and* lowered rows/s by more than 10 % is
//! undone: the size goes back to what it was and becomes a floor, until a batch
//! meets the target again.

use std::time::Duration;

/// What the controller did with the last observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// The batch size went up.
    Grow,
    /// The batch size went down.
    Shrink,
    /// The batch size stayed.
    Hold,
}

/// Adapts the batch size to the measured write time.
#[derive(Debug, Clone)]
pub(super) struct Monitor {
    min: usize,
    max: usize,
    target: Duration,
    headroom: f64,
    size: usize,
    last: Decision,
    /// The previous full observation: (rows, seconds).
    prev: Option<(usize, f64)>,
    /// No shrinking below this while the target is out of reach (see the module doc).
    floor: usize,
}

impl Monitor {
    /// `initial` is clamped into `[min, max]`; `min` is at least 1.
    pub(super) fn new(min: usize, max: usize, initial: usize, target: Duration) -> Monitor {
        let min = min.max(1);
        let max = max.max(min);
        Monitor {
            min,
            max,
            target,
            headroom: 0.8,
            size: initial.clamp(min, max),
            last: Decision::Hold,
            prev: None,
            floor: min,
        }
    }

    /// The batch size to ask for next.
    pub(super) fn batch_size(&self) -> usize {
        self.size
    }

    /// The last decision.
    pub(super) fn last_decision(&self) -> Decision {
        self.last
    }

    /// A batch hit the statement timeout: halve the size (it is retried smaller).
    pub(super) fn timed_out(&mut self) -> usize {
        let next = (self.size / 2).max(self.min);
        self.last = if next < self.size {
            Decision::Shrink
        } else {
            Decision::Hold
        };
        self.size = next;
        next
    }

    /// Feeds one batch: `rows` written in `elapsed`. Returns the next batch size.
    pub(super) fn observe(&mut self, rows: usize, elapsed: Duration) -> usize {
        if rows == 0 {
            self.last = Decision::Hold;
            return self.size;
        }
        let w = elapsed.as_secs_f64().max(1e-6);
        let target = self.target.as_secs_f64();
        let r = self.headroom * target / w;
        let n = self.size as f64;
        let next = if w > target {
            match self.prev {
                Some((prev_rows, prev_w))
                    if self.last == Decision::Shrink
                        && rows < prev_rows
                        && (rows as f64 / w) < 0.9 * (prev_rows as f64 / prev_w) =>
                {
                    // Shrinking did not bring the time under the target and cost
                    // throughput: the time is mostly fixed cost. Go back and stay.
                    self.floor = prev_rows;
                    prev_rows as f64
                }
                _ => (n * r.clamp(0.25, 0.9)).max(self.floor as f64),
            }
        } else {
            self.floor = self.min;
            if rows >= self.size {
                n * r.clamp(1.0, 2.0)
            } else {
                n
            }
        };
        self.prev = Some((rows, w));
        let next = (next.round() as usize).clamp(self.min, self.max);
        self.last = match next.cmp(&self.size) {
            std::cmp::Ordering::Greater => Decision::Grow,
            std::cmp::Ordering::Less => Decision::Shrink,
            std::cmp::Ordering::Equal => Decision::Hold,
        };
        self.size = next;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic database: `a + b·n` seconds per batch.
    fn model(a: f64, b: f64) -> impl Fn(usize) -> Duration {
        move |n| Duration::from_secs_f64(a + b * n as f64)
    }

    #[test]
    fn does_not_starve_itself_when_the_target_is_out_of_reach() {
        let target = Duration::from_millis(200);
        // 600 ms of fixed cost (a starved host) + 20 µs/row: no size meets 200 ms.
        let w = model(0.6, 20e-6);
        let mut m = Monitor::new(10, 20_000, 2_000, target);
        let mut sizes = Vec::new();
        for _ in 0..30 {
            let n = m.batch_size();
            m.observe(n, w(n));
            sizes.push(m.batch_size());
        }
        let n = m.batch_size();
        // The unguarded rule would end at the minimum (10 rows: 16 rows/s).
        assert!(n >= 1_000, "collapsed to {n} ({sizes:?})");
        let rate = n as f64 / w(n).as_secs_f64();
        assert!(rate > 1_500.0, "{rate} rows/s at {n}");
        // And once the database is fast again, it meets the target again.
        let fast = model(0.005, 20e-6);
        for _ in 0..20 {
            let n = m.batch_size();
            m.observe(n, fast(n));
        }
        assert!(fast(m.batch_size()) <= target);
        assert!(m.batch_size() > 5_000);
    }

    #[test]
    fn converges_under_target_near_best_rate() {
        let target = Duration::from_millis(200);
        let w = model(0.005, 20e-6); // 5 ms + 20 µs/row
        let mut m = Monitor::new(10, 100_000, 10, target);
        for _ in 0..40 {
            let n = m.batch_size();
            m.observe(n, w(n));
        }
        let n = m.batch_size();
        assert!(w(n) <= target, "write time {:?} over target", w(n));
        // Fixed point (0.8·0.2 − 0.005)/20e-6 = 7750 rows.
        assert!((7_000..=8_000).contains(&n), "settled at {n}");
        // Its rate is within 20 % of the best rate the target allows (at w = target).
        let best = 9_750.0 / w(9_750).as_secs_f64();
        let got = n as f64 / w(n).as_secs_f64();
        assert!(got >= 0.8 * best, "rate {got} vs best {best}");
        // Stable: a further observation keeps it.
        let before = m.batch_size();
        m.observe(before, w(before));
        assert!(m.batch_size().abs_diff(before) <= 1);
    }

    #[test]
    fn shrinks_when_the_database_slows_down() {
        let target = Duration::from_millis(200);
        let fast = model(0.005, 20e-6);
        let slow = model(0.020, 100e-6);
        let mut m = Monitor::new(10, 100_000, 1_000, target);
        for _ in 0..30 {
            let n = m.batch_size();
            m.observe(n, fast(n));
        }
        let n = m.batch_size();
        m.observe(n, slow(n));
        assert_eq!(m.last_decision(), Decision::Shrink);
        let mut over = 0;
        for _ in 0..20 {
            let n = m.batch_size();
            if slow(n) > target {
                over += 1;
            }
            m.observe(n, slow(n));
        }
        assert!(over <= 2, "{over} batches over target after the slowdown");
        assert!(slow(m.batch_size()) <= target);
    }

    #[test]
    fn short_batches_do_not_grow_and_bounds_hold() {
        let mut m = Monitor::new(10, 500, 100, Duration::from_millis(200));
        m.observe(30, Duration::from_millis(1));
        assert_eq!(m.batch_size(), 100);
        assert_eq!(m.last_decision(), Decision::Hold);
        for _ in 0..10 {
            let n = m.batch_size();
            m.observe(n, Duration::from_millis(1));
        }
        assert_eq!(m.batch_size(), 500);
        // 25 ms per row: over the target at any size, but shrinking cuts the time
        // without costing rows/s, so it goes down to the lower bound.
        for _ in 0..20 {
            let n = m.batch_size();
            m.observe(n, Duration::from_millis(25 * n as u64));
        }
        assert_eq!(m.batch_size(), 10);
        // A time that does not depend on the size at all: one shrink is tried, it
        // costs throughput, so the size goes back and stays (no collapse to 10).
        let mut fixed = Monitor::new(10, 500, 500, Duration::from_millis(200));
        for _ in 0..20 {
            let n = fixed.batch_size();
            fixed.observe(n, Duration::from_secs(5));
        }
        assert_eq!(fixed.batch_size(), 500);
        assert_eq!(m.observe(0, Duration::ZERO), 10);
        assert_eq!(m.timed_out(), 10);
        let mut m = Monitor::new(10, 500, 400, Duration::from_millis(200));
        assert_eq!(m.timed_out(), 200);
        assert_eq!(m.last_decision(), Decision::Shrink);
    }
}
