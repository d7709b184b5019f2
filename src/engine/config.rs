//! Configuration of the processing core: pool sizes, work delay, restart
//! policy and autoscaler tuning.
//!
//! The lowest layer of the engine: every other engine file may read these
//! types, and they read nothing of the engine but [`WorkDelay`].
//!
//! The restart defaults (500 worker restarts in 5 s = 100/s per pool) count
//! unexpected panics only: kills, which the lab sends in proportion to the
//! rate (2 % of events, 200/s at 10,000 events/s), are expected and not
//! counted (see `engine::worker`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::delay::WorkDelay;
use crate::model::{ScoreKind, Tweet};
use crate::supervise::{Backoff, StagePolicy};

/// A test hook that a worker asks before it scores a tweet, `true` making it
/// panic (an unexpected panic, not a kill), and the pool before it creates a
/// worker's thread, `true` making that fail. The testkit's `Fault` and
/// `SpawnFault` are ones; production configurations carry none.
pub trait WorkerHook: Send + Sync + fmt::Debug {
    /// Whether the worker of the `kind` pool panics on `tweet`.
    fn panics(&self, _kind: ScoreKind, _tweet: &Tweet) -> bool {
        false
    }

    /// Whether creating the thread of worker `slot` of the `kind` pool fails,
    /// as `pthread_create` does past a limit (the testkit's `SpawnFault`).
    fn spawn_fails(&self, _kind: ScoreKind, _slot: usize) -> bool {
        false
    }
}

/// Restart intensity, back-off and retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// At most this many worker restarts after unexpected panics (kills do
    /// not count) per pool ... (default 500)
    pub max_restarts: usize,
    /// ... within this sliding window (default 5 s); beyond: pool restart.
    pub window: Duration,
    /// At most this many pool restarts ... (default 3)
    pub max_pool_restarts: usize,
    /// ... within this window (default 60 s); beyond: fatal.
    pub pool_window: Duration,
    /// First back-off of a worker restarting again soon (default 10 ms).
    pub backoff_base: Duration,
    /// Back-off cap (default 1 s).
    pub backoff_max: Duration,
    /// A restart more than this after the worker's previous one starts a new streak (default 2 s).
    pub backoff_reset: Duration,
    /// Retries of a tweet whose processing panicked unexpectedly (default 1).
    pub tweet_retries: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        let stage = StagePolicy::default();
        RestartPolicy {
            max_restarts: stage.max_restarts,
            window: stage.window,
            max_pool_restarts: 3,
            pool_window: Duration::from_secs(60),
            backoff_base: stage.backoff_base,
            backoff_max: stage.backoff_max,
            backoff_reset: stage.backoff_reset,
            tweet_retries: 1,
        }
    }
}

impl RestartPolicy {
    /// The per-worker part of the policy, as a `StagePolicy` (also what
    /// `supervise::keep_alive` takes).
    pub fn stage(&self) -> StagePolicy {
        StagePolicy {
            max_restarts: self.max_restarts,
            window: self.window,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            backoff_reset: self.backoff_reset,
        }
    }

    /// A worker's crash-loop `Backoff`.
    pub fn backoff(&self) -> Backoff {
        self.stage().backoff()
    }
}

/// Configuration of the processing core. All sizes are per pool.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `--min-workers` (default 4, at least 1).
    pub min_workers: usize,
    /// `--max-workers` (default 4096).
    pub max_workers: usize,
    /// At most this many worker threads in both pools together (default
    /// `None`: only the kernel's limits bound them, see `engine::limits`).
    pub max_threads: Option<usize>,
    /// `--work-delay` (default 50..500: normal 275 ± 75 ms clamped).
    pub work_delay: WorkDelay,
    /// Capacity of each worker's inbox (default 2; the backlog waits in the
    /// shared input channel instead, see `engine::dispatch`).
    pub inbox_capacity: usize,
    /// Worker thread stack size in bytes (default 128 KiB).
    pub stack_size: usize,
    /// Timer slack of the worker threads (default `ZERO`: the kernel's 50 µs).
    /// A worker's sleep lasts its sampled delay plus at most this, so the
    /// kernel can end many sleeps with one timer interrupt. On the 2-core
    /// development VM 5 ms made no measurable difference to the workers' CPU
    /// (docs/BENCHMARKS.md), so it is off unless set.
    pub timer_slack: Duration,
    /// Restart intensity and back-off.
    pub restart: RestartPolicy,
    /// Autoscaler/supervisor tick (default 250 ms, capped at 1 s).
    pub tick: Duration,
    /// ρ, the utilisation target (default 0.8).
    pub utilisation: f64,
    /// Autoscaler tuning beyond min/max/ρ (those three above win).
    pub autoscale: AutoscaleConfig,
    /// Test hook, see [`WorkerHook`] (default none).
    pub fault: Option<Arc<dyn WorkerHook>>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            min_workers: 4,
            max_workers: 4096,
            max_threads: None,
            work_delay: WorkDelay::default(),
            inbox_capacity: 2,
            stack_size: 128 * 1024,
            timer_slack: Duration::ZERO,
            restart: RestartPolicy::default(),
            tick: Duration::from_millis(250),
            utilisation: 0.8,
            autoscale: AutoscaleConfig::default(),
            fault: None,
        }
    }
}

