//! One blocking reader thread per stream: `GET <server>/tweets/<n>`, SSE
//! parsing, decoding, and reconnection.
//!
//! Connection life: a ureq agent with connect and read timeouts streams the
//! body through a fixed 64 KiB buffer into an [`SseParser`]. Every event the
//! parser dispatches is decoded and sent on, in stream order: a kill as
//! [`Ingest::Kill`], a tweet as [`Ingest::Tweet`] — for a retweet the
//! extracted original first, then the retweet, each with its own seq.
//! When the body ends (EOF), a read fails or stays silent for `read_timeout`,
//! or the server answers with an error, the half-received event is discarded
//! and the reader connects again after a capped exponential backoff with
//! jitter (see [`Backoff`](crate::supervise::Backoff)); the delay starts
//! again from its base after a connection that delivered at least one event,
//! and the base is the server's `retry:` when it sent one. Once an event id has been seen it is sent as
//! `Last-Event-ID`.
//!
//! The thread ends when `shutdown` is triggered (checked between reads and
//! during the backoff sleep; a silent server delays it by at most
//! `read_timeout`) or when `out` is disconnected. Events completed by the
//! bytes of one read are all sent before the check, so nothing that was fully
//! received is dropped at shutdown.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Select, Sender, TrySendError};
use log::{debug, info, warn};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::decode::{decode, Decoded};
use super::sse::{SseEvent, SseEvents, SseParser};
use super::{join_url, SourceConfig, SourceStats};
use crate::budget::{Budget, Wait};
use crate::log_limit::LogLimiter;
use crate::model::{unix_micros, Ingest, Seq, SeqGen, Tweet};
use crate::shutdown::Shutdown;
use crate::supervise::Backoff;

/// A server's `retry:` is honoured up to this (10 minutes).
const MAX_RETRY_MS: u64 = 10 * 60 * 1000;

/// A server that cannot be reached is named in the log at most this often.
const CONNECT_LOG_EVERY: Duration = Duration::from_secs(15);

/// Ingest waits are logged at most this often.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);
/// How often a reader waiting for the memory budget checks for shutdown.
const ADMIT_POLL: Duration = Duration::from_millis(100);

/// Size of the fixed read buffer.
const READ_BUF: usize = 64 * 1024;

/// Starts the reader thread of stream `stream` (1 or 2): it reads
/// `<cfg.server>/tweets/<stream>` and sends what it decodes to `out`.
pub fn spawn_reader(
    stream: u8,
    cfg: SourceConfig,
    seq: Arc<SeqGen>,
    out: Sender<Ingest>,
    stats: Arc<SourceStats>,
    budget: Arc<Budget>,
    shutdown: Shutdown,
) -> io::Result<JoinHandle<()>> {
    let decoder = Decoder::new(
        stream,
        seq,
        out,
        Arc::clone(&stats),
        budget,
        shutdown.clone(),
    );
    spawn_event_reader(stream, cfg, stats, shutdown, decoder)
}

/// What a reader does with each event it receives, in stream order.
pub(crate) trait Events: Send + 'static {
    /// Handles one event received at `received` (µs since the epoch); `false` stops
    /// the reader.
    fn event(&mut self, ev: &SseEvent, received: u64) -> bool;
}

/// Starts a reader thread of stream `stream` that hands every event to `events`
/// (the connection, reconnection and byte limits of [`spawn_reader`]).
pub(crate) fn spawn_event_reader<E: Events>(
    stream: u8,
    cfg: SourceConfig,
    stats: Arc<SourceStats>,
    shutdown: Shutdown,
    events: E,
) -> io::Result<JoinHandle<()>> {
    let agent = super::agent(&cfg).map_err(io::Error::other)?;
    crate::stats::spawn_thread(format!("source-{stream}"), None, move || {
        let mut r = Reader {
            stream,
            url: join_url(&cfg.server, &format!("/tweets/{stream}")),
            agent,
            cfg,
            stats,
            shutdown,
            last_event_id: String::new(),
            retry: None,
            warned_content_type: false,
            warned_id: false,
            events,
        };
        r.run();
    })
}

/// Why a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server closed the body.
    Eof,
    /// A read failed (or timed out).
    ReadError,
    /// Stop the thread: shutdown triggered or `out` disconnected.
    Stop,
}

