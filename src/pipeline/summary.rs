//! What a run did, printed at exit.
//!
//! The summary is a view of the [`Snapshot`] taken after every stage has
//! drained, so its figures are final: `committed == records` and
//! `spooled_at_exit == 0` after a clean run against a reachable database.

use super::snapshot::Snapshot;
use crate::stats::{CpuBudget, CpuTimes};

/// What a run did, printed at exit.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Wall-clock length of the run, seconds.
    pub seconds: f64,
    /// Tweets received (extracted retweeted statuses included), both streams.
    pub tweets_in: u64,
    /// SSE events received, both streams.
    pub events: u64,
    /// SSE events received on `/tweets/1` and `/tweets/2`.
    pub events_per_stream: [u64; 2],
    /// Kill messages received.
    pub kills: u64,
    /// Worker restarts (both pools).
    pub restarts: u64,
    /// Worker threads created (both pools; parked threads are reused).
    pub worker_threads: u64,
    /// Stream reconnections (both streams).
    pub reconnects: u64,
    /// Events skipped because their data is neither a kill nor a valid tweet.
    pub malformed: u64,
    /// Events skipped for being larger than `max_event_bytes`.
    pub oversized: u64,
    /// Records handed to the sink.
    pub records: u64,
    /// Records whose batch committed (this run, spool replays included).
    pub committed: u64,
    /// Records whose scores did not all arrive in time (written with NULLs).
    pub incomplete: u64,
    /// Tweet rows written.
    pub written_tweets: u64,
    /// User rows written.
    pub written_users: u64,
    /// Tweets or users the database refused (saved to `rejected.jsonl`).
    pub rejected_rows: u64,
    /// Records left in the spool for the next start (the database was down at exit).
    pub spooled_at_exit: u64,
    /// Receipt-to-commit latency, median, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// Receipt-to-commit latency, 99th percentile, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// CPU per thread group over the run, per tweet received.
    pub cpu: CpuBudget,
}

impl Summary {
    /// The summary's view of `snapshot`, with the CPU time spent since
    /// `cpu_at_start`; `spooled_at_exit` comes from the sink's own summary
    /// and is left at 0.
    pub(super) fn of(snapshot: &Snapshot, cpu_at_start: &CpuTimes) -> Summary {
        let sink = &snapshot.sink;
        let mut summary = Summary {
            seconds: snapshot.t,
            written_tweets: sink.written_tweets,
            written_users: sink.written_users,
            committed: sink.records_committed,
            rejected_rows: sink.rejected_rows,
            latency_p50_ms: sink.latency_p50_ms,
            latency_p99_ms: sink.latency_p99_ms,
            ..Summary::default()
        };
        if let Some(up) = &snapshot.upstream {
            let sources = up.sources_total();
            summary.tweets_in = sources.tweets;
            summary.events = sources.events;
            summary.events_per_stream = [up.sources[0].events, up.sources[1].events];
            summary.kills = sources.kills;
            summary.reconnects = sources.reconnects;
            summary.malformed = sources.malformed;
            summary.oversized = sources.oversized;
            summary.restarts = up.restarts();
            summary.worker_threads = up.core.threads_created;
            summary.records = up.records;
            summary.incomplete = up.aggregate.incomplete;
        }
        // After every stage has drained: their threads have ended and are in
        // the ledger; the emulator's still run and are read live.
        summary.cpu = crate::stats::cpu_times()
            .since(cpu_at_start)
            .budget(summary.tweets_in, summary.seconds);
        summary
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"));
        writeln!(f, "tweetflow ran {:.1} s", self.seconds)?;
        writeln!(
            f,
            "  in:     {} tweets from {} events ({} + {} per stream), {} kill messages, {} malformed, {} oversized, {} reconnects",
            self.tweets_in,
            self.events,
            self.events_per_stream[0],
            self.events_per_stream[1],
            self.kills,
            self.malformed,
            self.oversized,
            self.reconnects
        )?;
        writeln!(
            f,
            "  work:   {} worker restarts, {} worker threads created ({:.4} per tweet), {} records ({} incomplete), {} committed",
            self.restarts,
            self.worker_threads,
            self.worker_threads as f64 / self.tweets_in.max(1) as f64,
            self.records,
            self.incomplete,
            self.committed
        )?;
        writeln!(
            f,
            "  out:    {} tweets and {} users written, {} rows rejected, {} left in the spool",
            self.written_tweets, self.written_users, self.rejected_rows, self.spooled_at_exit
        )?;
        writeln!(
            f,
            "  latency receipt->commit: p50 {}, p99 {}",
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms)
        )?;
        write!(f, "  cpu:    {}", self.cpu)
    }
}
