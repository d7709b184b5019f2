//! What a run did, printed at exit.
//!
//! The summary is read from the stages' counters after every stage has
//! drained, so its figures are final: `committed == records` and
//! `spooled_at_exit == 0` after a clean run against a reachable database.

use std::sync::atomic::Ordering;

use super::Probes;
use crate::source::SourceSnapshot;
use crate::stats::CpuBudget;

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
    /// The figures of every stage's counters now; `spooled_at_exit` comes
    /// from the sink's own summary and is left at 0.
    pub(super) fn collect(probes: &Probes) -> Summary {
        let mut summary = Summary {
            seconds: probes.started.elapsed().as_secs_f64(),
            ..Summary::default()
        };
        let mut total = SourceSnapshot::default();
        for (i, s) in probes.sources.iter().enumerate() {
            let s = s.snapshot();
            summary.events_per_stream[i] = s.events;
            total = total.sum(&s);
        }
        summary.tweets_in = total.tweets;
        summary.events = total.events;
        summary.kills = total.kills;
        summary.reconnects = total.reconnects;
        summary.malformed = total.malformed;
        summary.oversized = total.oversized;
        let core_snap = probes.core.snapshot();
        summary.restarts = core_snap.sentiment.restarts + core_snap.engagement.restarts;
        summary.records = probes.tap.records.load(Ordering::Relaxed);
        summary.incomplete = probes.aggregate.snapshot().incomplete;
        let sink_snap = probes.sink.snapshot();
        summary.written_tweets = sink_snap.written_tweets;
        summary.written_users = sink_snap.written_users;
        summary.committed = sink_snap.records_committed;
        summary.rejected_rows = sink_snap.rejected_rows;
        summary.latency_p50_ms = sink_snap.latency_p50_ms;
        summary.latency_p99_ms = sink_snap.latency_p99_ms;
        // After every stage has drained: their threads have ended and are in
        // the ledger; the emulator's still run and are read live.
        summary.cpu = crate::stats::cpu_times()
            .since(&probes.cpu_at_start)
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
            "  work:   {} worker restarts, {} records ({} incomplete), {} committed",
            self.restarts, self.records, self.incomplete, self.committed
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