struct Reader<E> {
    stream: u8,
    url: String,
    agent: ureq::Agent,
    cfg: SourceConfig,
    stats: Arc<SourceStats>,
    shutdown: Shutdown,
    last_event_id: String,
    retry: Option<Duration>,
    warned_content_type: bool,
    warned_id: bool,
    events: E,
}

/// The reader of `run`: decodes each event and sends the tweets and kills on.
pub(crate) struct Decoder {
    stream: u8,
    seq: Arc<SeqGen>,
    out: Sender<Ingest>,
    stats: Arc<SourceStats>,
    budget: Arc<Budget>,
    wait_log: LogLimiter,
    shutdown: Shutdown,
}

fn inc(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// Sends `msg`, parking at once while the channel is full; false when it is
/// disconnected. `Sender::send` on a full channel spins and calls sched_yield
/// several times before it parks, for every message while the dispatcher (which
/// naps between batches) is behind; a `Select` tries once and parks.
fn send_or_park(out: &Sender<Ingest>, msg: Ingest) -> bool {
    match out.try_send(msg) {
        Ok(()) => true,
        Err(TrySendError::Disconnected(_)) => false,
        Err(TrySendError::Full(msg)) => {
            let mut room = Select::new_biased();
            room.send(out);
            room.select().send(out, msg).is_ok()
        }
    }
}

/// Rate limit for repeated log lines: the first 10, then every 1000th.
const REPEATED: LogLimiter = LogLimiter::first_then_every(10, 1000);

/// At most `max` bytes of `s`, cut at a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl<E: Events> Reader<E> {
    fn run(&mut self) {
        let mut backoff = Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max);
        let mut rng = SmallRng::from_entropy();
        let mut buf = vec![0u8; READ_BUF];
        let mut failures: u64 = 0;
        let mut connect_log = LogLimiter::every(CONNECT_LOG_EVERY);
        let mut first = true;
        info!("stream {}: reading {}", self.stream, self.url);
        while !self.shutdown.is_triggered() {
            if !first {
                inc(&self.stats.reconnects, 1);
            }
            first = false;
            // A panic inside the HTTP client must not end ingestion: the
            // connection is dropped and retried like any other failure.
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.connect().map(|body| {
                    inc(&self.stats.connects, 1);
                    self.stats.connected.store(1, Ordering::Relaxed);
                    let ended = self.read_body(body, &mut buf);
                    self.stats.connected.store(0, Ordering::Relaxed);
                    ended
                })
            }));
            match attempt {
                Ok(Ok((end, events))) => {
                    failures = 0;
                    // The next outage is named at once.
                    connect_log = LogLimiter::every(CONNECT_LOG_EVERY);
                    if end == End::Stop {
                        break;
                    }
                    if events > 0 {
                        backoff.reset();
                    }
                }
                Err(_) => {
                    self.stats.connected.store(0, Ordering::Relaxed);
                    failures += 1;
                    inc(&self.stats.connect_failures, 1);
                    log::error!(
                        "stream {}: the HTTP client panicked; reconnecting",
                        self.stream
                    );
                }
                Ok(Err(e)) => {
                    failures += 1;
                    inc(&self.stats.connect_failures, 1);
                    if connect_log.check(Instant::now()).is_some() {
                        warn!(
                            "stream {}: connecting to {} failed ({failures} in a row): {e}; \
                             retrying (said again at most every {} s while it fails)",
                            self.stream,
                            self.url,
                            CONNECT_LOG_EVERY.as_secs()
                        );
                    }
                }
            }
            let wait = backoff.next_wait(self.retry, &mut rng);
            debug!("stream {}: reconnecting in {wait:?}", self.stream);
            if self.shutdown.sleep(wait) {
                break;
            }
        }
        info!("stream {}: reader stopped", self.stream);
    }

    fn connect(&mut self) -> Result<Box<dyn Read + Send + Sync>, Box<ureq::Error>> {
        let mut req = self
            .agent
            .get(&self.url)
            .set("Accept", "text/event-stream")
            .set("Cache-Control", "no-cache");
        if !self.last_event_id.is_empty() {
            let valid = self
                .last_event_id
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            if valid {
                req = req.set("Last-Event-ID", &self.last_event_id);
            } else if !self.warned_id {
                self.warned_id = true;
                warn!(
                    "stream {}: event id {:?} cannot be sent as a header; reconnecting without Last-Event-ID",
                    self.stream,
                    prefix(&self.last_event_id, 64)
                );
            }
        }
        let resp = req.call().map_err(Box::new)?;
        if resp.status() != 200 {
            return Err(Box::new(ureq::Error::Status(resp.status(), resp)));
        }
        let ct = resp.content_type();
        if ct != "text/event-stream" && !self.warned_content_type {
            self.warned_content_type = true;
            warn!(
                "stream {}: content type is {ct:?}, not text/event-stream; reading it as SSE anyway",
                self.stream
            );
        }
        Ok(resp.into_reader())
    }

    /// Reads one connection's body to its end; returns why it ended and how
    /// many events it delivered.
    fn read_body(&mut self, mut body: impl Read, buf: &mut [u8]) -> (End, u64) {
        let mut parser =
            SseParser::with_last_event_id(self.cfg.max_event_bytes, &self.last_event_id);
        let mut events = SseEvents::new();
        let mut delivered = 0u64;
        loop {
            if self.shutdown.is_triggered() {
                return (End::Stop, delivered);
            }
            let n = match body.read(buf) {
                Ok(0) => {
                    info!(
                        "stream {}: server ended the stream after {delivered} events; reconnecting",
                        self.stream
                    );
                    return (End::Eof, delivered);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) {
                        format!("silent for {:?}", self.cfg.read_timeout)
                    } else {
                        format!("read failed: {e}")
                    };
                    info!(
                        "stream {}: connection {what} after {delivered} events; reconnecting",
                        self.stream
                    );
                    return (End::ReadError, delivered);
                }
            };
            let received = unix_micros();
            inc(&self.stats.bytes, n as u64);
            let oversized_before = parser.oversized();
            parser.feed_into(&buf[..n], &mut events);
            let oversized = parser.oversized() - oversized_before;
            if oversized > 0 {
                let total =
                    self.stats.oversized.fetch_add(oversized, Ordering::Relaxed) + oversized;
                if REPEATED.allows_count(total) {
                    warn!(
                        "stream {}: skipped an event larger than {} bytes ({total} so far)",
                        self.stream, self.cfg.max_event_bytes
                    );
                }
            }
            if parser.last_event_id() != self.last_event_id {
                self.last_event_id = parser.last_event_id().to_owned();
            }
            if let Some(ms) = parser.retry_ms() {
                self.retry = Some(Duration::from_millis(ms.min(MAX_RETRY_MS)));
            }
            delivered += events.len() as u64;
            inc(&self.stats.events, events.len() as u64);
            for ev in events.as_slice() {
                if !self.events.event(ev, received) {
                    return (End::Stop, delivered);
                }
            }
            events.clear();
        }
    }
}

