//! The live statistics of every stage of a running pipeline, and the one
//! [`Snapshot`] read of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::jetstream::JsProbe;
use super::snapshot::{Snapshot, Upstream};
use super::tap::TapStats;
use crate::aggregate::AggStats;
use crate::budget::Budget;
use crate::engine::CoreStats;
use crate::shutdown::Shutdown;
use crate::sink::SinkStats;
use crate::source::SourceStats;
use crate::stats::history::Live;
use crate::stats::sketch::TopHashtags;
use crate::stats::status::TagCount;
use crate::stats::CpuTimes;

/// The ingest state once the readers were told to stop.
const INGEST_STOPPED: &str = "stopped";
/// The ingest state while the readers read.
const INGEST_UP: &str = "up";
/// The ingest state while the lexicon fetch waits for the server, or while no
/// stream is connected.
pub(super) const WAITING_FOR_SERVER: &str = "waiting for server";
/// The ingest state of `run --jetstream` while NATS cannot be reached.
const WAITING_FOR_NATS: &str = "waiting for NATS";

/// Live statistics of every stage of a running pipeline.
#[derive(Debug, Clone)]
pub struct Probes {
    /// When [`start`](super::start) was called.
    pub started: Instant,
    /// One per stream, `/tweets/1` first.
    pub sources: Vec<Arc<SourceStats>>,
    /// The worker pools.
    pub core: Arc<CoreStats>,
    /// The aggregator.
    pub aggregate: Arc<AggStats>,
    /// The sink.
    pub sink: Arc<SinkStats>,
    /// The top hashtags, counted by the tap.
    pub hashtags: Arc<Mutex<TopHashtags>>,
    /// The memory budget the readers take their permits from.
    pub budget: Arc<Budget>,
    pub(super) tap: Arc<TapStats>,
    /// The pipeline's stop flag: the status says `stopped` once it is set.
    pub(super) stopping: Shutdown,
    /// Every thread group's CPU time when [`start`](super::start) was called.
    pub(super) cpu_at_start: CpuTimes,
    /// The latest status and the last ten minutes of it, kept by the status thread.
    pub(crate) live: Arc<Mutex<Live>>,
    /// For the message shown when the database is unreachable.
    pub(super) database: String,
    pub(super) spool_dir: PathBuf,
    /// With `--jetstream`: the consumer, the messages held, the merged hashtags.
    pub jetstream: Option<JsProbe>,
}

impl Probes {
    /// Every stage's figures at `now`.
    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        let source = |i: usize| {
            self.sources
                .get(i)
                .map(|s| s.snapshot())
                .unwrap_or_default()
        };
        let upstream = Upstream {
            sources: [source(0), source(1)],
            core: self.core.snapshot(),
            aggregate: self.aggregate.snapshot(),
            records: self.tap.records(),
        };
        let jetstream = self.jetstream.as_ref().map(|j| j.status());
        // The fetchers have no connection of their own: NATS's is theirs.
        let connected = match &jetstream {
            Some((s, _)) => u64::from(s.nats_up),
            None => upstream.sources_total().connected,
        };
        let ingest = match self.budget.waiting() {
            _ if self.stopping.is_triggered() => INGEST_STOPPED,
            Some(why) => why.name(),
            None if connected == 0 && jetstream.is_some() => WAITING_FOR_NATS,
            None if connected == 0 => WAITING_FOR_SERVER,
            None => INGEST_UP,
        };
        let (jetstream, merged_top_hashtags) = match jetstream {
            Some((s, merged)) => (Some(s), merged),
            None => (None, Vec::new()),
        };
        Snapshot {
            t: now.saturating_duration_since(self.started).as_secs_f64(),
            ingest,
            memory_used: self.budget.used(),
            memory_limit: self.budget.limit(),
            upstream: Some(upstream),
            sink: self.sink.snapshot(),
            top_hashtags: self
                .hashtags
                .lock()
                .top()
                .into_iter()
                .map(|(tag, count)| TagCount { tag, count })
                .collect(),
            jetstream,
            merged_top_hashtags,
        }
    }
}
