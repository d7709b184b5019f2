//! The catalogue of `tweetflow_*` metrics: the `/metrics` view of a
//! [`Snapshot`] taken at scrape time, written in the Prometheus text format.
//!
//! Counters end in `_total`; times are in seconds, sizes in bytes (the
//! Prometheus conventions). The stage families appear once the stages have
//! started; the sink's are there from the start. docs/METRICS.md lists every
//! metric with its meaning.

use super::snapshot::{Snapshot, Upstream};
use crate::ops::{Exposition, HistogramSample};
use crate::sink::{SinkSnapshot, SinkState, SinkStats};
use crate::stats::status::JetStreamStatus;

/// Bucket bounds of the receipt → commit latency, seconds.
const LATENCY_BOUNDS_S: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Bucket bounds of a batch's write time, seconds.
const WRITE_BOUNDS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// The exposition of `snapshot`; the histograms are read from `sink` at
/// their bounds; `ready`: whether `/readyz` answers 200.
pub(super) fn render(snapshot: &Snapshot, sink: &SinkStats, ready: bool) -> String {
    let mut e = Exposition::new();
    if let Some(up) = &snapshot.upstream {
        stages(&mut e, up);
    }
    if let Some(j) = &snapshot.jetstream {
        jetstream(&mut e, j);
    }
    sink_families(&mut e, &snapshot.sink, sink);
    e.gauge(
        "tweetflow_ready",
        "1 when /readyz answers 200 (lexicon loaded, every stage alive, the sink writing: \
         not down, probing, paused, waiting, failed or stopped).",
        &[(&[], if ready { 1.0 } else { 0.0 })],
    );
    e.finish()
}

/// The JetStream figures of `run --jetstream`.
fn jetstream(e: &mut Exposition, j: &JetStreamStatus) {
    let none: &[(&str, &str)] = &[];
    for (name, help, v) in [
        (
            "tweetflow_jetstream_up",
            "1 while NATS is reachable (run --jetstream).",
            u64::from(j.nats_up),
        ),
        (
            "tweetflow_jetstream_consumer_pending",
            "Messages of the durable consumer not yet delivered to any instance.",
            j.pending,
        ),
        (
            "tweetflow_jetstream_consumer_ack_pending",
            "Messages of the durable consumer delivered and not yet acked (all instances).",
            j.ack_pending,
        ),
        (
            "tweetflow_jetstream_consumer_redelivered",
            "Messages the durable consumer has redelivered (the server's count).",
            j.redelivered,
        ),
        (
            "tweetflow_jetstream_held",
            "Messages this instance holds until every record from them is committed.",
            j.held,
        ),
    ] {
        e.gauge(name, help, &[(none, v as f64)]);
    }
    for (name, help, v) in [
        (
            "tweetflow_jetstream_delivered_total",
            "Messages delivered to this instance.",
            j.delivered,
        ),
        (
            "tweetflow_jetstream_redelivered_total",
            "Of those, redeliveries (delivered before, to this or another instance).",
            j.delivered_again,
        ),
        (
            "tweetflow_jetstream_acks_total",
            "Messages acked after their records were committed.",
            j.acks,
        ),
        (
            "tweetflow_jetstream_progress_acks_total",
            "In-progress acks sent for messages still in the pipeline.",
            j.progress_acks,
        ),
        (
            "tweetflow_jetstream_acks_lost_total",
            "Acks not sent because NATS was unreachable (those messages are redelivered).",
            j.acks_lost,
        ),
    ] {
        e.counter(name, help, &[(none, v)]);
    }
}

/// The help text of `tweetflow_sink_state`: every state, with its meaning.
fn sink_state_help() -> String {
    let states: Vec<String> = SinkState::ALL
        .iter()
        .map(|s| format!("{} ({})", s.name(), s.meaning()))
        .collect();
    format!(
        "The sink's state: 1 for the current one, 0 for the others: {}.",
        states.join(", ")
    )
}

fn stages(e: &mut Exposition, up: &Upstream) {
    let s = &up.sources;
    let per_stream =
        |f: &dyn Fn(&crate::source::SourceSnapshot) -> u64| -> Vec<(&[(&str, &str)], u64)> {
            s.iter()
                .zip([&[("stream", "1")][..], &[("stream", "2")][..]])
                .map(|(snap, l)| (l, f(snap)))
                .collect()
        };
    e.counter(
        "tweetflow_tweets_received_total",
        "Tweets received, per stream (retweeted statuses extracted from retweets included).",
        &per_stream(&|s| s.tweets),
    );
    e.counter(
        "tweetflow_events_received_total",
        "SSE events received, per stream.",
        &per_stream(&|s| s.events),
    );
    e.counter(
        "tweetflow_kill_messages_total",
        "Kill messages received, per stream (each panics one worker of each pool).",
        &per_stream(&|s| s.kills),
    );
    e.counter(
        "tweetflow_malformed_events_total",
        "Events whose data did not parse as a tweet, per stream (counted and skipped).",
        &per_stream(&|s| s.malformed),
    );
    e.counter(
        "tweetflow_oversized_events_total",
        "Events larger than --max-event-bytes, per stream (counted and skipped).",
        &per_stream(&|s| s.oversized),
    );
    e.counter(
        "tweetflow_reconnects_total",
        "Reconnections of a stream after it ended or went silent.",
        &per_stream(&|s| s.reconnects),
    );

    let core = &up.core;
    let pools = [
        (&[("pool", "sentiment")][..], &core.sentiment),
        (&[("pool", "engagement")][..], &core.engagement),
    ];
    let per_pool =
        |f: &dyn Fn(&crate::engine::PoolSnapshot) -> f64| -> Vec<(&[(&str, &str)], f64)> {
            pools.iter().map(|(l, s)| (*l, f(s))).collect()
        };
    let per_pool_n =
        |f: &dyn Fn(&crate::engine::PoolSnapshot) -> u64| -> Vec<(&[(&str, &str)], u64)> {
            pools.iter().map(|(l, s)| (*l, f(s))).collect()
        };
    e.counter(
        "tweetflow_worker_restarts_total",
        "Worker restarts by the supervisor (after a kill message or a panic), per pool.",
        &per_pool_n(&|s| s.restarts),
    );
    e.counter(
        "tweetflow_pool_restarts_total",
        "Whole-pool restarts after the restart intensity was exceeded, per pool.",
        &per_pool_n(&|s| s.pool_restarts),
    );
    e.gauge(
        "tweetflow_pool_workers",
        "Active workers, per pool.",
        &per_pool(&|s| s.workers as f64),
    );
    e.gauge(
        "tweetflow_pool_target_workers",
        "The autoscaler's target size, per pool.",
        &per_pool(&|s| s.target as f64),
    );
    e.gauge(
        "tweetflow_in_flight",
        "Tweets dispatched to a pool's workers and not finished yet, per pool.",
        &per_pool(&|s| s.in_flight as f64),
    );
}

