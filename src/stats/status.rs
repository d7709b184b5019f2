//! The once-a-second status: a compact line for people, a JSON object for machines.
//!
//! [`Status`] is a plain view filled by the pipeline from every stage's snapshot;
//! rendering it is pure, so the format is unit-tested here.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

/// One hashtag of the top list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagCount {
    /// The hashtag, without its `#`, case-folded.
    pub tag: String,
    /// Its estimated count (the sketch may overcount, never undercount).
    pub count: u64,
}

/// What the status line and the stats file show, once a second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Seconds since the pipeline started.
    pub t: f64,
    /// What ingest is doing: `up` (reading), `waiting for server` (no stream
    /// connected, or the lexicon not fetched yet), `waiting: memory limit` or
    /// `waiting: spool full` (the readers hold back, see `--memory-limit` and
    /// `--spool-max-bytes`), `stopped` (draining after Ctrl-C or `--duration`).
    pub ingest: String,
    /// Times a reader had to wait for the memory budget or the spool, so far.
    pub ingest_waits: u64,
    /// Tweets received per second, both streams (extracted retweeted statuses included).
    pub rate_in: f64,
    /// Tweets received per second on `/tweets/1` and `/tweets/2`.
    pub rate_in_streams: [f64; 2],
    /// Workers in the sentiment pool now.
    pub sentiment_workers: usize,
    /// Workers in the engagement pool now.
    pub engagement_workers: usize,
    /// The autoscaler's target size of the sentiment pool.
    pub sentiment_target: usize,
    /// The autoscaler's target size of the engagement pool.
    pub engagement_target: usize,
    /// Whether the sentiment pool is below its target because creating a
    /// worker thread failed (since the previous status).
    #[serde(skip)]
    pub sentiment_spawn_failed: bool,
    /// The same of the engagement pool.
    #[serde(skip)]
    pub engagement_spawn_failed: bool,
    /// Jobs dispatched to workers and not finished yet (both pools).
    pub in_flight: u64,
    /// Kill messages received so far.
    pub kills: u64,
    /// Worker restarts so far (both pools).
    pub restarts: u64,
    /// The sink's current batch size.
    pub batch_size: usize,
    /// The last batch's write time in milliseconds.
    pub write_ms: f64,
    /// The sink's state: `up`, `down`, `probing`, `waiting` (reachable but refusing
    /// writes, e.g. disk full), `failed` or `stopped` (never `up` without a writer),
    /// or `paused` (by the operator).
    pub sink: String,
    /// Why the sink is in its state, when it says (`no answer for 10 s` while the
    /// database is silent, the server's reason while `waiting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_reason: Option<String>,
    /// Records waiting in memory for the sink.
    pub buffered: u64,
    /// Records waiting in the spool file.
    pub spilled: u64,
    /// Bytes in the spool file not yet committed.
    pub spool_bytes: u64,
    /// Bytes of tweets in memory now (counted against `memory_limit`).
    pub memory_used: u64,
    /// `--memory-limit`.
    pub memory_limit: u64,
    /// Records committed per second.
    pub rate_out: f64,
    /// Records committed per second that came from `/tweets/1` and `/tweets/2`.
    pub rate_out_streams: [f64; 2],
    /// Tweet rows written so far.
    pub written_tweets: u64,
    /// User rows written so far.
    pub written_users: u64,
    /// Records committed so far (this run, spool replays included).
    pub committed: u64,
    /// The top hashtags so far, heaviest first (ties by name).
    pub top_hashtags: Vec<TagCount>,
    /// With `--jetstream`: the consumer and this instance's share of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jetstream: Option<JetStreamStatus>,
    /// With `--jetstream`: the top hashtags of every instance together (their sketches
    /// merged), heaviest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged_top_hashtags: Vec<TagCount>,
}

/// The JetStream part of [`Status`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct JetStreamStatus {
    /// Whether NATS is reachable now.
    pub nats_up: bool,
    /// The consumer's messages not yet delivered (to any instance).
    pub pending: u64,
    /// The consumer's messages delivered and not yet acked (all instances).
    pub ack_pending: u64,
    /// The consumer's redelivered messages (the server's count).
    pub redelivered: u64,
    /// Messages this instance holds until their records commit.
    pub held: u64,
    /// Messages this instance was delivered, and of those redeliveries.
    pub delivered: u64,
    /// Redeliveries among this instance's deliveries.
    pub delivered_again: u64,
    /// Acks this instance sent.
    pub acks: u64,
    /// In-progress acks this instance sent.
    pub progress_acks: u64,
    /// Acks not sent because NATS was unreachable (those messages come again).
    pub acks_lost: u64,
    /// Instances whose hashtag sketches are merged in `merged_top_hashtags`.
    pub instances: u64,
}

