//! Wires every stage with bounded crossbeam channels and runs it to a graceful end.
//!
//! ```text
//!  reader /tweets/1 ─┐                     ┌─▶ sentiment pool ──┐
//!                    ├─ingest─▶ dispatcher ─┤                     ├─agg─▶ aggregator ─records─▶ tap ─sink─▶ sink
//!  reader /tweets/2 ─┘      (least-conn)   └─▶ engagement pool ─┘          (join by seq)   (hashtags)  (buffer, spool,
//!                                 └──────────────── AggMsg::Tweet ──────────▲                              writer, health)
//! ```
//!
//! Shutdown runs front to back: the [`Shutdown`] flag stops the readers; their
//! senders drop, so the dispatcher's input disconnects; it drops the worker
//! inboxes; the workers drain and drop their aggregator senders; the aggregator
//! flushes and drops its output; the tap and then the sink drain and commit.
//! Every thread ends because its input disconnected.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{bounded, Receiver, Sender};
use log::{error, info, warn};
use parking_lot::Mutex;

use crate::aggregate::{self, AggConfig, AggStats, Aggregator};
use crate::app::cli::RunArgs;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::model::{AggMsg, Ingest, Record, SeqGen};
use crate::shutdown::Shutdown;
use crate::sink::{self, Sink, SinkConfig, SinkStats};
use crate::source::{self, SourceConfig, SourceSnapshot, SourceStats};
use crate::stats::sketch::TopHashtags;
use crate::stats::status::{fit, RateMeter, Status, TagCount};
use crate::supervisor;
use crate::workers::{self, Core, CoreConfig, CoreStats};

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `None`: start the built-in emulator with `emulator` and read from it.
    pub server: Option<String>,
    pub emulator: EmulatorConfig,
    pub source: SourceConfig,
    pub core: CoreConfig,
    pub aggregate: AggConfig,
    pub sink: SinkConfig,
    /// Capacity of each channel between stages.
    pub channel_capacity: usize,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    pub stats_file: Option<PathBuf>,
    /// Print the status line on stderr once a second.
    pub status_line: bool,
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
            duration: None,
            stats_file: None,
            status_line: false,
        }
    }
}

/// What a run did, printed at exit.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub seconds: f64,
    /// Tweets received (extracted retweeted statuses included), per stream and in all.
    pub tweets_in: u64,
    pub events: u64,
    /// SSE events received on `/tweets/1` and `/tweets/2`.
    pub events_per_stream: [u64; 2],
    pub kills: u64,
    pub restarts: u64,
    pub reconnects: u64,
    pub malformed: u64,
    pub oversized: u64,
    /// Records handed to the sink.
    pub records: u64,
    /// Records whose batch committed (this run, spool replays included).
    pub committed: u64,
    /// Records whose scores did not all arrive in time (written with NULLs).
    pub incomplete: u64,
    pub written_tweets: u64,
    pub written_users: u64,
    pub rejected_rows: u64,
    /// Records left in the spool for the next start (the database was down at exit).
    pub spooled_at_exit: u64,
    /// Receipt-to-commit latency, milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"));
        writeln!(f, "tweetflow ran {:.1} s", self.seconds)?;
        writeln!(
            f,
            "  in:     {} tweets from {} events, {} kill messages, {} malformed, {} oversized, {} reconnects",
            self.tweets_in, self.events, self.kills, self.malformed, self.oversized, self.reconnects
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
        write!(
            f,
            "  latency receipt->commit: p50 {}, p99 {}",
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms)
        )
    }
}

/// Counts of the tap between the aggregator and the sink.
#[derive(Debug, Default)]
struct TapStats {
    records: AtomicU64,
}

