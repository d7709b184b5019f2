//! Counters, the status line, the stats file and the top-hashtags sketch.
//!
//! Shared measuring tools live here too: [`Histogram`] records latencies from many
//! threads without locks; [`cpu_times`] reads the CPU time of every thread group
//! (the CPU budget per stage, `cpu.rs` pure, `threads.rs` the I/O).

mod cpu;
pub(crate) mod history;
pub(crate) mod sketch;
pub(crate) mod status;
mod threads;

pub use cpu::{CpuBudget, CpuTimes, GroupCpu, ThreadGroup};
pub use sketch::{CountMinSketch, TopHashtags};
pub use threads::cpu_times;
pub(crate) use threads::spawn_thread;

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two: values are kept within 1/16 (6.25%) of their size.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Powers of two covered: up to 2^40 µs (12 days), which is plenty.
const POWERS: usize = 41;

/// A lock-free log-linear histogram of microsecond values.
///
/// `record` is a single relaxed atomic add, so any number of threads can record;
/// quantiles are read from a snapshot of the counts, with a relative error of at
/// most 1/16 of the value.
#[derive(Debug)]
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    /// The sum of every recorded value, µs (a Prometheus histogram's `_sum`).
    sum: AtomicU64,
}

/// A [`Histogram`]'s counts at chosen bounds, for a Prometheus histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cumulative {
    /// Per bound: the values recorded in buckets that lie wholly at or below it.
    pub le: Vec<u64>,
    /// Every value recorded.
    pub count: u64,
    /// Their sum, µs.
    pub sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..POWERS * SUB).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let power = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (power - SUB_BITS)) as usize & (SUB - 1);
        let i = ((power - SUB_BITS + 1) as usize) * SUB + sub;
        i.min(POWERS * SUB - 1)
    }

    /// The largest value that falls into bucket `i` (its representative).
    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let power = (i / SUB) as u32 + SUB_BITS - 1;
        let sub = (i % SUB) as u64;
        let base = (SUB as u64 + sub) << (power - SUB_BITS);
        base + (1u64 << (power - SUB_BITS)) - 1
    }

    /// Records one value in µs (lock-free; any thread).
    pub fn record(&self, micros: u64) {
        self.counts[Self::index(micros)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts at `bounds` (µs, ascending), for a Prometheus histogram.
    ///
    /// For each bound: the values in buckets that lie wholly at or below it.
    /// That is exact when the bound is the top of a bucket; otherwise only
    /// values less than 1/16 below the bound are left out (the bucket that
    /// straddles it counts towards the next bound), and none above it is
    /// counted. `le` and `count` come from one read of the counts, so no bound
    /// counts more than `count`.
    pub fn cumulative(&self, bounds: &[u64]) -> Cumulative {
        let mut le = Vec::with_capacity(bounds.len());
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            let top = Self::upper(i);
            while le.len() < bounds.len() && top > bounds[le.len()] {
                le.push(seen);
            }
            seen += c.load(Ordering::Relaxed);
        }
        le.resize(bounds.len(), seen);
        Cumulative {
            le,
            count: seen,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The value at quantile `q` (0.0..=1.0) in µs, or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        Some(Self::upper(counts.len() - 1))
    }

    /// Forgets every value recorded so far.
    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.sum.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_at_bounds() {
        let h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let c = h.cumulative(&[15, 1023, 5000, 20_000]);
        assert_eq!(c.count, 10_000);
        assert_eq!(c.sum, 10_000 * 10_001 / 2);
        // Below 16 every value has a bucket of its own; 1023 is a bucket's top.
        assert_eq!(c.le[0], 15);
        assert_eq!(c.le[1], 1023);
        // 5000 lies inside a bucket: less than 1/16 of it is left out, nothing added.
        assert!(c.le[2] <= 5000 && c.le[2] > 5000 - 5000 / 16, "{}", c.le[2]);
        assert_eq!(c.le[3], 10_000);
        let empty = Histogram::new().cumulative(&[1, 2]);
        assert_eq!((empty.le, empty.count, empty.sum), (vec![0, 0], 0, 0));
        h.reset();
        assert_eq!(h.cumulative(&[]).sum, 0);
    }

    #[test]
    fn quantiles_within_one_sixteenth() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=10_000u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        for (q, exact) in [(0.5, 5_000u64), (0.99, 9_900), (1.0, 10_000), (0.0001, 1)] {
            let got = h.quantile(q).unwrap();
            let err = got.abs_diff(exact) as f64 / exact as f64;
            assert!(err <= 1.0 / 16.0, "q={q}: got {got}, exact {exact}");
        }
        h.reset();
        assert_eq!(h.count(), 0);
    }

    #[test]
    fn index_and_upper_agree() {
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v.min(Histogram::upper(POWERS * SUB - 1)));
            if i > 0 && i < POWERS * SUB - 1 {
                assert!(Histogram::upper(i - 1) < v);
            }
        }
    }
}