/// A pool's size in the status line: its workers, or `40/52 (spawn failed)`
/// while a failed thread creation holds it below its target.
fn pool_size(workers: usize, target: usize, spawn_failed: bool) -> String {
    if spawn_failed && workers < target {
        format!("{workers}/{target} (spawn failed)")
    } else {
        workers.to_string()
    }
}

impl Status {
    /// The figures: rates, pools, restarts, batch, sink, totals.
    pub fn figures(&self) -> String {
        format!(
            "{:>5.0}s {} │ in {:>6}/s ({}+{}) │ workers S{} E{} │ in-flight {} │ kills {} restarts {} │ batch {} {:.0}ms │ mem {}/{}M │ sink {} buf {} spool {} │ out {:>6}/s │ tweets {} users {}",
            self.t,
            self.ingest,
            human(self.rate_in),
            human(self.rate_in_streams[0]),
            human(self.rate_in_streams[1]),
            pool_size(
                self.sentiment_workers,
                self.sentiment_target,
                self.sentiment_spawn_failed
            ),
            pool_size(
                self.engagement_workers,
                self.engagement_target,
                self.engagement_spawn_failed
            ),
            self.in_flight,
            self.kills,
            self.restarts,
            self.batch_size,
            self.write_ms,
            self.memory_used >> 20,
            self.memory_limit >> 20,
            match &self.sink_reason {
                Some(why) => format!("{} ({why})", self.sink),
                None => self.sink.clone(),
            },
            self.buffered,
            self.spilled,
            human(self.rate_out),
            self.written_tweets,
            self.written_users,
        )
    }

    /// The top hashtags, `top #a 12 #b 7 …` (empty when none was seen yet).
    pub fn tags(&self) -> String {
        let mut s = String::new();
        if !self.top_hashtags.is_empty() {
            s.push_str("top");
            for t in &self.top_hashtags {
                let _ = write!(s, " #{} {}", t.tag, t.count);
            }
        }
        s
    }

    /// The JetStream figures, `js up pending 0 ack-pending 12 …` (empty without it).
    pub fn jetstream_figures(&self) -> String {
        let Some(j) = &self.jetstream else {
            return String::new();
        };
        let mut s = format!(
            "nats {} pending {} ack-pending {} held {} redelivered {}",
            if j.nats_up { "up" } else { "UNREACHABLE" },
            j.pending,
            j.ack_pending,
            j.held,
            j.redelivered
        );
        if !self.merged_top_hashtags.is_empty() {
            let _ = write!(s, " │ all {} instances: top", j.instances);
            for t in self.merged_top_hashtags.iter().take(5) {
                let _ = write!(s, " #{} {}", t.tag, t.count);
            }
        }
        s
    }

    /// The status as one line: figures, the JetStream figures, then top hashtags.
    pub fn line(&self) -> String {
        let mut line = self.figures();
        for part in [self.jetstream_figures(), self.tags()] {
            if !part.is_empty() {
                line.push_str(" │ ");
                line.push_str(&part);
            }
        }
        line
    }

    /// The status as one compact JSON object (a line of the stats file).
    pub fn json(&self) -> String {
        // A struct of numbers, strings and vectors always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// `text` cut to at most `width` characters (on a character boundary).
pub(crate) fn fit(text: &str, width: usize) -> &str {
    match text.char_indices().nth(width) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// A number for people: `950`, `1.2k`, `34k`, `1.5M`.
pub(crate) fn human(v: f64) -> String {
    let a = v.abs();
    if a < 1_000.0 {
        format!("{v:.0}")
    } else if a < 10_000.0 {
        format!("{:.1}k", v / 1e3)
    } else if a < 1_000_000.0 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{:.1}M", v / 1e6)
    }
}

/// Turns a growing counter into a per-second rate between two reads.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    last: Option<(Instant, u64)>,
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter::new()
    }
}

impl RateMeter {
    /// A meter that has not been read yet.
    pub(crate) fn new() -> RateMeter {
        RateMeter { last: None }
    }

