//! The sink's live counters, their snapshot for the status line and the stats
//! file, and the summary it returns at the end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Serialize, Serializer};

use super::health::{Breaker, BreakerState};
use super::pause::Pause;
use super::SinkFailure;
use crate::stats::Histogram;

/// The sink's state, as the status line, the stats file, `/readyz`, the
/// dashboard and the `tweetflow_sink_state` metric name it.
///
/// One of them holds at a time; [`SinkStats`] decides which, in this order of
/// precedence: `failed`, `stopped`, `paused`, `waiting`, then the breaker's
/// `up`, `down` or `probing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SinkState {
    /// The database answers; batches are written (the breaker is closed).
    #[default]
    Up,
    /// The database is unreachable (breaker open); records go to the spool.
    Down,
    /// The database has not answered a probe yet (breaker half-open).
    Probing,
    /// The operator paused the sink (`POST /sink/pause`), whatever the breaker says.
    Paused,
    /// The database is reachable but refuses writes for now (its disk is full …).
    Waiting,
    /// A thread of the sink ended for good.
    Failed,
    /// The writer has finished (never `up` without a writer).
    Stopped,
}

impl SinkState {
    /// Every state, in the order the metrics list them.
    pub const ALL: [SinkState; 7] = [
        SinkState::Up,
        SinkState::Down,
        SinkState::Probing,
        SinkState::Paused,
        SinkState::Waiting,
        SinkState::Failed,
        SinkState::Stopped,
    ];

    /// Its name: `up`, `down`, `probing`, `paused`, `waiting`, `failed` or `stopped`.
    pub fn name(self) -> &'static str {
        match self {
            SinkState::Up => "up",
            SinkState::Down => "down",
            SinkState::Probing => "probing",
            SinkState::Paused => "paused",
            SinkState::Waiting => "waiting",
            SinkState::Failed => "failed",
            SinkState::Stopped => "stopped",
        }
    }

    /// What it means, in a few words (the metric's help text and the docs).
    pub fn meaning(self) -> &'static str {
        match self {
            SinkState::Up => "writing",
            SinkState::Down => "database unreachable, breaker open",
            SinkState::Probing => "breaker half-open",
            SinkState::Paused => "by POST /sink/pause",
            SinkState::Waiting => "database reachable but refusing writes, e.g. disk full",
            SinkState::Failed => "a sink thread ended for good",
            SinkState::Stopped => "the writer has finished",
        }
    }
}

impl From<BreakerState> for SinkState {
    fn from(b: BreakerState) -> SinkState {
        match b {
            BreakerState::Closed => SinkState::Up,
            BreakerState::Open => SinkState::Down,
            BreakerState::HalfOpen => SinkState::Probing,
        }
    }
}