impl Events for Decoder {
    fn event(&mut self, ev: &SseEvent, received: u64) -> bool {
        let seq = Arc::clone(&self.seq);
        self.forward(&ev.data, received, &mut || seq.next()) != Forwarded::Stopped
    }
}

impl Decoder {
    /// The decoder of stream `stream` (1 or 2) that sends on `out`, stamping with `seq`.
    pub(crate) fn new(
        stream: u8,
        seq: Arc<SeqGen>,
        out: Sender<Ingest>,
        stats: Arc<SourceStats>,
        budget: Arc<Budget>,
        shutdown: Shutdown,
    ) -> Decoder {
        Decoder {
            stream,
            seq,
            out,
            stats,
            budget,
            wait_log: LogLimiter::every(WAIT_LOG_EVERY),
            shutdown,
        }
    }

    /// Gives `tweet` its permit of the memory budget, waiting while there is
    /// no room (the socket is not read meanwhile, so TCP holds the server
    /// back). On shutdown the permit is taken regardless: an event completely
    /// received is still sent on.
    fn admit(&mut self, tweet: &mut Tweet) {
        let bytes = tweet.heap_bytes();
        let mut waited: Option<(Instant, Wait)> = None;
        tweet.memory = loop {
            match self.budget.acquire_timeout(bytes, ADMIT_POLL) {
                Ok(permit) => break permit,
                Err(_) if self.shutdown.is_triggered() => break self.budget.force(bytes),
                Err(why) => {
                    if waited.is_none() {
                        waited = Some((Instant::now(), why));
                        inc(&self.stats.waits, 1);
                        if let Some(more) = self.wait_log.check(Instant::now()) {
                            warn!(
                                "stream {}: ingest waits ({}): {} MiB of tweets are in memory \
                                 against --memory-limit {} MiB, and the spool is {}; \
                                 {more} more waits since the last message",
                                self.stream,
                                why.name(),
                                self.budget.used() >> 20,
                                self.budget.limit() >> 20,
                                if self.budget.spool_full() {
                                    "full (--spool-max-bytes)"
                                } else {
                                    "not full"
                                },
                            );
                        }
                    }
                }
            }
        };
        if let Some((since, _)) = waited {
            let ms = since.elapsed().as_millis() as u64;
            inc(&self.stats.waited_ms, ms);
            debug!("stream {}: ingest resumes after {ms} ms", self.stream);
        }
    }