    /// The rate since the previous call (0 on the first call or if time did not move).
    pub(crate) fn rate(&mut self, now: Instant, total: u64) -> f64 {
        let rate = match self.last {
            Some((then, prev)) => {
                let dt = now.saturating_duration_since(then).as_secs_f64();
                if dt > 0.0 {
                    total.saturating_sub(prev) as f64 / dt
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, total));
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample() -> Status {
        Status {
            t: 12.0,
            ingest: "up".into(),
            ingest_waits: 3,
            rate_in: 1843.0,
            rate_in_streams: [912.0, 931.0],
            sentiment_workers: 612,
            engagement_workers: 598,
            sentiment_target: 620,
            engagement_target: 600,
            sentiment_spawn_failed: false,
            engagement_spawn_failed: false,
            in_flight: 1020,
            kills: 7,
            restarts: 7,
            batch_size: 850,
            write_ms: 42.4,
            sink: "up".into(),
            sink_reason: None,
            buffered: 120,
            spilled: 0,
            spool_bytes: 0,
            memory_used: 300 << 20,
            memory_limit: 1 << 30,
            rate_out: 1790.0,
            rate_out_streams: [900.0, 890.0],
            written_tweets: 20311,
            written_users: 15002,
            committed: 20400,
            top_hashtags: vec![
                TagCount {
                    tag: "love".into(),
                    count: 52,
                },
                TagCount {
                    tag: "música".into(),
                    count: 40,
                },
            ],
            jetstream: None,
            merged_top_hashtags: Vec::new(),
        }
    }

    #[test]
    fn the_jetstream_figures_show_the_consumer_and_the_merged_top() {
        assert_eq!(sample().jetstream_figures(), "");
        let mut s = sample();
        s.jetstream = Some(JetStreamStatus {
            nats_up: false,
            pending: 40,
            ack_pending: 12,
            held: 5,
            redelivered: 3,
            instances: 3,
            ..JetStreamStatus::default()
        });
        s.merged_top_hashtags = vec![TagCount {
            tag: "all".into(),
            count: 90,
        }];
        let line = s.line();
        assert!(
            line.contains(
                "nats UNREACHABLE pending 40 ack-pending 12 held 5 redelivered 3 │ all 3 \
                 instances: top #all 90"
            ),
            "{line}"
        );
        assert!(line.ends_with("top #love 52 #música 40"), "{line}");
    }

    #[test]
    fn line_shows_every_figure() {
        let line = sample().line();
        for part in [
            "12s up │ in",
            "1.8k/s",
            "(912+931)",
            "S612 E598",
            "in-flight 1020",
            "kills 7",
            "restarts 7",
            "batch 850 42ms",
            "mem 300/1024M",
            "sink up",
            "buf 120",
            "spool 0",
            "1.8k/s",
            "tweets 20311",
            "users 15002",
            "top #love 52 #música 40",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_pool_held_below_its_target_by_a_failed_spawn_says_so() {
        let mut status = sample();
        status.sentiment_workers = 40;
        status.sentiment_target = 52;
        status.sentiment_spawn_failed = true;
        let line = status.line();
        assert!(
            line.contains("│ workers S40/52 (spawn failed) E598 │"),
            "{line}"
        );
        // Below the target without a failed spawn (growing, or shrinking): the
        // workers alone, as at or above the target.
        status.sentiment_spawn_failed = false;
        assert!(status.line().contains("│ workers S40 E598 │"));
        status.engagement_spawn_failed = true;
        status.engagement_workers = 600;
        assert!(status.line().contains("│ workers S40 E600 │"));
        status.engagement_workers = 7;
        assert!(status
            .line()
            .contains("│ workers S40 E7/600 (spawn failed) │"));
        assert!(!status.json().contains("spawn"), "not in the stats file");
    }

    #[test]
    fn fit_cuts_on_a_char_boundary() {
        let tags = sample().tags();
        assert_eq!(tags, "top #love 52 #música 40");
        assert_eq!(fit(&tags, 15), "top #love 52 #m");
        assert_eq!(fit(&tags, 16), "top #love 52 #mú");
        assert_eq!(fit(&tags, 500), tags);
        assert!(Status::default().tags().is_empty());
        assert_eq!(Status::default().line(), Status::default().figures());
    }

    #[test]
    fn json_has_the_documented_keys() {
        let v: serde_json::Value = serde_json::from_str(&sample().json()).unwrap();
        for key in [
            "t",
            "ingest",
            "ingest_waits",
            "rate_in",
            "sentiment_workers",
            "engagement_workers",
            "sentiment_target",
            "engagement_target",
            "in_flight",
            "restarts",
            "batch_size",
            "write_ms",
            "sink",
            "buffered",
            "spilled",
            "spool_bytes",
            "memory_used",
            "memory_limit",
            "rate_out_streams",
            "written_tweets",
            "written_users",
            "committed",
            "top_hashtags",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["top_hashtags"][1]["tag"], "música");
        assert_eq!(v["top_hashtags"][1]["count"], 40);
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(950.0), "950");
        assert_eq!(human(1234.0), "1.2k");
        assert_eq!(human(34_000.0), "34k");
        assert_eq!(human(1_500_000.0), "1.5M");
    }

    #[test]
    fn rate_meter_divides_by_elapsed_time() {
        let mut m = RateMeter::new();
        let t0 = Instant::now();
        assert_eq!(m.rate(t0, 100), 0.0);
        assert_eq!(m.rate(t0 + Duration::from_millis(500), 600), 1000.0);
        assert_eq!(m.rate(t0 + Duration::from_millis(500), 700), 0.0);
    }
}
