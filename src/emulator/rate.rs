//! Send rates: the default swinging profile, constant rates, and `max`.
//!
//! Pure: a [`Schedule`] answers "what is the rate at profile time t", a
//! [`Pacer`] turns it into absolute send deadlines. The server does the sleeping.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::error::{EmulatorConfigError, ParseRateError};

/// How fast a stream sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Rate {
    /// Levels that swing by an order of magnitude (see [`RateProfile`]).
    Profile(RateProfile),
    /// A constant rate in events per second per stream.
    Constant(f64),
    /// As fast as the client reads.
    Max,
}

impl Default for Rate {
    fn default() -> Rate {
        Rate::Profile(RateProfile::default())
    }
}

impl FromStr for Rate {
    type Err = ParseRateError;

    /// `profile` (or `default`), `max`, or a number of events per second.
    fn from_str(s: &str) -> Result<Rate, ParseRateError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "profile" | "default" => Ok(Rate::default()),
            "max" => Ok(Rate::Max),
            other => match other.parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::Constant(r)),
                _ => Err(ParseRateError {
                    input: s.to_string(),
                }),
            },
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Profile(_) => write!(f, "profile"),
            Rate::Constant(r) => write!(f, "{r}"),
            Rate::Max => write!(f, "max"),
        }
    }
}

/// The default rate profile: per stream, a deterministic sequence of levels
/// `low → [mid] → high → [mid] → low → …` (each optional `mid` with probability
/// ½), each level drawn uniformly from its band and held for a time drawn
/// uniformly from its hold range.
///
/// With the defaults, any 60 s window holds at least 3 full seconds of a low
/// level (80–120 events/s) and of a high one (1,500–4,000 events/s): a cycle
/// without its low level lasts at most 10 + 15 + 10 = 35 s.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    /// Events/s band of low levels.
    pub low: (f64, f64),
    /// Events/s band of the intermediate levels.
    pub mid: (f64, f64),
    /// Events/s band of high levels.
    pub high: (f64, f64),
    /// Hold time range of low levels, seconds.
    pub low_hold: (f64, f64),
    /// Hold time range of intermediate levels, seconds.
    pub mid_hold: (f64, f64),
    /// Hold time range of high levels, seconds.
    pub high_hold: (f64, f64),
}

impl RateProfile {
    /// Checks that every band and hold range is finite, positive and ordered.
    pub fn validate(&self) -> Result<(), EmulatorConfigError> {
        let ranges = [
            ("low", self.low),
            ("mid", self.mid),
            ("high", self.high),
            ("low_hold", self.low_hold),
            ("mid_hold", self.mid_hold),
            ("high_hold", self.high_hold),
        ];
        for (name, (a, b)) in ranges {
            if !(a.is_finite() && b.is_finite() && a > 0.0 && a <= b) {
                return Err(EmulatorConfigError::ProfileRange {
                    range: name,
                    low: a,
                    high: b,
                });
            }
        }
        Ok(())
    }
}

impl Default for RateProfile {
    fn default() -> RateProfile {
        RateProfile {
            low: (80.0, 120.0),
            mid: (200.0, 900.0),
            high: (1_500.0, 4_000.0),
            low_hold: (3.0, 12.0),
            mid_hold: (2.0, 10.0),
            high_hold: (3.0, 15.0),
        }
    }
}

/// One held level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Level {
    /// Profile time the level starts, seconds.
    pub(super) start: f64,
    /// Profile time it ends, seconds.
    pub(super) end: f64,
    /// Events per second.
    pub(super) rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Low,
    MidUp,
    High,
    MidDown,
}

/// The levels of one stream's profile, generated lazily and deterministically.
#[derive(Debug, Clone)]
pub(super) struct Schedule {
    profile: RateProfile,
    rng: SmallRng,
    phase: Phase,
    current: Level,
}

fn uniform(rng: &mut SmallRng, (a, b): (f64, f64)) -> f64 {
    if b > a {
        rng.gen_range(a..b)
    } else {
        a
    }
}

impl Schedule {
    /// The profile's schedule for `seed` (derive it from the base seed and the
    /// stream number so that streams differ).
    pub(super) fn new(profile: RateProfile, seed: u64) -> Schedule {
        let mut rng = SmallRng::seed_from_u64(seed);
        let rate = uniform(&mut rng, profile.low);
        let hold = uniform(&mut rng, profile.low_hold).max(0.001);
        Schedule {
            profile,
            rng,
            phase: Phase::Low,
            current: Level {
                start: 0.0,
                end: hold,
                rate,
            },
        }
    }

