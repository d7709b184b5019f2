//! The one back-off: capped exponential delays with jitter.
//!
//! Two callers, two shapes of the same rule:
//!
//! - **Reconnects** ([`Backoff::new`]): the delay of attempt `n` (0 after a
//!   productive connection, see [`Backoff::reset`]) is `min(base · 2ⁿ, cap)`,
//!   where `base` is the server's `retry:` when the caller passes one, else
//!   the configured initial delay, and `cap` is `max(max, base)`, so a
//!   server's `retry:` is never undercut. The wait is that delay times a
//!   uniform factor in [1, 1.25) ([`Jitter::Stretch`]), so concurrent clients
//!   spread out without waiting less than asked.
//! - **Crash loops** ([`Backoff::crash_loop`]): the first restart is
//!   immediate; each further one within `quiet` of the previous waits
//!   `base · 2^(n−1)` capped at `max`, times a uniform factor in [0.5, 1]
//!   ([`Jitter::Shrink`]), so many workers killed at once do not restart in
//!   lock-step. A restart `quiet` or more after the previous one, or after
//!   [`Backoff::reset`] (the worker made progress), starts a new streak.
//!
//! The exponent saturates, so no number of attempts overflows.

use std::time::{Duration, Instant};

use rand::Rng;

/// How a [`Backoff`] randomises its delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jitter {
    /// × uniform [0.5, 1]: never longer than the delay.
    Shrink,
    /// × uniform [1, 1.25): never shorter than the delay.
    Stretch,
}

/// Capped exponential back-off with jitter (see the module documentation).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: Jitter,
    /// The first attempt of a streak waits nothing (crash loops).
    first_free: bool,
    /// An attempt this long after the previous one starts a new streak.
    quiet: Option<Duration>,
    attempt: u32,
    last: Option<Instant>,
}

impl Backoff {
    /// A reconnect back-off starting at `initial`, capped at `max`, with
    /// [`Jitter::Stretch`].
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            base: initial,
            max,
            jitter: Jitter::Stretch,
            first_free: false,
            quiet: None,
            attempt: 0,
            last: None,
        }
    }

    /// A crash-loop back-off: immediate first restart, then `base·2^(n−1)`
    /// capped at `max` with [`Jitter::Shrink`]; a restart `quiet` after the
    /// previous one starts a new streak.
    pub fn crash_loop(base: Duration, max: Duration, quiet: Duration) -> Backoff {
        Backoff {
            base,
            max,
            jitter: Jitter::Shrink,
            first_free: true,
            quiet: Some(quiet),
            attempt: 0,
            last: None,
        }
    }

    /// Back to the first delay of a streak (after a productive connection, or
    /// a worker that finished work since its previous restart).
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.last = None;
    }

    /// The delay before the next attempt, without jitter, and advances.
    /// `base` overrides the configured base delay (a server's `retry:`).
    pub fn next_delay(&mut self, base: Option<Duration>) -> Duration {
        let base = base.unwrap_or(self.base);
        let cap = self.max.max(base);
        let n = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        let exp = match (self.first_free, n) {
            (true, 0) => return Duration::ZERO,
            (true, n) => n - 1,
            (false, n) => n,
        };
        base.saturating_mul(2u32.saturating_pow(exp)).min(cap)
    }

    /// [`Backoff::next_delay`] with this back-off's [`Jitter`].
    pub fn next_wait<R: Rng + ?Sized>(&mut self, base: Option<Duration>, rng: &mut R) -> Duration {
        let delay = self.next_delay(base);
        match self.jitter {
            Jitter::Shrink if delay.is_zero() => delay,
            Jitter::Shrink => delay.mul_f64(rng.gen_range(0.5..=1.0)),
            Jitter::Stretch => {
                Duration::try_from_secs_f64(delay.as_secs_f64() * rng.gen_range(1.0..1.25))
                    .unwrap_or(delay)
            }
        }
    }

    /// The jittered pause before an attempt happening at `now`: first forgets
    /// the streak when the previous attempt was `quiet` or more ago.
    pub fn next<R: Rng + ?Sized>(&mut self, now: Instant, rng: &mut R) -> Duration {
        let quiet = match (self.quiet, self.last) {
            (Some(q), Some(l)) => now.saturating_duration_since(l) >= q,
            _ => false,
        };
        if quiet {
            self.attempt = 0;
        }
        self.last = Some(now);
        self.next_wait(None, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let d: Vec<_> = (0..6).map(|_| b.next_delay(None)).collect();
        assert_eq!(
            d,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        b.reset();
        assert_eq!(b.next_delay(None), ms(100));
        for i in 0..100 {
            let d = b.next_delay(None);
            if i >= 4 {
                assert_eq!(d, ms(1000), "no overflow after many attempts");
            }
        }
    }

    #[test]
    fn backoff_honours_server_retry() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        assert_eq!(
            b.next_delay(Some(ms(3000))),
            ms(3000),
            "retry beyond the cap is honoured"
        );
        assert_eq!(b.next_delay(Some(ms(300))), ms(600));
        let mut rng = rand::rngs::mock::StepRng::new(u64::MAX / 2, 0);
        b.reset();
        let w = b.next_wait(Some(ms(500)), &mut rng);
        assert!(w >= ms(500) && w < ms(625), "{w:?}");
        // An absurd retry does not overflow.
        let huge = Duration::from_millis(u64::MAX);
        assert!(b.next_wait(Some(huge), &mut rng) >= huge / 2);
    }
}
