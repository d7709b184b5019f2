//! Autoscaler: sizes the worker pools by Little's law from the measured arrival
//! rate and service time.
//!
//! [`Controller`] is pure (fed [`Measurement`]s with their own `dt`, so it is
//! tested on synthetic time); [`Meter`] turns the pools' monotonically increasing
//! counters into measurements. The ticker that calls both every
//! `CoreConfig::tick` (default 250 ms, at most 1 s) is the pool supervisor
//! thread in [`super::pool`].
//!
//! The target size, every tick:
//!
//! ```text
//! fast = EWMA of arrivals/dt with time constant tau_fast (0.5 s)
//! λ    = EWMA of arrivals/dt with time constant tau_slow (2 s);
//!        if fast > (1 + step_threshold)·λ (a step up, threshold 30%), λ := fast
//! S    = EWMA of the mean service time of the messages completed in the tick (tau_service 2 s),
//!        each tick's mean clamped to max_service_secs (1.5 × the maximum work delay)
//! want = ceil( λ·S/ρ  +  queued·S/drain_secs )   clamped to min..=max
//! ```
//!
//! `ρ` is the utilisation target (0.8) and `queued` the messages dispatched but
//! not yet started (drain_secs 2 s). Up is fast: a step in the rate is caught by
//! the fast average within a tick or two, and when `want` exceeds the target
//! the target jumps to `want` at once. Down is slow: `λ` falls with the slow
//! time constant only, and the target only drops once `want` has stayed below
//! `(1 − down_hysteresis)` (15%) of it for `down_delay_secs` (2 s); it then drops
//! to `want`. That gives a staircase down and no up/down flapping on the
//! Poisson noise of the measured rate; the slow average is unbiased, so the
//! noise does not ratchet the size up either.

use super::config::AutoscaleConfig;

/// What happened in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Measurement {
    /// Length of the tick (s).
    pub dt: f64,
    /// Messages that arrived (were dispatched) during the tick.
    pub arrivals: u64,
    /// Messages completed during the tick.
    pub completions: u64,
    /// Sum of the service times of those completions (s).
    pub service_secs: f64,
    /// Messages waiting in inboxes (dispatched, not yet started) at the end of the tick.
    pub queued: u64,
}

/// The pure Little's-law controller; one per pool.
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    cfg: AutoscaleConfig,
    lambda: f64,
    fast: f64,
    service: f64,
    target: usize,
    below_for: f64,
    last_want: usize,
}

impl Controller {
    /// `initial_service` (s) is the prior for S until completions are measured
    /// (the configured mean delay).
    pub(crate) fn new(cfg: AutoscaleConfig, initial_service: f64) -> Controller {
        let min = cfg.min_workers.max(1);
        Controller {
            target: min,
            last_want: min,
            lambda: 0.0,
            fast: 0.0,
            service: initial_service.max(0.0),
            below_for: 0.0,
            cfg,
        }
    }

    /// Feeds one tick; returns the new target size.
    pub(crate) fn update(&mut self, m: Measurement) -> usize {
        if m.dt > 0.0 {
            let inst = m.arrivals as f64 / m.dt;
            self.fast += alpha(m.dt, self.cfg.tau_fast) * (inst - self.fast);
            self.lambda += alpha(m.dt, self.cfg.tau_slow) * (inst - self.lambda);
            if self.fast > (1.0 + self.cfg.step_threshold) * self.lambda {
                self.lambda = self.fast;
            }
        }
        if m.completions > 0 {
            let s = (m.service_secs / m.completions as f64).min(self.cfg.max_service_secs);
            self.service += alpha(m.dt, self.cfg.tau_service) * (s - self.service);
        }
        let want = self.want(m.queued);
        self.last_want = want;
        if want > self.target {
            self.target = want;
            self.below_for = 0.0;
        } else if (want as f64) < (1.0 - self.cfg.down_hysteresis) * self.target as f64 {
            self.below_for += m.dt;
            if self.below_for >= self.cfg.down_delay_secs {
                self.target = want;
                self.below_for = 0.0;
            }
        } else {
            self.below_for = 0.0;
        }
        self.target
    }

    fn want(&self, queued: u64) -> usize {
        let rho = self.cfg.utilisation.clamp(0.05, 1.0);
        let drain = self.cfg.drain_secs.max(0.001);
        let raw = self.lambda * self.service / rho + queued as f64 * self.service / drain;
        let max = self.cfg.max_workers.max(self.cfg.min_workers.max(1));
        let raw = if raw.is_finite() {
            raw.ceil()
        } else {
            max as f64
        };
        (raw.max(0.0) as usize).clamp(self.cfg.min_workers.max(1), max)
    }

    #[cfg(test)]
    /// The current target size.
    pub(crate) fn target(&self) -> usize {
        self.target
    }

    /// The smoothed arrival rate λ (messages/s).
    pub(crate) fn arrival_rate(&self) -> f64 {
        self.lambda
    }

