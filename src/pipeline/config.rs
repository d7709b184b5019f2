//! Everything a pipeline run is configured by.

use std::path::PathBuf;
use std::time::Duration;

use crate::aggregate::AggConfig;
use crate::emulator::EmulatorConfig;
use crate::engine::CoreConfig;
use crate::jetstream::names;
use crate::ops::OpsConfig;
use crate::sink::SinkConfig;
use crate::source::SourceConfig;

/// Default of [`PipelineConfig::memory_limit`]: 1 GiB.
const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `None`: start the built-in emulator with `emulator` and read from it.
    pub server: Option<String>,
    /// The built-in emulator, used when `server` is `None`.
    pub emulator: EmulatorConfig,
    /// The stream readers and the lexicon fetch (`server` is set by [`start`](super::start)).
    pub source: SourceConfig,
    /// The worker pools.
    pub core: CoreConfig,
    /// The aggregator.
    pub aggregate: AggConfig,
    /// The PostgreSQL sink.
    pub sink: SinkConfig,
    /// Capacity of each channel between stages.
    pub channel_capacity: usize,
    /// Most bytes of tweets alive in memory at once (`--memory-limit`): the
    /// channels, inboxes, pending entries and the sink's buffer, together.
    /// Beyond it the sink spills and the readers wait. Default 1 GiB.
    pub memory_limit: u64,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// After a stop (Ctrl-C, SIGTERM, `duration`), how long the drain may take before
    /// the process exits; what is not committed by then is in the spool (default 5 s).
    pub drain_timeout: Duration,
    /// Append one JSON status object a second to this file (created or truncated).
    pub stats_file: Option<PathBuf>,
    /// Print the status line on stderr once a second.
    pub status_line: bool,
    /// The operator's endpoint (`/metrics`, `/healthz`, `/readyz`, pause and
    /// resume); off unless an address is given.
    pub ops: OpsConfig,
    /// Test hook of the tap (between the aggregator and the sink), see
    /// [`LoopHook`](crate::aggregate::LoopHook); the tap restarts under
    /// `core.restart` (default none).
    pub tap_fault: Option<std::sync::Arc<dyn crate::aggregate::LoopHook>>,
    /// Read the JetStream stream that `tweetflow ingest` fills instead of a tweet
    /// server (`--jetstream`); `server` and `emulator` are then unused.
    pub jetstream: Option<JetStreamRun>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            server: None,
            emulator: EmulatorConfig::default(),
            source: SourceConfig::default(),
            core: CoreConfig::default(),
            aggregate: AggConfig::default(),
            sink: SinkConfig::default(),
            channel_capacity: 4096,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            duration: None,
            drain_timeout: Duration::from_secs(5),
            stats_file: None,
            status_line: false,
            ops: OpsConfig::default(),
            tap_fault: None,
            jetstream: None,
        }
    }
}

/// `--jetstream` and its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamRun {
    /// The NATS server(s).
    pub url: String,
    /// The stream `tweetflow ingest` fills.
    pub stream: String,
    /// The durable consumer every instance binds.
    pub consumer: String,
    /// The consumer's max_ack_pending (when it is created), and this instance's bound
    /// on the messages it holds.
    pub max_ack_pending: usize,
    /// The consumer's ack wait (when it is created).
    pub ack_wait: Duration,
    /// This instance's name in the merged hashtag counts.
    pub instance: String,
    /// Fetcher threads.
    pub fetchers: usize,
    /// Most messages one pull asks for.
    pub batch: usize,
}

impl Default for JetStreamRun {
    fn default() -> Self {
        JetStreamRun {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: names::DEFAULT_STREAM.to_owned(),
            consumer: names::DEFAULT_CONSUMER.to_owned(),
            max_ack_pending: 20_000,
            ack_wait: Duration::from_secs(30),
            instance: default_instance(),
            fetchers: 2,
            batch: 256,
        }
    }
}

/// The host name and the process id.
pub(crate) fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    names::instance_token(&format!("{host}-{}", std::process::id()))
}