/// `tweetflow run`: builds the configuration from the flags, handles signals and
/// logging, runs, prints the summary.
pub fn run_cli(args: RunArgs) -> anyhow::Result<()> {
    let cfg = config_from_args(&args)?;
    let terminal = std::io::stderr().is_terminal() && cfg.status_line;
    init_logging(terminal);

    let shutdown = Shutdown::new();
    install_signal_handlers(&shutdown)?;
    let summary = run(cfg, shutdown)?;
    eprintln!("{summary}");
    Ok(())
}

fn init_logging(terminal: bool) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if terminal {
        // The status lines are redrawn in place; a log line first erases them.
        builder.format(|buf, record| {
            if STATUS_DRAWN.swap(false, Ordering::SeqCst) {
                write!(buf, "{ERASE_STATUS}")?;
            }
            writeln!(
                buf,
                "[{} {:5} {}] {}",
                buf.timestamp_seconds(),
                record.level(),
                record.target(),
                record.args()
            )
        });
    }
    let _ = builder.try_init();
}

/// Whether the two status lines are on the terminal now (the cursor at the end of the second).
static STATUS_DRAWN: AtomicBool = AtomicBool::new(false);
/// Erases the two status lines and leaves the cursor at the start of the first.
const ERASE_STATUS: &str = "\r\x1b[2K\x1b[1A\r\x1b[2K";

fn install_signal_handlers(shutdown: &Shutdown) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM] {
        // A second signal while draining exits at once (the spool keeps what was spilled).
        flag::register_conditional_shutdown(sig, 130, shutdown.flag())
            .context("installing the signal handler")?;
        flag::register(sig, shutdown.flag()).context("installing the signal handler")?;
    }
    Ok(())
}

/// Maps the command line onto the stages' configurations.
pub fn config_from_args(args: &RunArgs) -> anyhow::Result<PipelineConfig> {
    let secs = |what: &str, v: f64| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .with_context(|| format!("--{what} must be a non-negative number of seconds"))
    };
    let mut cfg = PipelineConfig {
        server: args.server.clone(),
        duration: args.duration.map(|d| secs("duration", d)).transpose()?,
        stats_file: args.stats_file.clone(),
        status_line: !args.quiet,
        ..PipelineConfig::default()
    };
    cfg.emulator.bind = "127.0.0.1:0".parse()?;
    cfg.emulator.seed = args.emulator_seed;
    cfg.emulator.rate = args
        .emulator_rate
        .parse()
        .map_err(|e| anyhow::anyhow!("--emulator-rate: {e}"))?;

    cfg.source.max_event_bytes = args.max_event_bytes;
    cfg.source.read_timeout = secs("read-timeout", args.read_timeout)?;

    cfg.core.work_delay = args
        .work_delay
        .parse()
        .map_err(|e| anyhow::anyhow!("--work-delay: {e}"))?;
    if args.min_workers == 0 || args.min_workers > args.max_workers {
        bail!("--min-workers must be at least 1 and at most --max-workers");
    }
    cfg.core.min_workers = args.min_workers;
    cfg.core.max_workers = args.max_workers;
    cfg.core.restart.max_restarts = args.max_restarts;
    cfg.core.restart.window = secs("restart-window", args.restart_window)?;
    if !(args.utilisation > 0.0 && args.utilisation <= 1.0) {
        bail!("--utilisation must be in (0, 1]");
    }
    cfg.core.utilisation = args.utilisation;

    cfg.aggregate.timeout = secs("aggregate-timeout", args.aggregate_timeout)?;

    if args.batch_min == 0 || args.batch_min > args.batch_max {
        bail!("--batch-min must be at least 1 and at most --batch-max");
    }
    cfg.sink.database_url = args.database_url.clone();
    cfg.sink.schema = args.schema.clone();
    cfg.sink.batch_min = args.batch_min;
    cfg.sink.batch_max = args.batch_max;
    cfg.sink.target_write = Duration::from_millis(args.batch_target_ms);
    cfg.sink.linger = Duration::from_millis(args.linger_ms);
    cfg.sink.buffer_records = args.buffer_records;
    cfg.sink.spool_dir = args.spool_dir.clone();
    Ok(cfg)
}

