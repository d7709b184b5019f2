//! The catalogue of `tweetflow_*` metrics: the `/metrics` view of a
//! [`Snapshot`] taken at scrape time, written in the Prometheus text format.
//!
//! Counters end in `_total`; times are in seconds, sizes in bytes (the
//! Prometheus conventions). The stage families appear once the stages have
//! started; the sink's are there from the start. docs/METRICS.md lists every
//! metric with its meaning.

use std::sync::atomic::{AtomicU64, Ordering};

use super::snapshot::{Snapshot, Upstream};
use crate::aggregate::Missing;
use crate::engine::CoreStats;
use crate::ops::{Exposition, HistogramSample};
use crate::sink::{SinkSnapshot, SinkState, SinkStats};
use crate::stats::status::JetStreamStatus;
use crate::stats::ThreadGroup;

/// Bucket bounds of the receipt → commit latency, seconds.
const LATENCY_BOUNDS_S: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Bucket bounds of a batch's write time, seconds.
const WRITE_BOUNDS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// Bucket bounds of the dispatch → result latency, seconds: the work delay
/// (50–500 ms by default) plus the time in a worker's inbox.
const DISPATCH_BOUNDS_S: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// The exposition of `snapshot`; the histograms are read from `sink` and
/// `core` (the pools, once the stages run) at their bounds; `ready`: whether
/// `/readyz` answers 200.
pub(super) fn render(
    snapshot: &Snapshot,
    sink: &SinkStats,
    core: Option<&CoreStats>,
    ready: bool,
) -> String {
    let mut e = Exposition::new();
    process(&mut e);
    if let Some(up) = &snapshot.upstream {
        stages(&mut e, up);
    }
    if let Some(core) = core {
        dispatch_latency(&mut e, core);
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

/// The highest CPU time of each thread group served so far, ns: a sample can
/// count a thread that is ending twice (see `stats::threads`), and a counter
/// must never go down.
static CPU_SERVED_NS: [AtomicU64; ThreadGroup::ALL.len()] =
    [const { AtomicU64::new(0) }; ThreadGroup::ALL.len()];

/// The families of the whole process: the build, CPU per thread group and in
/// all, resident memory and threads. Read at each scrape: the CPU per group
/// reads two small files per thread from `/proc` (tens of ms at 8,000
/// threads); the rest is one system call or one small file each.
fn process(e: &mut Exposition) {
    let mut build = vec![("version", env!("CARGO_PKG_VERSION"))];
    // Set by whoever builds (`TWEETFLOW_COMMIT=$(git rev-parse --short HEAD)`);
    // a build from a source tarball has no commit to name.
    if let Some(commit) = option_env!("TWEETFLOW_COMMIT").filter(|c| !c.is_empty()) {
        build.push(("commit", commit));
    }
    e.gauge(
        "tweetflow_build_info",
        "1, labelled with the version (and the git commit when the build was given one).",
        &[(&build, 1.0)],
    );
    let now = crate::stats::cpu_times();
    let labels = ThreadGroup::ALL.map(|g| [("group", g.name())]);
    let groups: Vec<(&[(&str, &str)], f64)> = ThreadGroup::ALL
        .iter()
        .zip(&labels)
        .map(|(g, l)| {
            let ns = now.get(*g);
            let served = CPU_SERVED_NS[*g as usize].fetch_max(ns, Ordering::Relaxed);
            (&l[..], ns.max(served) as f64 / 1e9)
        })
        .collect();
    e.float_counter(
        "tweetflow_cpu_seconds_total",
        "CPU time of each thread group since the start, seconds (readers, dispatcher, \
         workers, supervisor, aggregator, tap, sink, emulator, status, ops, main, other).",
        &groups,
    );
    if let Some(secs) = process_cpu_seconds() {
        e.float_counter(
            "process_cpu_seconds_total",
            "CPU time of the whole process (user and system) since the start, seconds.",
            &[(&[], secs)],
        );
    }
    if let Some(bytes) = resident_bytes() {
        e.gauge(
            "process_resident_memory_bytes",
            "Resident memory of the process, bytes (/proc/self/statm).",
            &[(&[], bytes as f64)],
        );
    }
    if let Some(n) = live_threads() {
        e.gauge(
            "tweetflow_threads",
            "Threads of the process now, every stage's (/proc/self/status).",
            &[(&[], n as f64)],
        );
    }
}

/// CPU time of the process, every thread's, ended ones included.
fn process_cpu_seconds() -> Option<f64> {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs as f64 + nanos as f64 / 1e9)
}

/// Resident memory from `/proc/self/statm` (its second field, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_statm_resident(&statm)?.checked_mul(rustix::param::page_size() as u64)
}