    /// Decodes and sends one event's data, stamping its tweets with `next_seq` (the
    /// extracted original first); says what went on.
    pub(crate) fn forward(
        &mut self,
        data: &str,
        received: u64,
        next_seq: &mut dyn FnMut() -> Seq,
    ) -> Forwarded {
        let stats = &self.stats;
        match decode(data) {
            Decoded::Kill => {
                inc(&stats.kills, 1);
                let sent = send_or_park(
                    &self.out,
                    Ingest::Kill {
                        stream: self.stream,
                    },
                );
                if sent {
                    Forwarded::Kill
                } else {
                    Forwarded::Stopped
                }
            }
            Decoded::Tweets(d) => {
                if let Some(Err(e)) = &d.original {
                    let total = stats.malformed_originals.fetch_add(1, Ordering::Relaxed) + 1;
                    if REPEATED.allows_count(total) {
                        warn!(
                            "stream {}: dropped a malformed retweeted_status ({total} so far), the retweet goes on: {e}; data ({} bytes): {:?}",
                            self.stream,
                            data.len(),
                            prefix(data, 120)
                        );
                    }
                }
                let (original, mut tweet) = d.stamp(self.stream, received, next_seq);
                let mut n = 1;
                if let Some(mut o) = original {
                    inc(&self.stats.tweets, 1);
                    inc(&self.stats.retweets, 1);
                    self.admit(&mut o);
                    if !send_or_park(&self.out, Ingest::Tweet(Arc::new(o))) {
                        return Forwarded::Stopped;
                    }
                    n = 2;
                }
                inc(&self.stats.tweets, 1);
                self.admit(&mut tweet);
                if !send_or_park(&self.out, Ingest::Tweet(Arc::new(tweet))) {
                    return Forwarded::Stopped;
                }
                Forwarded::Tweets(n)
            }
            Decoded::Malformed(e) => {
                let total = stats.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                if REPEATED.allows_count(total) {
                    warn!(
                        "stream {}: skipped a malformed event ({total} so far): {e}; data ({} bytes): {:?}",
                        self.stream,
                        data.len(),
                        prefix(data, 120)
                    );
                }
                Forwarded::Malformed
            }
        }
    }
}

/// What [`Decoder::forward`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    /// A kill message, sent on.
    Kill,
    /// This many tweets (1, or 2 for a retweet with its original), sent on.
    Tweets(u8),
    /// Counted and skipped.
    Malformed,
    /// The output is disconnected.
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_or_park_waits_for_room_and_sees_a_disconnection() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(send_or_park(&tx, Ingest::Kill { stream: 1 }));
        // Full: the second send parks until the receiver takes the first.
        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let got: Vec<u8> = rx
                .iter()
                .map(|m| match m {
                    Ingest::Kill { stream } => stream,
                    Ingest::Tweet(_) => 0,
                })
                .collect();
            got
        });
        assert!(send_or_park(&tx, Ingest::Kill { stream: 2 }));
        drop(tx);
        assert_eq!(taker.join().ok(), Some(vec![1, 2]));
        let (tx, rx) = crossbeam_channel::bounded(1);
        drop(rx);
        assert!(!send_or_park(&tx, Ingest::Kill { stream: 1 }));
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(send_or_park(&tx, Ingest::Kill { stream: 1 }));
        // Full, then the receiver goes away while the sender is parked.
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(rx);
        });
        assert!(!send_or_park(&tx, Ingest::Kill { stream: 2 }));
        dropper.join().ok();
    }

    #[test]
    fn prefix_cuts_at_char_boundary() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(prefix("🐦🐦", 5), "🐦");
    }
}