impl std::fmt::Display for SinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for SinkState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl PartialEq<str> for SinkState {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for SinkState {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// Live counters of the sink (all relaxed atomics), plus the breaker.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub(crate) breaker: Breaker,
    /// The operator's pause switch and the writer's answer.
    pub(crate) pause: Pause,
    /// Current batch size chosen by the monitor.
    pub(crate) batch_size: AtomicU64,
    /// Write time of the last batch, µs.
    pub(crate) last_write_us: AtomicU64,
    /// Records in the last batch.
    pub(crate) last_batch_rows: AtomicU64,
    /// 0 hold, 1 grow, 2 shrink.
    pub(super) last_decision: AtomicU64,
    /// Records in memory.
    pub(crate) buffered: AtomicU64,
    /// Records in the spool not yet committed.
    pub(crate) spilled: AtomicU64,
    /// Records ever appended to the spool.
    pub(crate) spilled_total: AtomicU64,
    /// Records found in the spool at start.
    pub(crate) replayed_at_start: AtomicU64,
    /// Records read back from the spool and committed.
    pub(crate) records_replayed: AtomicU64,
    /// Approximate bytes of the records in memory (their JSON and text).
    pub(crate) buffered_bytes: AtomicU64,
    /// Bytes of the spool file not committed yet (what `--spool-max-bytes` bounds).
    pub(crate) spool_bytes: AtomicU64,
    /// Torn last lines cut at start.
    pub(crate) torn_lines: AtomicU64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub(crate) spool_corrupt: AtomicU64,
    /// Failed spool appends (disk full …); ingest blocks meanwhile.
    pub(crate) spool_write_errors: AtomicU64,
    /// Bytes appended to the spool and not yet fsync'd (0 within `spool_sync` of
    /// the last append).
    pub(crate) spool_unsynced: AtomicU64,
    /// Records received on the input channel.
    pub(crate) records_in: AtomicU64,
    /// Records whose batch committed, rejected ones not included.
    pub(crate) records_committed: AtomicU64,
    /// Records with a part (user or tweet) that was rejected, or that could not be
    /// encoded (saved to `rejected.jsonl`); with `records_committed` they add up
    /// to the records written.
    pub(crate) records_rejected: AtomicU64,
    /// Writer restarts after a panic.
    pub(crate) writer_restarts: AtomicU64,
    /// Records whose batch committed, by the stream they came from (`/tweets/1`, `/tweets/2`).
    pub(crate) committed_streams: [AtomicU64; 2],
    /// Tweet rows sent in committed batches (after in-batch de-duplication).
    pub(crate) written_tweets: AtomicU64,
    /// User rows sent in committed batches.
    pub(crate) written_users: AtomicU64,
    /// Tweet rows actually inserted or updated (older versions are skipped).
    pub(crate) tweets_changed: AtomicU64,
    /// User rows actually inserted or updated (older versions are skipped).
    pub(crate) users_changed: AtomicU64,
    /// Committed batches.
    pub(crate) batches: AtomicU64,
    /// Tweets or users the database refused (saved to `rejected.jsonl`).
    pub(crate) rejected_rows: AtomicU64,
    /// Values cleaned of NUL characters.
    pub(crate) sanitized: AtomicU64,
    /// Failed batch attempts that were retried (connection lost, timeout …).
    pub(crate) retries: AtomicU64,
    /// Receipt → commit latency of each record, µs (`now - tweet.received_unix_us`).
    pub latency: Histogram,
    /// Batch write times, µs.
    pub write_time: Histogram,
    /// A thread that ended for good (the first one).
    pub(super) failure: parking_lot::Mutex<Option<SinkFailure>>,
    /// Why the writer waits although the database is reachable (disk full …).
    pub(super) waiting: parking_lot::Mutex<Option<String>>,
    /// The writer thread has ended.
    pub(super) writer_done: AtomicBool,
}

/// A copy of [`SinkStats`] for the status line and the stats file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkSnapshot {
    /// Current batch size chosen by the monitor.
    pub batch_size: u64,
    /// Write time of the last batch, ms.
    pub last_write_ms: f64,
    /// Records in the last batch.
    pub last_batch_rows: u64,
    /// `grow`, `shrink` or `hold`: the monitor's last decision.
    pub decision: &'static str,
    /// The state shown to people (see [`SinkState`]).
    pub sink_state: SinkState,
    /// Why the state is `waiting` or `failed`, or `down` when the database went
    /// silent ("no answer for 10 s").
    pub sink_reason: Option<String>,
    /// Times the breaker opened.
    pub breaker_trips: u64,
    /// Records in memory.
    pub buffered: u64,
    /// Records in the spool not yet committed.
    pub spilled: u64,
    /// Records ever appended to the spool.
    pub spilled_total: u64,
    /// Records found in the spool at start.
    pub replayed_at_start: u64,
    /// Records read back from the spool and committed.
    pub records_replayed: u64,
    /// Approximate bytes of the records in memory.
    pub buffered_bytes: u64,
    /// Bytes of the spool file not committed yet.
    pub spool_bytes: u64,
    /// Torn last lines cut at start.
    pub torn_lines: u64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub spool_corrupt: u64,
    /// Failed spool appends.
    pub spool_write_errors: u64,
    /// Bytes appended to the spool and not yet fsync'd.
    pub spool_unsynced: u64,
    /// Records received on the input channel.
    pub records_in: u64,
    /// Records whose batch committed, rejected ones not included.
    pub records_committed: u64,
    /// Records with a rejected part (saved to `rejected.jsonl`).
    pub records_rejected: u64,
    /// Writer restarts after a panic.
    pub writer_restarts: u64,
    /// Records whose batch committed, from `/tweets/1` and `/tweets/2`.
    pub committed_streams: [u64; 2],
    /// Tweet rows sent in committed batches.
    pub written_tweets: u64,
    /// User rows sent in committed batches.
    pub written_users: u64,
    /// Tweet rows actually inserted or updated.
    pub tweets_changed: u64,
    /// User rows actually inserted or updated.
    pub users_changed: u64,
    /// Committed batches.
    pub batches: u64,
    /// Tweets or users the database refused.
    pub rejected_rows: u64,
    /// Values cleaned of NUL characters.
    pub sanitized: u64,
    /// Failed batch attempts that were retried.
    pub retries: u64,
    /// Receipt → commit latency, median, ms.
    pub latency_p50_ms: Option<f64>,
    /// Receipt → commit latency, 99th percentile, ms.
    pub latency_p99_ms: Option<f64>,
    /// Batch write time, median, ms.
    pub write_p50_ms: Option<f64>,
    /// Batch write time, 99th percentile, ms.
    pub write_p99_ms: Option<f64>,
}