impl CoreConfig {
    /// The autoscaler's tuning: `autoscale` with min/max/ρ from this
    /// config, and per-tick service samples clamped to 1.5 × the maximum
    /// work delay.
    pub(crate) fn autoscale_config(&self) -> AutoscaleConfig {
        let min = self.min_workers.max(1);
        let max_service_secs = match self.work_delay {
            WorkDelay::Off => self.autoscale.max_service_secs,
            WorkDelay::Normal { max, .. } => self
                .autoscale
                .max_service_secs
                .min(1.5 * max / 1000.0 + 0.01),
        };
        AutoscaleConfig {
            min_workers: min,
            max_workers: self.max_workers.max(min),
            utilisation: self.utilisation,
            max_service_secs,
            ..self.autoscale.clone()
        }
    }
}

/// Tuning of the autoscaler's `Controller` (`engine::autoscale`).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleConfig {
    /// Never fewer workers than this (≥ 1).
    pub min_workers: usize,
    /// Never more workers than this.
    pub max_workers: usize,
    /// ρ, the utilisation target: workers ≈ λ·S/ρ.
    pub utilisation: f64,
    /// A backlog of `queued` messages adds `queued·S/drain_secs` workers.
    pub drain_secs: f64,
    /// Time constant of the fast rate average that detects steps up (s).
    pub tau_fast: f64,
    /// Time constant of the rate average λ (s).
    pub tau_slow: f64,
    /// λ jumps to the fast average when that exceeds it by this fraction.
    pub step_threshold: f64,
    /// Smoothing time constant of S (s).
    pub tau_service: f64,
    /// Per-tick service-time samples are clamped to this (s). The core sets it
    /// to 1.5 × the maximum work delay: a longer mean means the host starved
    /// the workers of CPU, and more threads would not help.
    pub max_service_secs: f64,
    /// The target drops only when `want < (1 - down_hysteresis)·target` ...
    pub down_hysteresis: f64,
    /// ... for at least this long (s).
    pub down_delay_secs: f64,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        AutoscaleConfig {
            min_workers: 4,
            max_workers: 4096,
            utilisation: 0.8,
            drain_secs: 2.0,
            tau_fast: 0.5,
            tau_slow: 2.0,
            step_threshold: 0.3,
            tau_service: 2.0,
            max_service_secs: f64::INFINITY,
            down_hysteresis: 0.15,
            down_delay_secs: 2.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::RestartWindow;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::time::Instant;

    #[test]
    fn default_window_tolerates_the_servers_kill_rate() {
        // 20 kills/s for a minute, evenly spread, never trips the default.
        let p = RestartPolicy::default();
        let mut w = RestartWindow::new(p.max_restarts, p.window);
        let t0 = Instant::now();
        for i in 0..1200u64 {
            assert!(!w.record(t0 + Duration::from_millis(i * 50)));
        }
    }

    #[test]
    fn backoff_is_immediate_then_grows_bounded_with_jitter() {
        let p = RestartPolicy::default();
        let mut b = p.backoff();
        let mut rng = SmallRng::seed_from_u64(3);
        let t0 = Instant::now();
        assert_eq!(b.next(t0, &mut rng), Duration::ZERO);
        let mut t = t0;
        let mut prev_cap = Duration::ZERO;
        for n in 1..15u32 {
            t += Duration::from_millis(100);
            let d = b.next(t, &mut rng);
            let cap = (p.backoff_base * 2u32.pow((n - 1).min(20))).min(p.backoff_max);
            assert!(d <= cap && d >= cap / 2, "n={n} d={d:?} cap={cap:?}");
            assert!(cap >= prev_cap);
            prev_cap = cap;
        }
        assert_eq!(prev_cap, p.backoff_max);
        // A quiet period resets the streak.
        assert_eq!(b.next(t + p.backoff_reset, &mut rng), Duration::ZERO);
    }

    #[test]
    fn progress_between_restarts_starts_a_new_streak() {
        let mut rng = rand::thread_rng();
        let mut b = RestartPolicy::default().backoff();
        let t0 = Instant::now();
        assert_eq!(b.next(t0, &mut rng), Duration::ZERO);
        // A crash loop: the next restart soon after backs off.
        assert!(b.next(t0 + Duration::from_millis(1), &mut rng) > Duration::ZERO);
        // The worker made progress, then was killed again soon after: no pause.
        b.reset();
        assert_eq!(
            b.next(t0 + Duration::from_millis(2), &mut rng),
            Duration::ZERO
        );
    }
}
