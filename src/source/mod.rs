//! Ingest: SSE parsing, tweet decoding, stream readers, lexicon fetch. Every
//! event of a stream is read exactly once per connection, none is lost to framing,
//! and a bad event is counted and skipped, never fatal.
//!
//! - `sse` ([`SseParser`]): a pure, incremental WHATWG event-stream parser with a bound on
//!   one event's size;
//! - `decode` ([`decode()`]): one event's data → kill | tweet (+ extracted original) | malformed;
//! - [`spawn_reader`]: one blocking reader thread per stream, reconnecting with
//!   capped exponential backoff and jitter;
//! - [`fetch_lexicon`]: the sentiment lexicon from `<server>/emotion_values`;
//! - `publish` ([`spawn_publishing_reader`]): the readers of `tweetflow ingest`, which
//!   publish each event to JetStream instead of decoding it;
//! - `fetch` ([`spawn_fetcher`], [`spawn_acker`]): the readers of `run --jetstream`, which
//!   pull the stream's durable consumer, and the acks after commit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod decode;
mod fetch;
mod http;
pub(crate) use http::agent;
mod lexicon;
mod publish;
mod reader;
mod sse;

pub use decode::{decode, Decoded, DecodedTweets};
pub(crate) use fetch::{spawn_acker, spawn_fetcher, FetchConfig, Tracker};
pub use lexicon::fetch_lexicon;
pub(crate) use lexicon::{fetch_lexicon_reporting, fetch_lexicon_text, FetchProgress};
pub(crate) use publish::spawn_publishing_reader;
pub use reader::spawn_reader;
pub use sse::{SseEvent, SseEvents, SseParser};

/// Configuration of the stream readers and the lexicon fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:4000` (a trailing `/` is fine).
    pub server: String,
    /// Largest SSE event accepted (see [`SseParser`] for how it is measured); a
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
    /// CA certificates (PEM) an `https://` server's certificate must be signed
    /// by, instead of the system's roots (for a private or self-signed CA).
    pub ca_file: Option<PathBuf>,
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
            ca_file: None,
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
        /// The lexicon URL that was fetched.
        /// The lexicon URL that was fetched.
        url: String,
        /// Why it is unusable.
        #[source]
        source: crate::score::LexiconError,
    },
    /// TLS for `https://` servers cannot be set up.
    #[error("TLS for the tweet server (CA file {}): {message}", ca_file.display())]
    Tls {
        /// [`SourceConfig::ca_file`] (empty when none was given).
        ca_file: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Live counters of one stream reader (all monotonic).
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Connections that got a `200` answer.
    pub(crate) connects: AtomicU64,
    /// 1 while a connection's body is being read, else 0 (a gauge).
    pub(crate) connected: AtomicU64,
    /// Times the reader went back to connect after a connection ended or failed.
    pub(crate) reconnects: AtomicU64,
    /// Connection attempts that failed (transport error or non-200 status).
    pub(crate) connect_failures: AtomicU64,
    /// SSE events dispatched by the parser (data-less blocks are not events).
    pub(crate) events: AtomicU64,
    /// Body bytes read.
    pub(crate) bytes: AtomicU64,
    /// Tweets sent on, extracted originals included.
    pub(crate) tweets: AtomicU64,
    /// Originals extracted from `retweeted_status` (also counted in `tweets`).
    pub(crate) retweets: AtomicU64,
    /// Kill messages sent on.
    pub(crate) kills: AtomicU64,
    /// Times a tweet had to wait for room in the memory budget (or the spool).
    pub(crate) waits: AtomicU64,
    /// Milliseconds spent waiting so.
    pub(crate) waited_ms: AtomicU64,
    /// Events skipped because their data is neither a kill nor a valid tweet.
    pub(crate) malformed: AtomicU64,
    /// Malformed `retweeted_status` objects dropped while their retweet went on.
    pub(crate) malformed_originals: AtomicU64,
    /// Events skipped for exceeding `max_event_bytes`.
    pub(crate) oversized: AtomicU64,
}

/// A point-in-time copy of [`SourceStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceSnapshot {
    /// Successful connections (first and later).
    pub connects: u64,
    /// Streams connected now (1 or 0 for one reader; the sum of both).
    pub connected: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// SSE events received.
    pub events: u64,
    /// Bytes of event data received.
    pub bytes: u64,
    /// Tweets forwarded (originals extracted from retweets included).
    pub tweets: u64,
    /// Retweets among them.
    pub retweets: u64,
    /// Kill messages forwarded.
    pub kills: u64,
    /// Times a tweet waited for the memory budget or the spool.
    pub waits: u64,
    /// Milliseconds spent waiting so.
    pub waited_ms: u64,
    /// Events that were not a tweet nor a kill (counted and skipped).
    pub malformed: u64,
    /// Retweets whose embedded original was malformed (the retweet is kept).
    pub malformed_originals: u64,
    /// Events over the size bound (skipped).
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
            connected: g(&self.connected),
            reconnects: g(&self.reconnects),
            connect_failures: g(&self.connect_failures),
            events: g(&self.events),
            bytes: g(&self.bytes),
            tweets: g(&self.tweets),
            retweets: g(&self.retweets),
            kills: g(&self.kills),
            waits: g(&self.waits),
            waited_ms: g(&self.waited_ms),
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
            connected: self.connected + o.connected,
            reconnects: self.reconnects + o.reconnects,
            connect_failures: self.connect_failures + o.connect_failures,
            events: self.events + o.events,
            bytes: self.bytes + o.bytes,
            tweets: self.tweets + o.tweets,
            retweets: self.retweets + o.retweets,
            kills: self.kills + o.kills,
            waits: self.waits + o.waits,
            waited_ms: self.waited_ms + o.waited_ms,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_join() {
        assert_eq!(join_url("http://h:1/", "/tweets/1"), "http://h:1/tweets/1");
        assert_eq!(join_url("http://h:1", "/tweets/1"), "http://h:1/tweets/1");
    }
}
