//! The catalogue of `tweetflow_*` metrics: every stage's counters and
//! gauges, read at scrape time, written in the Prometheus text format.
//!
//! Counters end in `_total`; times are in seconds, sizes in bytes (the
//! Prometheus conventions). The stage families appear once the stages have
//! started; the sink's are there from the start. docs/METRICS.md lists every
//! metric with its meaning.

use super::ops::OpsView;
use crate::ops::{Exposition, HistogramSample};

/// Bucket bounds of the receipt → commit latency, seconds.
const LATENCY_BOUNDS_S: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Bucket bounds of a batch's write time, seconds.
const WRITE_BOUNDS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// The sink's states, as the status line names them, with their labels.
const SINK_STATES: [(&str, &[(&str, &str)]); 7] = [
    ("up", &[("state", "up")]),
    ("down", &[("state", "down")]),
    ("probing", &[("state", "probing")]),
    ("paused", &[("state", "paused")]),
    ("waiting", &[("state", "waiting")]),
    ("failed", &[("state", "failed")]),
    ("stopped", &[("state", "stopped")]),
];

/// The exposition now.
pub(super) fn render(v: &OpsView) -> String {
    let mut e = Exposition::new();
    if let Some(p) = v.stages.get() {
        stages(&mut e, p);
    }
    sink(&mut e, v);
    let ready = if v.not_ready().is_empty() { 1.0 } else { 0.0 };
    e.gauge(
        "tweetflow_ready",
        "1 when /readyz answers 200 (lexicon loaded, every stage alive, sink up and not paused).",
        &[(&[], ready)],
    );
    e.finish()
}

/// The JetStream figures of `run --jetstream`.
fn jetstream(e: &mut Exposition, j: &super::JsProbe) {
    let n = j.stats.snapshot();
    let none: &[(&str, &str)] = &[];
    e.gauge(
        "tweetflow_jetstream_up",
        "1 while NATS is reachable (run --jetstream).",
        &[(none, f64::from(u8::from(n.connected)))],
    );
    for (name, help, v) in [
        (
            "tweetflow_jetstream_consumer_pending",
            "Messages of the durable consumer not yet delivered to any instance.",
            n.consumer_pending,
        ),
        (
            "tweetflow_jetstream_consumer_ack_pending",
            "Messages of the durable consumer delivered and not yet acked (all instances).",
            n.consumer_ack_pending,
        ),
        (
            "tweetflow_jetstream_consumer_redelivered",
            "Messages the durable consumer has redelivered (the server's count).",
            n.consumer_redelivered,
        ),
        (
            "tweetflow_jetstream_held",
            "Messages this instance holds until every record from them is committed.",
            j.tracker.len() as u64,
        ),
    ] {
        e.gauge(name, help, &[(none, v as f64)]);
    }
    for (name, help, v) in [
        (
            "tweetflow_jetstream_delivered_total",
            "Messages delivered to this instance.",
            n.delivered,
        ),
        (
            "tweetflow_jetstream_redelivered_total",
            "Of those, redeliveries (delivered before, to this or another instance).",
            n.redelivered,
        ),
        (
            "tweetflow_jetstream_acks_total",
            "Messages acked after their records were committed.",
            n.acks,
        ),
        (
            "tweetflow_jetstream_progress_acks_total",
            "In-progress acks sent for messages still in the pipeline.",
            n.progress_acks,
        ),
        (
            "tweetflow_jetstream_acks_lost_total",
            "Acks not sent because NATS was unreachable (those messages are redelivered).",
            n.acks_lost,
        ),
    ] {
        e.counter(name, help, &[(none, v)]);
    }
}

fn stages(e: &mut Exposition, p: &super::Probes) {
    if let Some(j) = &p.jetstream {
        jetstream(e, j);
    }
    let s: Vec<_> = p.sources.iter().map(|s| s.snapshot()).collect();
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

    let core = p.core.snapshot();
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

fn sink(e: &mut Exposition, v: &OpsView) {
    let s = v.sink.snapshot();
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
    let states: Vec<(&[(&str, &str)], f64)> = SINK_STATES
        .iter()
        .map(|(name, labels)| (*labels, f64::from(u8::from(s.sink_state == *name))))
        .collect();
    e.gauge(
        "tweetflow_sink_state",
        "The sink's state: 1 for the current one of up, down (database unreachable), \
         probing (breaker half-open) and paused (by POST /sink/pause).",
        &states,
    );
    histogram(
        e,
        "tweetflow_receipt_to_commit_seconds",
        "Time from a tweet's receipt to the commit of its batch.",
        &v.sink.latency,
        &LATENCY_BOUNDS_S,
    );
    histogram(
        e,
        "tweetflow_sink_batch_write_seconds",
        "Time to write and commit one batch.",
        &v.sink.write_time,
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