/// The resident pages of a `statm` line.
fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Threads of the process from `/proc/self/status`.
fn live_threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_threads(&status)
}

/// The `Threads:` figure of a `/proc/<pid>/status` text.
fn parse_status_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The dispatch → result latency of each pool.
fn dispatch_latency(e: &mut Exposition, core: &CoreStats) {
    let bounds_us = micros(&DISPATCH_BOUNDS_S);
    let pools = [
        ("sentiment", core.pool(crate::model::ScoreKind::Sentiment)),
        ("engagement", core.pool(crate::model::ScoreKind::Engagement)),
    ];
    let counts: Vec<_> = pools
        .iter()
        .map(|(_, p)| p.latency.cumulative(&bounds_us))
        .collect();
    let labels = pools.map(|(name, _)| [("pool", name)]);
    let series: Vec<(&[(&str, &str)], HistogramSample<'_>)> = labels
        .iter()
        .zip(&counts)
        .map(|(l, c)| {
            (
                &l[..],
                HistogramSample {
                    bounds: &DISPATCH_BOUNDS_S,
                    cumulative: &c.le,
                    count: c.count,
                    sum: c.sum as f64 / 1e6,
                },
            )
        })
        .collect();
    e.histograms(
        "tweetflow_dispatch_result_seconds",
        "Time from a tweet's dispatch to a worker to its score (the work delay and the \
         wait in the worker's inbox), per pool.",
        &series,
    );
}

/// `bounds_s` in µs, the unit of [`crate::stats::Histogram`].
fn micros(bounds_s: &[f64]) -> Vec<u64> {
    bounds_s.iter().map(|b| (b * 1e6).round() as u64).collect()
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
    e.counter(
        "tweetflow_scores_failed_total",
        "Tweets whose score was given up after an unexpected panic and its retry (written \
         as NULL), per pool.",
        &per_pool_n(&|s| s.failed),
    );
    e.counter(
        "tweetflow_spawn_failures_total",
        "Worker threads that could not be created, per pool (the pool stays smaller than \
         its target).",
        &per_pool_n(&|s| s.spawn_failures),
    );
    e.counter(
        "tweetflow_threads_created_total",
        "Worker threads created since the start, both pools (parked threads are reused).",
        &[(&[], core.threads_created)],
    );
    e.gauge(
        "tweetflow_thread_bound",
        "Worker threads each pool may hold, from the kernel's limits read at start and \
         --max-workers.",
        &[(&[], core.thread_bound as f64)],
    );
    let missing = Missing::ALL.map(|m| [("missing", m.name())]);
    let incomplete: Vec<(&[(&str, &str)], u64)> = missing
        .iter()
        .zip(up.aggregate.incomplete_by)
        .map(|(l, n)| (&l[..], n))
        .collect();
    e.counter(
        "tweetflow_records_incomplete_total",
        "Records passed on with a score missing (its result did not come within \
         --aggregate-timeout, or the pipeline stopped), written with NULL for it; \
         missing: sentiment (only), engagement (only) or both.",
        &incomplete,
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
    let c = h.cumulative(&micros(bounds_s));
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
