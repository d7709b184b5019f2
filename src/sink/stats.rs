//! The sink's live counters, their snapshot for the status line and the stats
//! file, and the summary it returns at the end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use super::health::{Breaker, BreakerState};
use super::pause::Pause;
use super::SinkFailure;
use crate::stats::Histogram;

/// Live counters of the sink (all relaxed atomics), plus the breaker.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub(crate) breaker: Breaker,
    /// The operator's pause switch and the writer's answer.
    pub(crate) pause: Pause,
    /// Current batch size chosen by the monitor.
    pub batch_size: AtomicU64,
    /// Write time of the last batch, µs.
    pub last_write_us: AtomicU64,
    /// Records in the last batch.
    pub last_batch_rows: AtomicU64,
    /// 0 hold, 1 grow, 2 shrink.
    pub(super) last_decision: AtomicU64,
    /// Records in memory.
    pub buffered: AtomicU64,
    /// Records in the spool not yet committed.
    pub spilled: AtomicU64,
    /// Records ever appended to the spool.
    pub spilled_total: AtomicU64,
    /// Records found in the spool at start.
    pub replayed_at_start: AtomicU64,
    /// Records read back from the spool and committed.
    pub records_replayed: AtomicU64,
    /// Approximate bytes of the records in memory (their JSON and text).
    pub buffered_bytes: AtomicU64,
    /// Bytes of the spool file not committed yet (what `--spool-max-bytes` bounds).
    pub spool_bytes: AtomicU64,
    /// Torn last lines cut at start.
    pub torn_lines: AtomicU64,
    /// Spool lines that did not parse (saved to the rejected file).
    pub spool_corrupt: AtomicU64,
    /// Failed spool appends (disk full …); ingest blocks meanwhile.
    pub spool_write_errors: AtomicU64,
    /// Bytes appended to the spool and not yet fsync'd (0 within `spool_sync` of
    /// the last append).
    pub spool_unsynced: AtomicU64,
    /// Records received on the input channel.
    pub records_in: AtomicU64,
    /// Records whose batch committed, rejected ones not included.
    pub records_committed: AtomicU64,
    /// Records with a part (user or tweet) that was rejected, or that could not be
    /// encoded (saved to `rejected.jsonl`); with `records_committed` they add up
    /// to the records written.
    pub records_rejected: AtomicU64,
    /// Writer restarts after a panic.
    pub writer_restarts: AtomicU64,
    /// Records whose batch committed, by the stream they came from (`/tweets/1`, `/tweets/2`).
    pub committed_streams: [AtomicU64; 2],
    /// Tweet rows sent in committed batches (after in-batch de-duplication).
    pub written_tweets: AtomicU64,
    /// User rows sent in committed batches.
    pub written_users: AtomicU64,
    /// Tweet rows actually inserted or updated (older versions are skipped).
    pub tweets_changed: AtomicU64,
    /// User rows actually inserted or updated (older versions are skipped).
    pub users_changed: AtomicU64,
    /// Committed batches.
    pub batches: AtomicU64,
    /// Tweets or users the database refused (saved to `rejected.jsonl`).
    pub rejected_rows: AtomicU64,
    /// Values cleaned of NUL characters.
    pub sanitized: AtomicU64,
    /// Failed batch attempts that were retried (connection lost, timeout …).
    pub retries: AtomicU64,
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
    /// `up`, `down` or `probing` (the breaker), `paused` (by the operator, whatever
    /// the breaker says), `waiting` (the database refuses writes for now, e.g. its
    /// disk is full), `failed` (a thread of the sink ended for good) or `stopped`
    /// (the writer has finished). Never `up` without a writer.
    pub sink_state: &'static str,
    /// Why the state is `waiting` or `failed`.
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

    /// The state shown to people, and why (see [`SinkSnapshot::sink_state`]).
    fn state(&self) -> (&'static str, Option<String>) {
        if let Some(f) = self.failure.lock().as_ref() {
            return ("failed", Some(f.to_string()));
        }
        if self.writer_done.load(Ordering::Relaxed) {
            return ("stopped", None);
        }
        if self.pause.is_requested() {
            return ("paused", None);
        }
        if let Some(w) = self.waiting.lock().as_ref() {
            return ("waiting", Some(w.clone()));
        }
        (self.breaker.state().name(), None)
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
