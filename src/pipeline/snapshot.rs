//! The one read of every stage's counters that the status line, the stats
//! file, the dashboard, `/metrics` and the exit summary are views of.
//!
//! [`Snapshot`] is taken at one moment by
//! [`Probes::snapshot`](super::probes::Probes::snapshot) (or, while the
//! lexicon fetch waits for the server, by [`Snapshot::before_start`]); the
//! figures that combine stages (tweets of both streams, restarts of both
//! pools …) are its methods, so every view counts them the same way. The views:
//! the status ([`status_of`](super::ticker::status_of), which the dashboard's
//! history samples), the metrics ([`render`](super::metrics::render)) and the
//! summary ([`Summary::of`](super::summary::Summary::of)).

use crate::aggregate::AggSnapshot;
use crate::engine::CoreSnapshot;
use crate::sink::SinkSnapshot;
use crate::source::SourceSnapshot;
use crate::stats::status::{JetStreamStatus, TagCount};

/// Every stage's figures at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Seconds since the pipeline started.
    pub(crate) t: f64,
    /// What ingest is doing (see [`Status::ingest`](crate::stats::status::Status::ingest)).
    pub(crate) ingest: &'static str,
    /// Bytes of tweets in memory now, and the limit.
    pub(crate) memory_used: u64,
    /// `--memory-limit` (0 before the stages run).
    pub(crate) memory_limit: u64,
    /// The stages before the sink, once they run (`None` while the lexicon
    /// fetch waits for the server).
    pub(crate) upstream: Option<Upstream>,
    /// The sink (there from the start).
    pub(crate) sink: SinkSnapshot,
    /// The top hashtags, heaviest first.
    pub(crate) top_hashtags: Vec<TagCount>,
    /// With `--jetstream`: the consumer and this instance's share of it.
    pub(crate) jetstream: Option<JetStreamStatus>,
    /// With `--jetstream`: every instance's top hashtags together.
    pub(crate) merged_top_hashtags: Vec<TagCount>,
}

/// The stages before the sink: readers, worker pools, aggregator, tap.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// `/tweets/1` and `/tweets/2`.
    pub(crate) sources: [SourceSnapshot; 2],
    /// The worker pools.
    pub(crate) core: CoreSnapshot,
    /// The aggregator.
    pub(crate) aggregate: AggSnapshot,
    /// Records the tap handed to the sink.
    pub(crate) records: u64,
}

impl Snapshot {
    /// The status while the lexicon fetch waits for the server: `ingest` and
    /// the sink, nothing else runs yet.
    pub(crate) fn before_start(t: f64, ingest: &'static str, sink: SinkSnapshot) -> Snapshot {
        Snapshot {
            t,
            ingest,
            memory_used: 0,
            memory_limit: 0,
            upstream: None,
            sink,
            top_hashtags: Vec::new(),
            jetstream: None,
            merged_top_hashtags: Vec::new(),
        }
    }
}

impl Upstream {
    /// Both streams' counters summed.
    pub(crate) fn sources_total(&self) -> SourceSnapshot {
        self.sources[0].sum(&self.sources[1])
    }

    /// Worker restarts, both pools.
    pub(crate) fn restarts(&self) -> u64 {
        self.core.sentiment.restarts + self.core.engagement.restarts
    }

    /// Jobs in flight, both pools.
    pub(crate) fn in_flight(&self) -> u64 {
        self.core.sentiment.in_flight + self.core.engagement.in_flight
    }
}
