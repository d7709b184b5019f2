//! Ingest: SSE parsing, tweet decoding, stream readers, lexicon fetch (issue 3).
//!
//! - [`sse`]: a pure, incremental WHATWG event-stream parser with a bound on
//!   one event's size;
//! - [`decode`]: one event's data → kill | tweet (+ extracted original) | malformed;
//! - [`spawn_reader`]: one blocking reader thread per stream, reconnecting with
//!   capped exponential backoff and jitter;
//! - [`fetch_lexicon`]: the sentiment lexicon from `<server>/emotion_values`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub mod decode;
#[doc(hidden)]
pub mod fixture;
pub mod lexicon;
pub mod reader;
pub mod sse;

pub use lexicon::fetch_lexicon;
pub use reader::spawn_reader;

/// Configuration of the stream readers and the lexicon fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:4000` (a trailing `/` is fine).
    pub server: String,
    /// Largest SSE event accepted (see [`sse`] for how it is measured); a
    /// bigger one is skipped and counted as oversized. Default 1 MiB.
    pub max_event_bytes: usize,
    /// A connection that delivers no byte for this long is dropped and
    /// reconnected. Also bounds how long shutdown waits on a silent server.
    /// Default 15 s.
    pub read_timeout: Duration,
    /// Timeout of one TCP connect. Default 5 s.
    pub connect_timeout: Duration,
    /// First reconnect delay (when the server sent no `retry:`). Default 100 ms.
    pub backoff_initial: Duration,
    /// Cap of the exponential backoff. Default 10 s.
    pub backoff_max: Duration,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            server: "http://127.0.0.1:4000".to_owned(),
            max_event_bytes: sse::DEFAULT_MAX_EVENT_BYTES,
            read_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// Errors of the ingest stage that reach the caller.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Shutdown was triggered before the operation could finish.
    #[error("shut down before the server answered")]
    Shutdown,
    /// The server answered, but with no usable lexicon.
    #[error("the lexicon from {url} is unusable: {source}")]
    Lexicon {
        url: String,
        #[source]
        source: crate::lexicon::LexiconError,
    },
}

/// Live counters of one stream reader (all monotonic).
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Connections that got a `200` answer.
    pub connects: AtomicU64,
    /// Times the reader went back to connect after a connection ended or failed.
    pub reconnects: AtomicU64,
    /// Connection attempts that failed (transport error or non-200 status).
    pub connect_failures: AtomicU64,
    /// SSE events dispatched by the parser (data-less blocks are not events).
    pub events: AtomicU64,
    /// Body bytes read.
    pub bytes: AtomicU64,
    /// Tweets sent on, extracted originals included.
    pub tweets: AtomicU64,
    /// Originals extracted from `retweeted_status` (also counted in `tweets`).
    pub retweets: AtomicU64,
    /// Kill messages sent on.
    pub kills: AtomicU64,
    /// Events skipped because their data is neither a kill nor a valid tweet.
    pub malformed: AtomicU64,
    /// Malformed `retweeted_status` objects dropped while their retweet went on.
    pub malformed_originals: AtomicU64,
    /// Events skipped for exceeding `max_event_bytes`.
    pub oversized: AtomicU64,
}

/// A point-in-time copy of [`SourceStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceSnapshot {
    pub connects: u64,
    pub reconnects: u64,
    pub connect_failures: u64,
    pub events: u64,
    pub bytes: u64,
    pub tweets: u64,
    pub retweets: u64,
    pub kills: u64,
    pub malformed: u64,
    pub malformed_originals: u64,
    pub oversized: u64,
}

impl SourceStats {
    /// A fresh set of zeroed counters.
    pub fn new() -> SourceStats {
        SourceStats::default()
    }

    /// Reads every counter (each one atomically; not a consistent cut).
    pub fn snapshot(&self) -> SourceSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SourceSnapshot {
            connects: g(&self.connects),
            reconnects: g(&self.reconnects),
            connect_failures: g(&self.connect_failures),
            events: g(&self.events),
            bytes: g(&self.bytes),
            tweets: g(&self.tweets),
            retweets: g(&self.retweets),
            kills: g(&self.kills),
            malformed: g(&self.malformed),
            malformed_originals: g(&self.malformed_originals),
            oversized: g(&self.oversized),
        }
    }
}

impl SourceSnapshot {
    /// Field-wise sum (e.g. of both streams).
    pub fn sum(&self, o: &SourceSnapshot) -> SourceSnapshot {
        SourceSnapshot {
            connects: self.connects + o.connects,
            reconnects: self.reconnects + o.reconnects,
            connect_failures: self.connect_failures + o.connect_failures,
            events: self.events + o.events,
            bytes: self.bytes + o.bytes,
            tweets: self.tweets + o.tweets,
            retweets: self.retweets + o.retweets,
            kills: self.kills + o.kills,
            malformed: self.malformed + o.malformed,
            malformed_originals: self.malformed_originals + o.malformed_originals,
            oversized: self.oversized + o.oversized,
        }
    }
}

/// Joins the base URL and a route without doubling the `/`.
pub(crate) fn join_url(server: &str, route: &str) -> String {
    format!("{}{}", server.trim_end_matches('/'), route)
}

/// Capped exponential backoff with jitter.
///
/// The delay of attempt `n` (0 after a connection that delivered events) is
/// `min(base · 2ⁿ, cap)` where `base` is the server's `retry:` when it sent
/// one, else `backoff_initial`, and `cap` is `max(backoff_max, base)`; the
/// actual wait is that delay times a uniform factor in [1, 1.25), so it never
/// undercuts the server's `retry:` and concurrent clients spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    /// Back to the first delay (after a productive connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, without jitter, and advances.
    /// `retry` is the server's `retry:` value, if any.
    pub fn next_delay(&mut self, retry: Option<Duration>) -> Duration {
        let base = retry.unwrap_or(self.initial);
        let cap = self.max.max(base);
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.attempt = self.attempt.saturating_add(1);
        base.saturating_mul(factor).min(cap)
    }

    /// [`Backoff::next_delay`] with jitter: × uniform [1, 1.25).
    pub fn next_wait(&mut self, retry: Option<Duration>, rng: &mut impl rand::Rng) -> Duration {
        let delay = self.next_delay(retry);
        Duration::try_from_secs_f64(delay.as_secs_f64() * rng.gen_range(1.0..1.25)).unwrap_or(delay)
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

    #[test]
    fn url_join() {
        assert_eq!(join_url("http://h:1/", "/tweets/1"), "http://h:1/tweets/1");
        assert_eq!(join_url("http://h:1", "/tweets/1"), "http://h:1/tweets/1");
    }
}