fn spawn_named<F: FnOnce() + Send + 'static>(name: &str, f: F) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .with_context(|| format!("spawning thread {name}"))
}

/// Runs the pipeline until `shutdown` is triggered (or `duration` passes, or a
/// stage fails for good), then drains every stage and returns the summary.
pub fn run(cfg: PipelineConfig, shutdown: Shutdown) -> anyhow::Result<Summary> {
    match start(cfg, shutdown.clone()) {
        Ok(pipeline) => pipeline.wait(),
        Err(Stopped::Early) => Ok(Summary::default()),
        Err(Stopped::Failed(e)) => Err(e),
    }
}

/// Why [`start`] returned no pipeline.
#[derive(Debug)]
pub enum Stopped {
    /// Shutdown was triggered before the server answered; nothing ran.
    Early,
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stopped {
    fn from(e: E) -> Stopped {
        Stopped::Failed(e.into())
    }
}

/// Live statistics of every stage of a running pipeline.
#[derive(Debug, Clone)]
pub struct Probes {
    pub started: Instant,
    /// One per stream, `/tweets/1` first.
    pub sources: Vec<Arc<SourceStats>>,
    pub core: Arc<CoreStats>,
    pub aggregate: Arc<AggStats>,
    pub sink: Arc<SinkStats>,
    pub hashtags: Arc<Mutex<TopHashtags>>,
    tap: Arc<TapStats>,
    /// For the message shown when the database is unreachable.
    database: String,
    spool_dir: PathBuf,
}

/// A running pipeline; [`Pipeline::wait`] runs it to its end.
pub struct Pipeline {
    probes: Probes,
    duration: Option<Duration>,
    shutdown: Shutdown,
    _emulator: Option<Emulator>,
    readers: Vec<JoinHandle<()>>,
    core: Core,
    aggregator: Aggregator,
    tap: JoinHandle<()>,
    sink: Sink,
    ticker: JoinHandle<()>,
    ticker_done: Shutdown,
}

/// Starts every stage: the emulator (without a server), the sink, the lexicon
/// fetch (waits for the server), the core, the aggregator, the tap, the readers
/// and the status ticker.
pub fn start(cfg: PipelineConfig, shutdown: Shutdown) -> Result<Pipeline, Stopped> {
    let started = Instant::now();

    // The server: the one given, or the built-in emulator.
    let (emulator, server) = match &cfg.server {
        Some(url) => (None, url.trim_end_matches('/').to_string()),
        None => {
            let emu =
                Emulator::start(cfg.emulator.clone()).context("starting the built-in emulator")?;
            let url = emu.url();
            info!("no --server given: reading the built-in emulator at {url}");
            (Some(emu), url)
        }
    };

    // The sink first: it replays a spool left by an earlier run and waits out a
    // database that is down, without holding up the rest.
    info!(
        "writing to {} (schema {}), spilling to {} when it is down",
        redact_url(&cfg.sink.database_url),
        cfg.sink.schema,
        cfg.sink.spool_dir.display()
    );
    let (rec_tx, rec_rx) = bounded::<Record>(cfg.channel_capacity);
    let sink = sink::spawn_sink(cfg.sink.clone(), rec_rx).context("starting the sink")?;

    let mut source_cfg = cfg.source.clone();
    source_cfg.server = server.clone();
    info!("fetching the lexicon from {server}/emotion_values");
    let lexicon = match source::fetch_lexicon(&server, &source_cfg, &shutdown) {
        Ok(lex) => Arc::new(lex),
        Err(e) => {
            drop(rec_tx);
            let joined = sink.join();
            if shutdown.is_triggered() {
                info!("stopped before the server answered");
                joined.context("the sink failed")?;
                return Err(Stopped::Early);
            }
            return Err(anyhow::Error::from(e)
                .context("fetching the lexicon")
                .into());
        }
    };
    info!("lexicon: {} entries", lexicon.len());

    let (ingest_tx, ingest_rx) = bounded::<Ingest>(cfg.channel_capacity);
    let (agg_tx, agg_rx) = bounded::<AggMsg>(cfg.channel_capacity);
    let (tap_tx, tap_rx) = bounded::<Record>(cfg.channel_capacity);

    let core = workers::spawn_core(cfg.core.clone(), lexicon, ingest_rx, agg_tx)
        .context("starting the worker pools")?;
    let aggregator = aggregate::spawn_aggregator(cfg.aggregate.clone(), agg_rx, tap_tx)
        .context("starting the aggregator")?;

    let probes = Probes {
        started,
        sources: vec![Arc::new(SourceStats::new()), Arc::new(SourceStats::new())],
        core: core.stats(),
        aggregate: aggregator.stats(),
        sink: sink.stats(),
        hashtags: Arc::new(Mutex::new(TopHashtags::default())),
        tap: Arc::new(TapStats::default()),
        database: redact_url(&cfg.sink.database_url),
        spool_dir: cfg.sink.spool_dir.clone(),
    };

    let tap = {
        let hashtags = Arc::clone(&probes.hashtags);
        let tap_stats = Arc::clone(&probes.tap);
        let policy = cfg.core.restart.clone();
        spawn_named("tap", move || {
            let kept = supervisor::keep_alive("tap", &policy, || {
                tap_loop(&tap_rx, &rec_tx, &hashtags, &tap_stats)
            });
            if kept.is_err() {
                error!("the tap failed for good; records can no longer reach the sink");
            }
        })?
    };

    let seq = Arc::new(SeqGen::from_clock());
    let mut readers = Vec::new();
    for (stream, stats) in [1u8, 2].into_iter().zip(&probes.sources) {
        let handle = source::spawn_reader(
            stream,
            source_cfg.clone(),
            Arc::clone(&seq),
            ingest_tx.clone(),
            Arc::clone(stats),
            shutdown.clone(),
        )
        .with_context(|| format!("starting the reader of /tweets/{stream}"))?;
        readers.push(handle);
    }
    drop(ingest_tx);

    // The status ticker runs until every stage has drained.
    let ticker_done = Shutdown::new();
    let ticker = {
        let done = ticker_done.clone();
        let probes = probes.clone();
        let stats_file = match &cfg.stats_file {
            Some(path) => Some(BufWriter::new(
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            )),
            None => None,
        };
        let line = cfg.status_line;
        spawn_named("status", move || {
            status_loop(probes, stats_file, line, &done)
        })?
    };

    Ok(Pipeline {
        probes,
        duration: cfg.duration,
        shutdown,
        _emulator: emulator,
        readers,
        core,
        aggregator,
        tap,
        sink,
        ticker,
        ticker_done,
    })
}

impl Pipeline {
    /// Live statistics of every stage.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// The status as the status line shows it now (rates over the time since
    /// the previous call with the same meters).
    pub fn status(&self, meters: &mut StatusMeters) -> Status {
        build_status(&self.probes, Instant::now(), meters)
    }