fn sink_families(e: &mut Exposition, s: &SinkSnapshot, histograms: &SinkStats) {
    e.counter(
        "tweetflow_records_committed_total",
        "Records (tweet with its scores) whose batch committed.",
        &[(&[], s.records_committed)],
    );
    e.counter(
        "tweetflow_rows_written_total",
        "Rows sent in committed batches, per table.",
        &[
            (&[("table", "tweets")], s.written_tweets),
            (&[("table", "users")], s.written_users),
        ],
    );
    e.counter(
        "tweetflow_rows_rejected_total",
        "Tweets or users the database refused (saved to rejected.jsonl in the spool directory).",
        &[(&[], s.rejected_rows)],
    );
    e.counter(
        "tweetflow_records_spilled_total",
        "Records appended to the spool file (memory full, database down, or sink paused).",
        &[(&[], s.spilled_total)],
    );
    e.counter(
        "tweetflow_records_replayed_total",
        "Records read back from the spool and committed.",
        &[(&[], s.records_replayed)],
    );
    e.counter(
        "tweetflow_sink_batches_total",
        "Committed batches.",
        &[(&[], s.batches)],
    );
    e.counter(
        "tweetflow_sink_retries_total",
        "Batch attempts that failed and were kept for a retry (connection lost, timeout).",
        &[(&[], s.retries)],
    );
    e.gauge(
        "tweetflow_sink_batch_size",
        "The batch size the monitor chose for the next batch.",
        &[(&[], s.batch_size as f64)],
    );
    e.gauge(
        "tweetflow_sink_buffered_records",
        "Records waiting in memory for the writer.",
        &[(&[], s.buffered as f64)],
    );
    e.gauge(
        "tweetflow_sink_buffered_bytes",
        "Approximate size of the records waiting in memory (their JSON text).",
        &[(&[], s.buffered_bytes as f64)],
    );
    e.gauge(
        "tweetflow_sink_spool_records",
        "Records in the spool file not committed yet.",
        &[(&[], s.spilled as f64)],
    );
    e.gauge(
        "tweetflow_sink_spool_bytes",
        "Bytes of the spool file not committed yet.",
        &[(&[], s.spool_bytes as f64)],
    );
    let labels = SinkState::ALL.map(|state| [("state", state.name())]);
    let states: Vec<(&[(&str, &str)], f64)> = SinkState::ALL
        .iter()
        .zip(&labels)
        .map(|(state, l)| (&l[..], f64::from(u8::from(s.sink_state == *state))))
        .collect();
    e.gauge("tweetflow_sink_state", &sink_state_help(), &states);
    let down_reason = match (s.sink_state, s.sink_reason.as_deref()) {
        (SinkState::Down, Some(why)) => (why, 1.0),
        _ => ("", 0.0),
    };
    e.gauge(
        "tweetflow_sink_down_reason",
        "1 while the sink is down for this reason (no answer for N s: the database is silent); 0 with an empty reason otherwise.",
        &[(&[("reason", down_reason.0)], down_reason.1)],
    );
    histogram(
        e,
        "tweetflow_receipt_to_commit_seconds",
        "Time from a tweet's receipt to the commit of its batch.",
        &histograms.latency,
        &LATENCY_BOUNDS_S,
    );
    histogram(
        e,
        "tweetflow_sink_batch_write_seconds",
        "Time to write and commit one batch.",
        &histograms.write_time,
        &WRITE_BOUNDS_S,
    );
}

fn histogram(
    e: &mut Exposition,
    name: &str,
    help: &str,
    h: &crate::stats::Histogram,
    bounds_s: &[f64],
) {
    let bounds_us: Vec<u64> = bounds_s.iter().map(|b| (b * 1e6).round() as u64).collect();
    let c = h.cumulative(&bounds_us);
    e.histogram(
        name,
        help,
        &HistogramSample {
            bounds: bounds_s,
            cumulative: &c.le,
            count: c.count,
            sum: c.sum as f64 / 1e6,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_state_metric_and_its_docs_name_every_state() {
        let help = sink_state_help();
        let docs = include_str!("../../docs/METRICS.md");
        let row = docs
            .lines()
            .find(|l| l.starts_with("| `tweetflow_sink_state{state}`"))
            .expect("METRICS.md lists tweetflow_sink_state");
        for state in SinkState::ALL {
            assert!(
                help.contains(&format!("{state} (")),
                "{state} missing from {help:?}"
            );
            assert!(
                row.contains(&format!("`{state}`")),
                "{state} missing from {row:?}"
            );
        }
    }
}
