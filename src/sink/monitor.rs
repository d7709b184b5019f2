//! The batch-size controller: pure, no I/O; time comes in as the measured write times.
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
//! When the fixed cost `a` alone is at or over the target (a CPU-starved host, a
//! database busy flushing), no size meets it, and shrinking only costs throughput.
//! So after a shrink that left the write time over the target, the two batches
//! around it give an estimate of `a` (the line through both points); if
//! `a ≥ 0.9 · target`, the shrink is undone and the old size becomes a *floor*.
//! Whatever else made the write slow (a per-row cost that grew with the tables, a
//! bad plan) is tracked: the fit then shows a small `a` and shrinking goes on.
//!
//! A floor is evidence about one moment, and the cause can change while it holds
//! (a stall ends while the per-row cost grows). So a floor lasts at most
//! [`FLOOR_TTL`] of write time and [`FLOOR_TTL_BATCHES`] batches, whichever is
//! longer; the next batch over the target is then a probe shrink, and the fit
//! decides again. In a truly fixed-cost regime that is one smaller batch every
//! ten or so; in any other it ends a hold at 2–8× the target within seconds.

use std::time::Duration;

/// Longest write time a floor holds before it is tested again.
pub(super) const FLOOR_TTL: Duration = Duration::from_secs(10);
/// Fewest batches a floor holds before it is tested again.
pub(super) const FLOOR_TTL_BATCHES: u32 = 10;
/// The share of the target that the estimated fixed cost must reach for a floor.
const FIXED_SHARE: f64 = 0.9;

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

/// A floor under the batch size while the target is out of reach.
#[derive(Debug, Clone, Copy)]
struct Floor {
    size: usize,
    /// Write time observed since it was set, s.
    age: f64,
    /// Batches observed since it was set.
    batches: u32,
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
    /// The previous observation: (rows, seconds).
    prev: Option<(usize, f64)>,
    /// No shrinking below this while the fixed cost alone is over the target.
    floor: Option<Floor>,
}

/// The fixed cost `a` of the line through two observations `(rows, seconds)`,
/// clamped to `[0, w]` of the smaller batch; `None` if both have the same size.
fn fixed_cost((n1, w1): (usize, f64), (n2, w2): (usize, f64)) -> Option<f64> {
    if n1 == n2 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let b = ((w1 - w2) / (n1 - n2)).max(0.0);
    let (n_small, w_small) = if n1 < n2 { (n1, w1) } else { (n2, w2) };
    Some((w_small - b * n_small).clamp(0.0, w_small))
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
            floor: None,
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
        self.floor = None;
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
            let shrink = n * r.clamp(0.25, 0.9);
            match self.prev {
                Some(prev)
                    if self.last == Decision::Shrink
                        && rows < prev.0
                        && fixed_cost(prev, (rows, w))
                            .is_some_and(|a| a >= FIXED_SHARE * target) =>
                {
                    // The shrink did not bring the time under the target because the
                    // time is mostly fixed cost: go back and stay there for a while.
                    self.floor = Some(Floor {
                        size: prev.0,
                        age: 0.0,
                        batches: 0,
                    });
                    prev.0 as f64
                }
                _ => match self.floor.as_mut() {
                    Some(f) => {
                        f.age += w;
                        f.batches += 1;
                        if f.age >= FLOOR_TTL.as_secs_f64() && f.batches >= FLOOR_TTL_BATCHES {
                            // Test the floor again: this shrink is the probe.
                            self.floor = None;
                            shrink
                        } else {
                            shrink.max(f.size as f64)
                        }
                    }
                    None => shrink,
                },
            }
        } else {
            self.floor = None;
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

    /// Deterministic noise in `[1 − amp, 1 + amp]` (a 64-bit LCG).
    struct Noise(u64, f64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            1.0 + self.1 * (2.0 * u - 1.0)
        }
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
    fn a_floor_is_probed_again_and_costs_little_while_the_cost_stays_fixed() {
        let target = Duration::from_millis(200);
        let w = model(0.6, 20e-6);
        let mut m = Monitor::new(10, 20_000, 2_000, target);
        let (mut rows, mut secs, mut probes) = (0usize, 0.0, 0);
        for _ in 0..200 {
            let n = m.batch_size();
            m.observe(n, w(n));
            rows += n;
            secs += w(n).as_secs_f64();
            if m.batch_size() < n {
                probes += 1;
            }
        }
        // A probe now and then (the floor is tested again), never a collapse.
        assert!(probes >= 5, "{probes} probes in 200 batches");
        let rate = rows as f64 / secs;
        let held = 2_000.0 / w(2_000).as_secs_f64();
        assert!(
            rate >= 0.9 * held,
            "{rate:.0} rows/s against {held:.0} when held"
        );
    }

    #[test]
    fn a_floor_does_not_hold_the_batch_over_target_when_the_cause_changes() {
        let target = Duration::from_millis(200);
        let mut noise = Noise(7, 0.15);
        let mut m = Monitor::new(10, 20_000, 500, target);
        let feed = |m: &mut Monitor, model: &dyn Fn(usize) -> Duration, noise: &mut Noise| {
            let n = m.batch_size();
            let w = model(n).mul_f64(noise.next());
            m.observe(n, w);
            w
        };
        // Converged on a fast database.
        let fast = model(0.005, 20e-6);
        for _ in 0..40 {
            feed(&mut m, &fast, &mut noise);
        }
        // A stall: 600 ms of fixed cost, long enough for a floor to be set.
        let stall = model(0.6, 20e-6);
        for _ in 0..6 {
            feed(&mut m, &stall, &mut noise);
        }
        let floored = m.batch_size();
        assert!(floored > 1_000, "held {floored} during the stall");
        // The stall ends, but each row now costs ten times more (the tables grew under a
        // plan that scans them): only a smaller batch meets the target.
        let slow = model(0.005, 200e-6);
        let (mut t, mut over_since, mut longest_over) = (0.0f64, None::<f64>, 0.0f64);
        let mut late = Vec::new();
        while t < 180.0 {
            let w = feed(&mut m, &slow, &mut noise).as_secs_f64();
            if w > 2.0 * target.as_secs_f64() {
                let since = *over_since.get_or_insert(t);
                longest_over = longest_over.max(t + w - since);
            } else {
                over_since = None;
            }
            t += w;
            if t > 150.0 {
                late.push(w);
            }
        }
        assert!(
            longest_over <= 30.0,
            "held over 2× the target for {longest_over:.0} s of writes"
        );
        late.sort_by(f64::total_cmp);
        let median = late[late.len() / 2];
        assert!(
            median <= 1.25 * target.as_secs_f64(),
            "median write {median:.3} s in the last 30 s"
        );
    }

    #[test]
    fn a_moderate_fixed_cost_still_meets_the_target() {
        let target = Duration::from_millis(200);
        // 150 ms fixed + 20 µs/row: 5,000 rows take 250 ms; ≤ 500 rows meet 160 ms.
        let w = model(0.15, 20e-6);
        let mut m = Monitor::new(10, 20_000, 5_000, target);
        for _ in 0..30 {
            let n = m.batch_size();
            m.observe(n, w(n));
        }
        assert!(w(m.batch_size()) <= target, "{:?}", w(m.batch_size()));
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