    fn advance(&mut self) {
        let p = &self.profile;
        let mid = self.rng.gen_bool(0.5);
        self.phase = match self.phase {
            Phase::Low if mid => Phase::MidUp,
            Phase::Low | Phase::MidUp => Phase::High,
            Phase::High if mid => Phase::MidDown,
            Phase::High | Phase::MidDown => Phase::Low,
        };
        let (band, hold) = match self.phase {
            Phase::Low => (p.low, p.low_hold),
            Phase::MidUp | Phase::MidDown => (p.mid, p.mid_hold),
            Phase::High => (p.high, p.high_hold),
        };
        let rate = uniform(&mut self.rng, band);
        let hold = uniform(&mut self.rng, hold).max(0.001);
        let start = self.current.end;
        self.current = Level {
            start,
            end: start + hold,
            rate,
        };
    }

    /// The level in force at profile time `t` (seconds, not before the
    /// previously queried time).
    pub(super) fn level_at(&mut self, t: f64) -> Level {
        while t >= self.current.end {
            self.advance();
        }
        self.current
    }

    /// The rate at profile time `t` (events/s).
    pub(super) fn rate_at(&mut self, t: f64) -> f64 {
        self.level_at(t).rate
    }
}

/// Sends within this much of a deadline are batched into one wake-up, so a
/// stream at 4,000 events/s wakes about 250 times a second, not 4,000.
pub(super) const BATCH_SLACK: Duration = Duration::from_millis(4);
/// A stream that falls further behind its schedule than this (a slow client,
/// a starved machine) forgets the backlog instead of bursting to catch up.
pub(super) const MAX_LAG: Duration = Duration::from_secs(1);
const FAR_FUTURE: Duration = Duration::from_secs(365 * 86_400);

enum Pace {
    Schedule(Box<Schedule>),
    Constant(f64),
    Max,
}

/// Absolute send deadlines for one connection (no drift: each deadline is the
/// previous one plus one inter-event gap, not "now" plus a gap).
pub(super) struct Pacer {
    pace: Pace,
    origin: Instant,
    scale: f64,
    /// Profile time (seconds since `origin`, times `scale`) of the next event.
    due: f64,
}

impl Pacer {
    /// A pacer for `rate`. `origin` is the instant of profile time 0 (the
    /// server's start, so all clients of a stream see the same level);
    /// `scale` > 1 runs the profile faster (levels last `1/scale` as long and
    /// every rate is `scale` times higher). `now` starts the connection.
    pub(super) fn new(rate: &Rate, seed: u64, origin: Instant, scale: f64, now: Instant) -> Pacer {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let pace = match rate {
            Rate::Profile(p) => Pace::Schedule(Box::new(Schedule::new(p.clone(), seed))),
            Rate::Constant(r) => Pace::Constant(*r),
            Rate::Max => Pace::Max,
        };
        let mut pacer = Pacer {
            pace,
            origin,
            scale,
            due: 0.0,
        };
        pacer.due = pacer.profile_time(now);
        pacer
    }

    fn profile_time(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64() * self.scale
    }