    /// Runs until the shutdown flag, the configured duration or a fatal
    /// failure of the worker pools; then drains every stage front to back.
    pub fn wait(self) -> anyhow::Result<Summary> {
        let Pipeline {
            probes,
            duration,
            shutdown,
            _emulator,
            readers,
            core,
            aggregator,
            tap,
            sink,
            ticker,
            ticker_done,
        } = self;
        let mut failure = None;
        loop {
            if shutdown.sleep(Duration::from_millis(100)) {
                info!("stopping: draining every stage");
                break;
            }
            if duration.is_some_and(|d| probes.started.elapsed() >= d) {
                info!("--duration reached: draining every stage");
                shutdown.trigger();
                break;
            }
            if let Some(why) = core.fatal() {
                error!("the worker pools failed: {why}");
                failure = Some(why);
                shutdown.trigger();
                break;
            }
            if readers.iter().all(|r| r.is_finished()) {
                // Readers only end on their own when the dispatcher is gone.
                error!("both stream readers have stopped: draining every stage");
                failure = Some("the stream readers stopped (the dispatcher is gone)".into());
                shutdown.trigger();
                break;
            }
        }

        // Drain front to back: each stage ends when its input disconnects.
        for r in readers {
            if r.join().is_err() {
                warn!("a stream reader panicked");
            }
        }
        let core_result = core.join();
        aggregator.join();
        if tap.join().is_err() {
            warn!("the tap thread panicked");
        }
        let sink_summary = sink.join();
        ticker_done.trigger();
        let _ = ticker.join();

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
        match sink_summary {
            Ok(s) => summary.spooled_at_exit = s.left_in_spool,
            Err(e) => return Err(e).context("the sink failed"),
        }
        if let Err(e) = core_result {
            return Err(e).context("the worker pools failed");
        }
        if let Some(why) = failure {
            bail!("the worker pools failed: {why}");
        }
        Ok(summary)
    }
}

/// Between the aggregator and the sink: counts hashtags into the sketch.
fn tap_loop(
    input: &Receiver<Record>,
    output: &Sender<Record>,
    hashtags: &Mutex<TopHashtags>,
    stats: &TapStats,
) {
    for record in input {
        if !record.tweet.hashtags.is_empty() {
            let mut top = hashtags.lock();
            for tag in &record.tweet.hashtags {
                top.add(tag);
            }
        }
        stats.records.fetch_add(1, Ordering::Relaxed);
        if output.send(record).is_err() {
            error!("the sink is gone: stopping the tap");
            return;
        }
    }
}

/// Rate meters of a status reader (rates are differences between two reads).
#[derive(Debug, Clone, Default)]
pub struct StatusMeters {
    rates_in: [RateMeter; 2],
    rate_out: RateMeter,
}

fn status_loop(view: Probes, mut stats_file: Option<BufWriter<File>>, line: bool, done: &Shutdown) {
    let terminal = line && std::io::stderr().is_terminal();
    let mut meters = StatusMeters::default();
    // Prime the rate meters so the first line shows real rates.
    let _ = build_status(&view, Instant::now(), &mut meters);
    let mut next = Instant::now() + Duration::from_secs(1);
    let mut was_down = false;
    loop {
        let finished = done.sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_secs(1);
        let now = Instant::now();
        let status = build_status(&view, now, &mut meters);
        let down = status.sink == "down";
        if down && !was_down {
            warn!(
                "PostgreSQL at {} is unreachable: records are kept in memory and spilled to {}, \
                 and written as soon as it is back. Is it running? Check with \
                 `pg_isready -h <host> -p <port>`, or point --database-url / DATABASE_URL at it.",
                view.database,
                view.spool_dir.display()
            );
        } else if !down && was_down {
            info!("PostgreSQL at {} is back: writing", view.database);
        }
        was_down = down;
        if let Some(f) = stats_file.as_mut() {
            if let Err(e) = writeln!(f, "{}", status.json()).and_then(|_| f.flush()) {
                warn!("cannot write the stats file: {e}; no more stats will be written");
                stats_file = None;
            }
        }
        if line {
            if terminal {
                let width = terminal_size::terminal_size_of(std::io::stderr())
                    .map_or(160, |(w, _)| usize::from(w.0).saturating_sub(1).max(20));
                let erase = if STATUS_DRAWN.load(Ordering::SeqCst) {
                    ERASE_STATUS
                } else {
                    ""
                };
                eprint!(
                    "{erase}{}\n{}",
                    fit(&status.figures(), width),
                    fit(&status.tags(), width)
                );
                STATUS_DRAWN.store(true, Ordering::SeqCst);
            } else {
                eprintln!("{}", status.line());
            }
        }
        if finished {
            if terminal && STATUS_DRAWN.swap(false, Ordering::SeqCst) {
                eprintln!();
            }
            return;
        }
    }
}

fn build_status(view: &Probes, now: Instant, meters: &mut StatusMeters) -> Status {
    let mut status = Status {
        t: now.saturating_duration_since(view.started).as_secs_f64(),
        ..Status::default()
    };
    for (i, s) in view.sources.iter().enumerate().take(2) {
        let snap = s.snapshot();
        status.rate_in_streams[i] = meters.rates_in[i].rate(now, snap.tweets);
        status.kills += snap.kills;
    }
    status.rate_in = status.rate_in_streams.iter().sum();
    let core = view.core.snapshot();
    status.sentiment_workers = core.sentiment.workers;
    status.engagement_workers = core.engagement.workers;
    status.in_flight = core.sentiment.in_flight + core.engagement.in_flight;
    status.restarts = core.sentiment.restarts + core.engagement.restarts;
    let sink = view.sink.snapshot();
    status.batch_size = sink.batch_size as usize;
    status.write_ms = sink.last_write_ms;
    status.sink = sink.sink_state.to_string();
    status.buffered = sink.buffered;
    status.spilled = sink.spilled;
    status.written_tweets = sink.written_tweets;
    status.written_users = sink.written_users;
    status.rate_out = meters.rate_out.rate(now, sink.records_committed);
    status.top_hashtags = view
        .hashtags
        .lock()
        .top()
        .into_iter()
        .map(|(tag, count)| TagCount { tag, count })
        .collect();
    status
}

/// A connection string without its password, for messages.
///
/// Handles URLs (`postgres://user:secret@host/db`) and key=value strings
/// (`host=h password=secret`).
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let redacted = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            return format!("{}{}{}", &url[..scheme_end + 3], redacted, &rest[at..]);
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db.example:5432/app?sslmode=require"),
            "postgres://bob:***@db.example:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://localhost/db"),
            "postgresql://localhost/db"
        );
        assert_eq!(
            redact_url("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
    }

    #[test]
    fn flags_map_onto_the_stage_configs() {
        use clap::Parser;
        let cli = crate::app::cli::Cli::parse_from([
            "tweetflow",
            "--work-delay",
            "0",
            "--min-workers",
            "3",
            "--batch-max",
            "999",
            "--schema",
            "s1",
            "--duration",
            "2.5",
            "--emulator-rate",
            "max",
        ]);
        let crate::app::cli::Command::Run(args) = cli.into_command() else {
            panic!("tweetflow alone must mean run");
        };
        let cfg = config_from_args(&args).unwrap();
        assert_eq!(cfg.core.min_workers, 3);
        assert_eq!(cfg.sink.batch_max, 999);
        assert_eq!(cfg.sink.schema, "s1");
        assert_eq!(cfg.duration, Some(Duration::from_millis(2500)));
        assert_eq!(cfg.emulator.rate, crate::emulator::Rate::Max);
        assert_eq!(cfg.emulator.bind.port(), 0);
        assert_eq!(cfg.core.work_delay, crate::workers::WorkDelay::Off);

        for bad in [
            vec!["tweetflow", "--min-workers", "0"],
            vec!["tweetflow", "--batch-min", "10", "--batch-max", "5"],
            vec!["tweetflow", "--work-delay", "fast"],
            vec!["tweetflow", "--duration=-1"],
            vec!["tweetflow", "--utilisation", "1.5"],
        ] {
            let cli = crate::app::cli::Cli::parse_from(bad.clone());
            let crate::app::cli::Command::Run(args) = cli.into_command() else {
                panic!()
            };
            assert!(config_from_args(&args).is_err(), "{bad:?} accepted");
        }
    }
}
