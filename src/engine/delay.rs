//! The per-message delay of a worker, and its `--work-delay` syntax.
//!
//! The lab requires every worker to sleep a random, normally distributed time
//! per message: by default normal(mean 275 ms, sd 75 ms) clamped to
//! 50..500 ms. `MIN..MAX` on the command line is the normal distribution with
//! mean (MIN+MAX)/2 and sd (MAX−MIN)/6, clamped to MIN..MAX; `0` (or `off`)
//! is no delay, for benchmarks of the overhead and for tests.
//!
//! With a timer slack (`CoreConfig::timer_slack`, off by default) a sleep
//! lasts the sampled delay plus at most the slack.
//!
//! Pure: sampling takes the random generator as an argument.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

/// The per-message delay of a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkDelay {
    /// No delay (benchmarks of the overhead, tests).
    Off,
    /// Normally distributed, clamped to `min..=max` (all in ms).
    Normal {
        /// Mean (ms).
        mean: f64,
        /// Standard deviation (ms).
        sd: f64,
        /// Lower clamp (ms).
        min: f64,
        /// Upper clamp (ms).
        max: f64,
    },
}

impl Default for WorkDelay {
    /// The lab's: normal(mean 275 ms, sd 75 ms) clamped to 50..500 ms.
    fn default() -> Self {
        WorkDelay::Normal {
            mean: 275.0,
            sd: 75.0,
            min: 50.0,
            max: 500.0,
        }
    }
}

/// A `--work-delay` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid work delay {0:?}: expected MIN..MAX in ms (e.g. 50..500) or 0 for none")]
pub struct WorkDelayParseError(
    /// The text that did not parse.
    pub String,
);

impl FromStr for WorkDelay {
    type Err = WorkDelayParseError;

    /// `"0"` (or `"off"`) is [`WorkDelay::Off`]; `"MIN..MAX"` (ms) is a normal
    /// distribution with mean (MIN+MAX)/2 and sd (MAX−MIN)/6, clamped to
    /// MIN..MAX — `"50..500"` is the lab's 275 ± 75 ms. `"N..N"` is a fixed N ms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || WorkDelayParseError(s.to_string());
        let t = s.trim();
        if t == "0" || t.eq_ignore_ascii_case("off") {
            return Ok(WorkDelay::Off);
        }
        let (a, b) = t.split_once("..").ok_or_else(err)?;
        let min: u64 = a.trim().parse().map_err(|_| err())?;
        let max: u64 = b.trim().parse().map_err(|_| err())?;
        if min > max || max > 3_600_000 {
            return Err(err());
        }
        if max == 0 {
            return Ok(WorkDelay::Off);
        }
        let (min, max) = (min as f64, max as f64);
        Ok(WorkDelay::Normal {
            mean: (min + max) / 2.0,
            sd: (max - min) / 6.0,
            min,
            max,
        })
    }
}

impl fmt::Display for WorkDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkDelay::Off => write!(f, "0"),
            WorkDelay::Normal { min, max, .. } => write!(f, "{min}..{max}"),
        }
    }
}

impl WorkDelay {
    /// The mean delay, the autoscaler's prior for the service time.
    pub fn mean(&self) -> Duration {
        match self {
            WorkDelay::Off => Duration::ZERO,
            WorkDelay::Normal { mean, .. } => Duration::from_secs_f64(mean / 1000.0),
        }
    }

    /// One random delay.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            WorkDelay::Off => Duration::ZERO,
            WorkDelay::Normal { mean, sd, min, max } => {
                let ms = match rand_distr::Normal::new(mean, sd.max(0.0)) {
                    Ok(n) => rng.sample(n),
                    Err(_) => mean,
                };
                Duration::from_secs_f64(ms.clamp(min, max).max(0.0) / 1000.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn work_delay_parses() {
        assert_eq!("0".parse::<WorkDelay>(), Ok(WorkDelay::Off));
        assert_eq!("50..500".parse::<WorkDelay>(), Ok(WorkDelay::default()));
        assert_eq!(
            "10..10".parse::<WorkDelay>(),
            Ok(WorkDelay::Normal {
                mean: 10.0,
                sd: 0.0,
                min: 10.0,
                max: 10.0
            })
        );
        for bad in ["", "5", "500..50", "a..b", "-1..5", "1...5"] {
            assert!(bad.parse::<WorkDelay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn work_delay_samples_stay_clamped_around_the_mean() {
        let d = WorkDelay::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let n = 20_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let s = d.sample(&mut rng).as_secs_f64() * 1000.0;
            assert!((50.0..=500.0).contains(&s));
            sum += s;
        }
        let mean = sum / n as f64;
        assert!((mean - 275.0).abs() < 3.0, "mean {mean}");
        assert_eq!(WorkDelay::Off.sample(&mut rng), Duration::ZERO);
        assert_eq!(d.mean(), Duration::from_millis(275));
    }
}