impl SinkStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> SinkSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0);
        let (sink_state, sink_reason) = self.state();
        SinkSnapshot {
            batch_size: l(&self.batch_size),
            last_write_ms: l(&self.last_write_us) as f64 / 1000.0,
            last_batch_rows: l(&self.last_batch_rows),
            decision: match l(&self.last_decision) {
                1 => "grow",
                2 => "shrink",
                _ => "hold",
            },
            sink_state,
            sink_reason,
            breaker_trips: l(&self.breaker.trips),
            buffered: l(&self.buffered),
            spilled: l(&self.spilled),
            spilled_total: l(&self.spilled_total),
            replayed_at_start: l(&self.replayed_at_start),
            records_replayed: l(&self.records_replayed),
            buffered_bytes: l(&self.buffered_bytes),
            spool_bytes: l(&self.spool_bytes),
            torn_lines: l(&self.torn_lines),
            spool_corrupt: l(&self.spool_corrupt),
            spool_write_errors: l(&self.spool_write_errors),
            spool_unsynced: l(&self.spool_unsynced),
            records_in: l(&self.records_in),
            records_committed: l(&self.records_committed),
            records_rejected: l(&self.records_rejected),
            writer_restarts: l(&self.writer_restarts),
            committed_streams: [l(&self.committed_streams[0]), l(&self.committed_streams[1])],
            written_tweets: l(&self.written_tweets),
            written_users: l(&self.written_users),
            tweets_changed: l(&self.tweets_changed),
            users_changed: l(&self.users_changed),
            batches: l(&self.batches),
            rejected_rows: l(&self.rejected_rows),
            sanitized: l(&self.sanitized),
            retries: l(&self.retries),
            latency_p50_ms: ms(self.latency.quantile(0.5)),
            latency_p99_ms: ms(self.latency.quantile(0.99)),
            write_p50_ms: ms(self.write_time.quantile(0.5)),
            write_p99_ms: ms(self.write_time.quantile(0.99)),
        }
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The database as the breaker sees it: `up`, `down` or `probing`.
    pub fn database_state(&self) -> SinkState {
        self.breaker.state().into()
    }

    /// Why the database is `down`, when the sink knows: `no answer for 10 s`
    /// while it is silent.
    pub fn database_reason(&self) -> Option<String> {
        match self.database_state() {
            SinkState::Down => self.breaker.reason(),
            _ => None,
        }
    }

    /// The state shown to people, and why (see [`SinkState`]).
    fn state(&self) -> (SinkState, Option<String>) {
        if let Some(f) = self.failure.lock().as_ref() {
            return (SinkState::Failed, Some(f.to_string()));
        }
        if self.writer_done.load(Ordering::Relaxed) {
            return (SinkState::Stopped, None);
        }
        if self.pause.is_requested() {
            return (SinkState::Paused, None);
        }
        if let Some(w) = self.waiting.lock().as_ref() {
            return (SinkState::Waiting, Some(w.clone()));
        }
        let state = self.database_state();
        let reason = match state {
            SinkState::Down => self.breaker.reason(),
            _ => None,
        };
        (state, reason)
    }

    /// The first thread that ended for good, if any.
    pub fn failure(&self) -> Option<SinkFailure> {
        self.failure.lock().clone()
    }

    /// Records a thread's end for good (the first one is kept).
    pub(crate) fn fail(&self, f: SinkFailure) {
        let mut slot = self.failure.lock();
        if slot.is_none() {
            log::error!("sink: {f}");
            *slot = Some(f);
        }
    }

    /// The writer waits for `why` (a reachable database refusing writes), or no
    /// longer (`None`).
    pub(crate) fn set_waiting(&self, why: Option<String>) {
        *self.waiting.lock() = why;
    }
}

/// What the sink did, returned by [`Sink::join`].
#[derive(Debug, Clone, Serialize)]
pub struct SinkSummary {
    /// The counters at the end.
    pub stats: SinkSnapshot,
    /// Records left in the spool for the next start (0 when everything committed).
    pub left_in_spool: u64,
    /// The spool file that holds them.
    pub spool_path: PathBuf,
}