    /// The deadline of the next event (`None`: send now, rate `max`).
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.pace {
            Pace::Max => None,
            _ => {
                let d = Duration::try_from_secs_f64(self.due / self.scale).unwrap_or(Duration::MAX);
                // Unreachable in practice (centuries ahead); never panic on it.
                Some(
                    self.origin
                        .checked_add(d)
                        .unwrap_or(self.origin + FAR_FUTURE),
                )
            }
        }
    }

    /// Whether the next event may go at `now` (its deadline is within
    /// [`BATCH_SLACK`]); otherwise the caller sleeps until [`Pacer::deadline`].
    pub(super) fn ready(&self, now: Instant) -> bool {
        match self.deadline() {
            None => true,
            Some(d) => d <= now + BATCH_SLACK,
        }
    }

    /// Records that the next event was sent at `now`: moves the deadline on by
    /// one inter-event gap at the rate in force, dropping a backlog over [`MAX_LAG`].
    pub(super) fn sent(&mut self, now: Instant) {
        let rate = match &mut self.pace {
            Pace::Max => return,
            Pace::Constant(r) => *r,
            Pace::Schedule(s) => s.rate_at(self.due),
        };
        self.due += 1.0 / rate.max(1e-6);
        let now_p = self.profile_time(now);
        let max_lag = MAX_LAG.as_secs_f64() * self.scale;
        if self.due < now_p - max_lag {
            self.due = now_p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("profile".parse::<Rate>(), Ok(Rate::default()));
        assert_eq!("250".parse::<Rate>(), Ok(Rate::Constant(250.0)));
        assert_eq!("0.5".parse::<Rate>(), Ok(Rate::Constant(0.5)));
        for bad in ["0", "-3", "fast", "NaN", "inf", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    /// Events per profile second of a schedule, computed the way the pacer
    /// spaces events.
    fn per_second_counts(seed: u64, secs: usize) -> Vec<usize> {
        let mut s = Schedule::new(RateProfile::default(), seed);
        let mut counts = vec![0; secs];
        let mut t = 0.0;
        while t < secs as f64 {
            counts[t as usize] += 1;
            t += 1.0 / s.rate_at(t);
        }
        counts
    }

    #[test]
    fn every_minute_of_the_default_profile_spans_an_order_of_magnitude() {
        for seed in 0..50 {
            let counts = per_second_counts(seed, 600);
            for w in counts.windows(60) {
                let max = *w.iter().max().unwrap();
                let min = *w.iter().min().unwrap();
                assert!(max >= 1_000, "seed {seed}: max {max}");
                assert!((70..=130).contains(&min), "seed {seed}: min {min}");
                assert!(max >= 10 * min, "seed {seed}: {min}..{max}");
            }
        }
    }

    #[test]
    fn levels_are_held_seconds_to_tens_of_seconds_and_deterministic() {
        let mut a = Schedule::new(RateProfile::default(), 7);
        let mut b = Schedule::new(RateProfile::default(), 7);
        let mut c = Schedule::new(RateProfile::default(), 8);
        let mut t = 0.0;
        let mut differ = false;
        let mut max_hold: f64 = 0.0;
        while t < 3_600.0 {
            let la = a.level_at(t);
            assert_eq!(la, b.level_at(t));
            differ |= la.rate != c.rate_at(t);
            let hold = la.end - la.start;
            assert!((2.0..=15.0).contains(&hold), "{hold}");
            max_hold = max_hold.max(hold);
            t = la.end;
        }
        assert!(differ);
        assert!(max_hold > 10.0);
    }

    #[test]
    fn profiles_are_validated() {
        assert!(RateProfile::default().validate().is_ok());
        let bad = RateProfile {
            low: (0.0, 10.0),
            ..RateProfile::default()
        };
        assert!(bad.validate().is_err());
        let bad = RateProfile {
            high_hold: (5.0, f64::NAN),
            ..RateProfile::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn pacer_deadlines_do_not_drift() {
        let origin = Instant::now();
        let mut p = Pacer::new(&Rate::Constant(1_000.0), 1, origin, 1.0, origin);
        // Sending late does not push later deadlines back.
        for _ in 0..500 {
            let late = p.deadline().unwrap() + Duration::from_micros(300);
            p.sent(late);
        }
        let d = p.deadline().unwrap() - origin;
        assert!((d.as_secs_f64() - 0.5).abs() < 1e-6, "{d:?}");
        assert!(p.ready(origin + Duration::from_millis(497)));
        assert!(!p.ready(origin + Duration::from_millis(495)));
    }

    #[test]
    fn pacer_forgets_a_backlog_beyond_max_lag() {
        let origin = Instant::now();
        let mut p = Pacer::new(&Rate::Constant(100.0), 1, origin, 1.0, origin);
        let much_later = origin + Duration::from_secs(5);
        p.sent(much_later);
        let d = p.deadline().unwrap();
        assert!(d >= much_later - MAX_LAG, "{:?}", much_later - d);
    }

    #[test]
    fn time_scale_compresses_the_profile() {
        let origin = Instant::now();
        let mut fast = Pacer::new(&Rate::default(), 3, origin, 10.0, origin);
        let mut slow = Pacer::new(&Rate::default(), 3, origin, 1.0, origin);
        for _ in 0..1_000 {
            let d = fast.deadline().unwrap();
            fast.sent(d);
            let d = slow.deadline().unwrap();
            slow.sent(d);
        }
        let f = (fast.deadline().unwrap() - origin).as_secs_f64();
        let s = (slow.deadline().unwrap() - origin).as_secs_f64();
        assert!((s / f - 10.0).abs() < 1e-6, "{s} {f}");
        let max = Pacer::new(&Rate::Max, 3, origin, 1.0, origin);
        assert!(max.deadline().is_none() && max.ready(origin));
    }
}