    /// The smoothed service time S (s).
    pub(crate) fn service_secs(&self) -> f64 {
        self.service
    }

    /// λ·S/ρ, the Little's-law size without the backlog term (not clamped).
    pub(crate) fn littles_law_size(&self) -> f64 {
        self.lambda * self.service / self.cfg.utilisation.clamp(0.05, 1.0)
    }
}

fn alpha(dt: f64, tau: f64) -> f64 {
    if tau <= 0.0 {
        1.0
    } else {
        1.0 - (-dt / tau).exp()
    }
}

/// Turns cumulative counters into per-tick [`Measurement`]s.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter {
    last: Option<(f64, u64, u64, u64)>,
}

impl Meter {
    /// `now` in seconds (any origin), cumulative `arrivals`, `completions` and
    /// service time in µs, and the current backlog. Returns `None` on the first call.
    pub(crate) fn sample(
        &mut self,
        now: f64,
        arrivals: u64,
        completions: u64,
        service_us: u64,
        queued: u64,
    ) -> Option<Measurement> {
        let prev = self.last.replace((now, arrivals, completions, service_us));
        let (t0, a0, c0, s0) = prev?;
        Some(Measurement {
            dt: (now - t0).max(0.0),
            arrivals: arrivals.saturating_sub(a0),
            completions: completions.saturating_sub(c0),
            service_secs: service_us.saturating_sub(s0) as f64 / 1e6,
            queued,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};

    const S: f64 = 0.275;
    const TICK: f64 = 0.25;

    /// A fluid/Poisson model of a pool: arrivals are Poisson at `rate`, the
    /// pool serves at most `workers/S` per second, the rest queues.
    struct Sim {
        ctl: Controller,
        queue: f64,
        rng: SmallRng,
        t: f64,
        trace: Vec<(f64, f64, usize)>, // (t, rate, target)
    }

    impl Sim {
        fn new(seed: u64) -> Sim {
            Sim {
                ctl: Controller::new(AutoscaleConfig::default(), S),
                queue: 0.0,
                rng: SmallRng::seed_from_u64(seed),
                t: 0.0,
                trace: Vec::new(),
            }
        }

        fn run(&mut self, rate: f64, secs: f64) {
            let steps = (secs / TICK).round() as usize;
            for _ in 0..steps {
                let arrivals = Poisson::new(rate * TICK).unwrap().sample(&mut self.rng) as u64;
                let workers = self.ctl.target() as f64;
                let capacity = workers / S * TICK;
                let served = (self.queue + arrivals as f64).min(capacity);
                self.queue = self.queue + arrivals as f64 - served;
                // service time measured with ±10% noise
                let noise = 1.0 + (rand::Rng::gen::<f64>(&mut self.rng) - 0.5) * 0.2;
                let m = Measurement {
                    dt: TICK,
                    arrivals,
                    completions: served.round() as u64,
                    service_secs: served.round() * S * noise,
                    queued: self.queue.round() as u64,
                };
                self.ctl.update(m);
                self.t += TICK;
                self.trace.push((self.t, rate, self.ctl.target()));
            }
        }
    }

    fn little(rate: f64) -> f64 {
        rate * S / 0.8
    }

    fn within(target: usize, want: f64, tol: f64) -> bool {
        (target as f64 - want).abs() <= tol * want
    }

    /// First time (s after `from`) from which the target stays within 20% of
    /// `want` until `to`.
    fn settle_time(trace: &[(f64, f64, usize)], from: f64, to: f64, want: f64) -> Option<f64> {
        let phase: Vec<_> = trace
            .iter()
            .filter(|(t, _, _)| *t > from && *t <= to)
            .collect();
        let last_out = phase.iter().rposition(|(_, _, n)| !within(*n, want, 0.2));
        match last_out {
            None => Some(phase.first()?.0 - from),
            Some(i) if i + 1 < phase.len() => Some(phase[i + 1].0 - from),
            Some(_) => None,
        }
    }

    /// The target's monotone legs (direction, from, to), after `from_t`.
    fn legs(trace: &[(f64, f64, usize)], from_t: f64) -> Vec<(i64, usize, usize)> {
        let mut legs: Vec<(i64, usize, usize)> = Vec::new();
        for w in trace.windows(2).filter(|w| w[0].0 >= from_t) {
            let (a, b) = (w[0].2, w[1].2);
            let d = (b as i64 - a as i64).signum();
            if d == 0 {
                continue;
            }
            match legs.last_mut() {
                Some(l) if l.0 == d => l.2 = b,
                _ => legs.push((d, a, b)),
            }
        }
        legs
    }

    #[test]
    fn steps_100_2000_100_settle_in_time_without_oscillating() {
        for seed in 1..=10 {
            check_steps(seed);
        }
    }

    fn check_steps(seed: u64) {
        let mut sim = Sim::new(seed);
        sim.run(100.0, 20.0);
        sim.run(2000.0, 30.0);
        sim.run(100.0, 30.0);
        let trace = sim.trace.clone();
        let changes: Vec<_> = trace
            .windows(2)
            .filter(|w| w[0].2 != w[1].2)
            .map(|w| (w[1].0, w[1].2))
            .collect();
        eprintln!("seed {seed}: target changes (t, size): {changes:?}");
        let low = settle_time(&trace, 0.0, 20.0, little(100.0)).unwrap();
        assert!(low <= 15.0, "initial settle {low}s");
        let up = settle_time(&trace, 20.0, 50.0, little(2000.0))
            .unwrap_or_else(|| panic!("never settled up: {trace:?}"));
        assert!(up <= 3.0, "up took {up}s: {trace:?}");
        let down = settle_time(&trace, 50.0, 80.0, little(100.0))
            .unwrap_or_else(|| panic!("never settled down: {trace:?}"));
        assert!(down <= 15.0, "down took {down}s: {trace:?}");
        // No oscillation: after the start-up, the only moves of 25% or more
        // are one leg up at the step up and one leg down after the step down;
        // everything else is a noise nudge (inside the ±20% band checked below).
        let big: Vec<_> = legs(&trace, 10.0)
            .into_iter()
            .filter(|(_, a, b)| a.abs_diff(*b) as f64 >= 0.25 * (*a.max(b)) as f64)
            .collect();
        assert_eq!(big.len(), 2, "legs {big:?}: {changes:?}");
        assert!(big[0].0 > 0 && big[1].0 < 0, "legs {big:?}");
        // And no sawtooth: in the settled windows the target never leaves the band.
        for (t, rate, n) in &trace {
            let settled = (*t > 20.0 + up && *t <= 50.0) || (*t > 50.0 + down);
            if settled {
                assert!(within(*n, little(*rate), 0.2), "t={t} n={n}");
            }
        }
    }

    #[test]
    fn up_is_immediate_down_waits_for_hysteresis() {
        let cfg = AutoscaleConfig {
            tau_fast: 0.0,
            tau_slow: 0.0,
            tau_service: 0.0,
            ..AutoscaleConfig::default()
        };
        let mut c = Controller::new(cfg, 0.1);
        let m = |arrivals| Measurement {
            dt: 1.0,
            arrivals,
            completions: arrivals,
            service_secs: arrivals as f64 * 0.1,
            queued: 0,
        };
        assert_eq!(c.update(m(800)), 100); // 800 * 0.1 / 0.8
                                           // 95 is within the 10% band: stays.
        assert_eq!(c.update(m(760)), 100);
        assert_eq!(c.update(m(760)), 100);
        // 50 is below the band: down after down_delay_secs (2 ticks of 1 s).
        assert_eq!(c.update(m(400)), 100);
        assert_eq!(c.update(m(400)), 50);
        assert_eq!(c.update(m(1600)), 200);
    }

    #[test]
    fn backlog_adds_drain_workers_and_bounds_hold() {
        let cfg = AutoscaleConfig {
            tau_fast: 0.0,
            tau_slow: 0.0,
            tau_service: 0.0,
            min_workers: 2,
            max_workers: 50,
            ..AutoscaleConfig::default()
        };
        let mut c = Controller::new(cfg, 0.1);
        let m = Measurement {
            dt: 1.0,
            arrivals: 80,
            completions: 80,
            service_secs: 8.0,
            queued: 200,
        };
        // 80*0.1/0.8 = 10, + 200*0.1/2 = 10
        assert_eq!(c.update(m), 20);
        let flood = Measurement {
            arrivals: 100_000,
            ..m
        };
        assert_eq!(c.update(flood), 50);
        let idle = Measurement {
            arrivals: 0,
            completions: 0,
            service_secs: 0.0,
            queued: 0,
            dt: 1.0,
        };
        for _ in 0..5 {
            c.update(idle);
        }
        assert_eq!(c.target(), 2);
    }

    #[test]
    fn service_samples_are_clamped() {
        let cfg = AutoscaleConfig {
            tau_slow: 0.0,
            tau_service: 0.0,
            max_service_secs: 0.5,
            ..AutoscaleConfig::default()
        };
        let mut c = Controller::new(cfg, 0.1);
        c.update(Measurement {
            dt: 1.0,
            arrivals: 100,
            completions: 100,
            service_secs: 300.0, // 3 s each: a stalled host
            queued: 0,
        });
        assert_eq!(c.service_secs(), 0.5);
        assert_eq!(c.target(), 63); // ceil(100 * 0.5 / 0.8)
    }

    #[test]
    fn meter_takes_deltas() {
        let mut m = Meter::default();
        assert_eq!(m.sample(10.0, 5, 5, 1_000, 0), None);
        let x = m.sample(10.5, 105, 55, 2_001_000, 3).unwrap();
        assert_eq!(x.dt, 0.5);
        assert_eq!(x.arrivals, 100);
        assert_eq!(x.completions, 50);
        assert!((x.service_secs - 2.0).abs() < 1e-9);
        assert_eq!(x.queued, 3);
    }
}
