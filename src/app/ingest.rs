//! `tweetflow ingest`: the flags, and the foreground run until a signal.

use std::time::Duration;

use anyhow::Context;

use crate::pipeline::{run_ingest, IngestConfig};
use crate::shutdown::Shutdown;

/// `tweetflow ingest` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IngestArgs {
    /// Base URL of the tweet server (routes /tweets/1, /tweets/2, /emotion_values).
    /// Without it, the built-in emulator is started on a free loopback port.
    #[arg(long, env = "TWEETFLOW_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The NATS server with JetStream (several URLs comma-separated for a cluster).
    #[arg(
        long,
        env = "TWEETFLOW_JETSTREAM",
        default_value = "nats://127.0.0.1:4222",
        value_name = "nats://HOST:PORT"
    )]
    pub jetstream: String,

    /// The stream: events go to `<stream>.1` and `<stream>.2`; the lexicon and the
    /// sequence offset to `<stream>_meta`. Created when missing.
    #[arg(
        long,
        env = "TWEETFLOW_STREAM",
        default_value = "tweets",
        value_name = "NAME"
    )]
    pub stream: String,

    /// Replicas of a stream created now (1 to 5; more need a JetStream cluster).
    #[arg(
        long,
        env = "TWEETFLOW_REPLICAS",
        default_value_t = 1,
        value_name = "N"
    )]
    pub replicas: usize,

    /// A replayed event (same Nats-Msg-Id) is dropped when it arrives within this window
    /// of the first (set when the stream is created).
    #[arg(
        long,
        env = "TWEETFLOW_DUPLICATE_WINDOW",
        default_value_t = 120.0,
        value_name = "SECS"
    )]
    pub duplicate_window: f64,

    /// Publishes awaiting their ack at most; beyond, the readers wait.
    #[arg(
        long,
        env = "TWEETFLOW_PUBLISH_WINDOW",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub publish_window: usize,

    /// Stop by itself after this many seconds.
    #[arg(long, env = "TWEETFLOW_DURATION", value_name = "SECS")]
    pub duration: Option<f64>,

    /// After Ctrl-C, how long to wait for the publishes in the window to be acknowledged.
    #[arg(
        long,
        env = "TWEETFLOW_DRAIN_TIMEOUT",
        default_value_t = 5.0,
        value_name = "SECS"
    )]
    pub drain_timeout: f64,

    /// Larger SSE events are skipped and counted.
    #[arg(long, env = "TWEETFLOW_MAX_EVENT_BYTES", default_value_t = 1 << 20, value_name = "N")]
    pub max_event_bytes: usize,

    /// A silent connection is dropped and reconnected after this many seconds.
    #[arg(
        long,
        env = "TWEETFLOW_READ_TIMEOUT",
        default_value_t = 15.0,
        value_name = "SECS"
    )]
    pub read_timeout: f64,

    /// No status line.
    #[arg(long, env = "TWEETFLOW_QUIET")]
    pub quiet: bool,

    /// Address of the endpoint (/metrics, /readyz, /healthz), or `off`. When the
    /// default's port is taken, a free port is used instead.
    #[arg(
        long,
        env = "TWEETFLOW_INGEST_METRICS_ADDR",
        default_value = DEFAULT_INGEST_METRICS_ADDR,
        value_name = "ADDR|off"
    )]
    pub metrics_addr: String,

    /// Rate of the built-in emulator: `profile`, events/s per stream, or `max`.
    #[arg(long, env = "TWEETFLOW_EMULATOR_RATE", default_value = "profile")]
    pub emulator_rate: String,

    /// Seed of the built-in emulator.
    #[arg(long, env = "TWEETFLOW_EMULATOR_SEED", default_value_t = 1)]
    pub emulator_seed: u64,

    /// The built-in emulator sends event ids (and resumes after `Last-Event-ID`).
    #[arg(long, env = "TWEETFLOW_EMULATOR_IDS")]
    pub emulator_ids: bool,
}

/// `ingest`'s endpoint when `--metrics-addr` is not given (next to `run`'s 9464).
const DEFAULT_INGEST_METRICS_ADDR: &str = "127.0.0.1:9465";

fn secs(what: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{what} must be a non-negative number of seconds"))
}

/// Maps the flags onto [`IngestConfig`], checking each.
pub(super) fn config(a: &IngestArgs) -> anyhow::Result<IngestConfig> {
    let mut cfg = IngestConfig {
        server: a.server.clone(),
        nats_url: a.jetstream.clone(),
        stream: a.stream.clone(),
        replicas: a.replicas,
        duplicate_window: secs("duplicate-window", a.duplicate_window)?,
        publish_window: a.publish_window.max(1),
        duration: a.duration.map(|d| secs("duration", d)).transpose()?,
        drain_timeout: secs("drain-timeout", a.drain_timeout)?,
        status_line: !a.quiet,
        ..IngestConfig::default()
    };
    cfg.ops_addr = a
        .metrics_addr
        .parse::<crate::ops::ListenAddr>()
        .map_err(|e| anyhow::anyhow!("--metrics-addr: {e}"))?
        .socket();
    cfg.ops_fallback_port = a.metrics_addr == DEFAULT_INGEST_METRICS_ADDR;
    if !(1..=5).contains(&a.replicas) {
        anyhow::bail!("--replicas must be 1 to 5");
    }
    cfg.emulator.bind = "127.0.0.1:0".parse()?;
    cfg.emulator.seed = a.emulator_seed;
    cfg.emulator.ids = a.emulator_ids;
    cfg.emulator.rate = a
        .emulator_rate
        .parse()
        .map_err(|e| anyhow::anyhow!("--emulator-rate: {e}"))?;
    cfg.source.max_event_bytes = a.max_event_bytes;
    cfg.source.read_timeout = secs("read-timeout", a.read_timeout)?;
    Ok(cfg)
}

/// Runs `tweetflow ingest` until Ctrl-C, SIGTERM or `--duration`; prints the summary.
pub(super) fn run(args: &IngestArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    let shutdown = Shutdown::new();
    super::signals::install(&shutdown)?;
    let summary = run_ingest(cfg, shutdown)?;
    eprintln!("{summary}");
    Ok(())
}
