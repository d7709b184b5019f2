//! Wires every stage with bounded crossbeam channels and runs it to a graceful end.
//!
//! ```text
//!  reader /tweets/1 ─┐                     ┌─▶ sentiment pool ──┐
//!                    ├─ingest─▶ dispatcher ─┤                     ├─agg─▶ aggregator ─records─▶ tap ─sink─▶ sink
//!  reader /tweets/2 ─┘      (least-conn)   └─▶ engagement pool ─┘          (join by seq)   (hashtags)  (buffer, spool,
//!                                 └──────────────── AggMsg::Tweet ──────────▲                              writer, health)
//! ```
//!
//! This is the one place where threads and channels are wired: [`start`]
//! creates every channel and spawns every stage, [`Pipeline::wait`] joins
//! them. The stages themselves only loop over their input.
//!
//! Start order: the server (the built-in emulator when none is given), the
//! sink (it replays a spool left by an earlier run and waits out a database
//! that is down without holding up the rest), the lexicon fetch (it waits for
//! the server; a shutdown meanwhile ends the start with
//! [`PipelineError::Stopped`], which [`run`] treats as an empty run), the
//! worker pools, the aggregator, the tap (`tap.rs`), the readers and the status
//! ticker (`status.rs`).
//!
//! Shutdown runs front to back: the [`Shutdown`] flag stops the readers; their
//! senders drop, so the dispatcher's input disconnects; it drops the worker
//! inboxes; the workers drain and drop their aggregator senders; the aggregator
//! flushes and drops its output; the tap and then the sink drain and commit.
//! Every thread ends because its input disconnected. The status ticker stops
//! last, so its final line shows the drained state.

mod error;
mod ingest;
mod jetstream;
mod metrics;
mod ops;
mod status;
mod summary;
mod tap;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use log::{error, info, warn};
use parking_lot::Mutex;

use crate::aggregate::{self, AggConfig, AggStats, Aggregator};
use crate::budget::Budget;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::engine::{self, Core, CoreConfig, CoreStats};
use crate::model::{AggMsg, Ingest, Record};
use crate::ops::{OpsConfig, OpsServer};
use crate::shutdown::Shutdown;
use crate::sink::{self, Sink, SinkConfig, SinkStats};
use crate::source::{self, FetchProgress, SourceConfig, SourceStats};
use crate::stats::history::Live;
use crate::stats::sketch::TopHashtags;
use crate::stats::status::Status;
use crate::stats::CpuTimes;
use crate::supervise;

pub(crate) use crate::sink::redact_url;
pub use error::PipelineError;
pub use ingest::{run_ingest, stream_specs, IngestConfig, IngestSummary};
pub use jetstream::{default_instance, JetStreamRun, JsProbe, MergedTop};
use ops::OpsView;
pub(crate) use status::erase_status_lines;
use status::ServerWait;
pub use status::StatusMeters;
pub use summary::Summary;
use tap::TapStats;

/// Default of [`PipelineConfig::memory_limit`]: 1 GiB.
pub(crate) const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// The sink's share of the memory limit and its largest batch, in bytes.
fn sink_shares(limit: u64) -> (u64, u64) {
    (limit / 2, (limit / 16).clamp(1 << 20, 64 << 20))
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `None`: start the built-in emulator with `emulator` and read from it.
    pub server: Option<String>,
    /// The built-in emulator, used when `server` is `None`.
    pub emulator: EmulatorConfig,
    /// The stream readers and the lexicon fetch (`server` is set by [`start`]).
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
    /// Read the JetStream stream that `tweetflow ingest` fills instead of a tweet
    /// server (`--jetstream`); `server` and `emulator` are then unused.
    pub jetstream: Option<JetStreamRun>,
    /// Test hook of the tap (between the aggregator and the sink), see
    /// `testkit::StageFault`; the tap restarts under `core.restart`.
    #[cfg(any(test, feature = "testkit"))]
    pub tap_fault: Option<crate::aggregate::StageFault>,
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
            jetstream: None,
            #[cfg(any(test, feature = "testkit"))]
            tap_fault: None,
        }
    }
}

/// Live statistics of every stage of a running pipeline.
#[derive(Debug, Clone)]
pub struct Probes {
    /// When [`start`] was called.
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
    /// With `--jetstream`: the consumer, the messages held, the merged hashtags.
    pub jetstream: Option<JsProbe>,
    tap: Arc<TapStats>,
    /// The pipeline's stop flag: the status says `stopped` once it is set.
    stopping: Shutdown,
    /// Every thread group's CPU time when [`start`] was called.
    cpu_at_start: CpuTimes,
    /// The latest status and the last ten minutes of it, kept by the status thread.
    pub(crate) live: Arc<Mutex<Live>>,
    /// For the message shown when the database is unreachable.
    database: String,
    spool_dir: PathBuf,
}

/// A running pipeline; [`Pipeline::wait`] runs it to its end.
#[derive(Debug)]
pub struct Pipeline {
    probes: Probes,
    duration: Option<Duration>,
    drain_timeout: Duration,
    shutdown: Shutdown,
    _emulator: Option<Emulator>,
    readers: Vec<JoinHandle<()>>,
    core: Core,
    aggregator: Aggregator,
    tap: JoinHandle<()>,
    sink: Sink,
    ticker: JoinHandle<()>,
    ticker_done: Shutdown,
    view: Arc<OpsView>,
    ops: Option<OpsServer>,
    /// With `--jetstream`: the acker and the hashtag sharer, stopped after the sink.
    js_threads: Vec<JoinHandle<()>>,
    js_done: Shutdown,
}

/// Why [`Pipeline::wait`] stopped the pipeline by itself.
enum Failure {
    /// Supervision reported a fatal failure of the worker pools.
    Pools(crate::engine::Fatal),
    /// Both stream readers ended on their own.
    ReadersStopped,
    /// Another stage ended for good.
    Stage { stage: &'static str, cause: String },
}

/// Runs the pipeline until `shutdown` is triggered (or `duration` passes, or a
/// stage fails for good), then drains every stage and returns the summary.
///
/// A shutdown before the server answered is an empty run: the default summary.
pub fn run(cfg: PipelineConfig, shutdown: Shutdown) -> Result<Summary, PipelineError> {
    match start(cfg, shutdown) {
        Ok(pipeline) => pipeline.wait(),
        Err(PipelineError::Stopped) => Ok(Summary::default()),
        Err(e) => Err(e),
    }
}

/// Taken off the drain timeout for what follows the drain: noticing the signal
/// (the wait loop polls every 100 ms), the last status line, the summary, exit.
const EXIT_MARGIN: Duration = Duration::from_millis(300);

/// The engine gets the first part of the drain for its normal drain (the lab's
/// delay per message); at most this long before the deadline it hurries.
const HURRY_BEFORE: Duration = Duration::from_secs(2);

/// Waits, until `deadline`, for the readers, the core, the aggregator and the tap
/// to end, stepping the sink's drain meanwhile ([`Sink::drain_step`]); at
/// `hurry_at` the core hurries ([`Core::hurry`]). Returns the names of
/// the stages still running at the deadline (left behind: the process exits).
fn drain(
    readers: Vec<JoinHandle<()>>,
    core: &Core,
    aggregator: &Aggregator,
    tap: &JoinHandle<()>,
    sink: &Sink,
    hurry_at: Instant,
    deadline: Instant,
) -> Vec<&'static str> {
    let mut hurried = false;
    let upstream_done = || {
        readers.iter().all(|r| r.is_finished())
            && core.is_finished()
            && aggregator.is_finished()
            && tap.is_finished()
    };
    loop {
        if upstream_done() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if !hurried && now >= hurry_at && !core.is_finished() {
            info!("drain: the engine scores what it still holds without the work delay");
            core.hurry();
            hurried = true;
        }
        sink.drain_step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut left = Vec::new();
    for r in readers {
        if !r.is_finished() {
            left.push("a stream reader");
        } else if r.join().is_err() {
            warn!("a stream reader panicked");
        }
    }
    if !core.is_finished() {
        left.push("the engine");
    }
    if !aggregator.is_finished() {
        left.push("the aggregator");
    }
    if !tap.is_finished() {
        left.push("the tap");
    }
    left
}

/// The server given (without a trailing `/`), or the built-in emulator started now.
fn server_or_emulator(
    server: Option<&str>,
    emulator: &EmulatorConfig,
) -> Result<(Option<Emulator>, String), PipelineError> {
    Ok(match server {
        Some(url) => (None, url.trim_end_matches('/').to_string()),
        None => {
            let emu = Emulator::start(emulator.clone()).map_err(PipelineError::Emulator)?;
            let url = emu.url();
            info!("no --server given: reading the built-in emulator at {url}");
            (Some(emu), url)
        }
    })
}

fn spawn_named<F: FnOnce() + Send + 'static>(
    thread: &'static str,
    f: F,
) -> Result<JoinHandle<()>, PipelineError> {
    crate::stats::spawn_thread(thread, None, f)
        .map_err(|source| PipelineError::Spawn { thread, source })
}

/// Starts every stage: the emulator (without a server), the sink, the lexicon
/// fetch (waits for the server), the core, the aggregator, the tap, the readers
/// and the status ticker.
///
/// Returns [`PipelineError::Stopped`] when `shutdown` is triggered before the
/// server answered; the sink has drained by then.
pub fn start(cfg: PipelineConfig, shutdown: Shutdown) -> Result<Pipeline, PipelineError> {
    let started = Instant::now();
    let cpu_at_start = crate::stats::cpu_times();

    // The server: the one given, or the built-in emulator; none with --jetstream.
    let (emulator, server) = match cfg.jetstream {
        Some(_) => (None, String::new()),
        None => server_or_emulator(cfg.server.as_deref(), &cfg.emulator)?,
    };

    // The sink first: it replays a spool left by an earlier run and waits out a
    // database that is down, without holding up the rest.
    info!(
        "writing to {} (schema {}), spilling to {} when it is down",
        redact_url(&cfg.sink.database_url),
        cfg.sink.schema,
        cfg.sink.spool_dir.display()
    );
    let budget = Budget::new(cfg.memory_limit);
    let mut sink_cfg = cfg.sink.clone();
    let (buffer_bytes, batch_bytes) = sink_shares(cfg.memory_limit);
    sink_cfg.buffer_bytes = sink_cfg.buffer_bytes.min(buffer_bytes);
    sink_cfg.batch_max_bytes = sink_cfg.batch_max_bytes.min(batch_bytes);
    sink_cfg.budget = Arc::clone(&budget);
    // With --jetstream the sink tells which records committed, for the acks.
    let committed = cfg.jetstream.as_ref().map(|_| {
        let (tx, rx) = bounded(256);
        sink_cfg.committed = Some(tx);
        rx
    });
    let (rec_tx, rec_rx) = bounded::<Record>(cfg.channel_capacity);
    let sink = sink::spawn_sink(sink_cfg, rec_rx).map_err(PipelineError::StartSink)?;

    // The operator's endpoint next, so the probes answer while the lexicon
    // fetch waits for the server (`/readyz` says `starting` meanwhile).
    let view = Arc::new(OpsView::new(
        sink.stats(),
        sink.control(),
        cfg.ops.control_token.clone(),
    ));
    let ops = match cfg.ops.addr {
        None => None,
        Some(addr) => match OpsServer::start(addr, ops::routes(), Arc::clone(&view)) {
            Ok(server) => {
                if !server.addr().ip().is_loopback() {
                    warn!(
                        "the operator's endpoint listens on {}: metrics and the dashboard are \
                         reachable from the network (the control routes still need the token)",
                        server.addr()
                    );
                }
                let url = server.url();
                info!(
                    "dashboard at {url} (metrics at {url}metrics, probes at {url}healthz and \
                     {url}readyz)"
                );
                Some(server)
            }
            Err(e) => {
                drop(rec_tx);
                if let Err(s) = sink.join() {
                    warn!("the sink failed while stopping: {s}");
                }
                return Err(PipelineError::Ops(e));
            }
        },
    };

    let mut source_cfg = cfg.source.clone();
    source_cfg.server = server.clone();
    // Created now: the wait for the server already writes to it.
    let mut stats_file = cfg
        .stats_file
        .as_deref()
        .map(status::create_stats_file)
        .transpose()?;
    let mut attached = None;
    let lexicon = if let Some(js) = &cfg.jetstream {
        match jetstream::attach(js, &shutdown) {
            Ok(a) => {
                let lex = Arc::new(a.lexicon.clone());
                attached = Some(a);
                lex
            }
            Err(err) => {
                drop(rec_tx);
                let joined = sink.join_by(Instant::now() + cfg.drain_timeout, true);
                if matches!(err, PipelineError::Stopped) {
                    info!("stopped before NATS answered");
                    joined.map_err(PipelineError::Sink)?;
                }
                return Err(err);
            }
        }
    } else {
        let lexicon_url = format!("{server}/emotion_values");
        info!("fetching the lexicon from {lexicon_url}");
        // On a thread of its own, so that Ctrl-C is seen at once even while a
        // request hangs on a server that accepts and never answers. On Ctrl-C it
        // is left behind: it ends by itself at its next timeout or attempt.
        let progress = Arc::new(FetchProgress::default());
        let (fetched_tx, fetched_rx) = bounded(1);
        {
            let (server, source_cfg, shutdown) =
                (server.clone(), source_cfg.clone(), shutdown.clone());
            let progress = Arc::clone(&progress);
            spawn_named("source-lexicon", move || {
                let answer =
                    source::fetch_lexicon_reporting(&server, &source_cfg, &shutdown, &progress);
                let _ = fetched_tx.send(answer);
            })?;
        }
        let waited = status::wait_for_server(
            &fetched_rx,
            &progress,
            &lexicon_url,
            started,
            &sink.stats(),
            &mut stats_file,
            cfg.status_line,
            &shutdown,
        );
        let lexicon = match waited {
            ServerWait::Answered(Ok(lex)) => Arc::new(lex),
            other => {
                let err = match other {
                    ServerWait::Answered(Err(e)) if !shutdown.is_triggered() => {
                        PipelineError::Lexicon(e)
                    }
                    ServerWait::Vanished => PipelineError::LexiconFetchPanicked,
                    _ => PipelineError::Stopped,
                };
                drop(rec_tx);
                // A spool being replayed must not hold a Ctrl-C either.
                let joined = sink.join_by(Instant::now() + cfg.drain_timeout, true);
                if matches!(err, PipelineError::Stopped) {
                    info!("stopped before the server answered");
                    joined.map_err(PipelineError::Sink)?;
                }
                return Err(err);
            }
        };
        lexicon
    };
    info!("lexicon: {} entries", lexicon.len());

    let (ingest_tx, ingest_rx) = bounded::<Ingest>(cfg.channel_capacity);
    let (agg_tx, agg_rx) = bounded::<AggMsg>(cfg.channel_capacity);
    let (tap_tx, tap_rx) = bounded::<Record>(cfg.channel_capacity);

    let core = engine::spawn_core(cfg.core.clone(), lexicon, ingest_rx, agg_tx)
        .map_err(PipelineError::StartCore)?;
    let aggregator = aggregate::spawn_aggregator(cfg.aggregate.clone(), agg_rx, tap_tx)
        .map_err(PipelineError::StartAggregator)?;

    let js_probe = match (&attached, &cfg.jetstream) {
        (Some(a), Some(_)) => Some(JsProbe {
            stats: a.client.stats(),
            tracker: Arc::new(source::Tracker::new(a.offset)),
            merged: Arc::new(Mutex::new((Vec::new(), 0))),
        }),
        _ => None,
    };
    let probes = Probes {
        jetstream: js_probe.clone(),
        started,
        cpu_at_start,
        sources: vec![Arc::new(SourceStats::new()), Arc::new(SourceStats::new())],
        core: core.stats(),
        aggregate: aggregator.stats(),
        sink: sink.stats(),
        hashtags: Arc::new(Mutex::new(TopHashtags::default())),
        budget: Arc::clone(&budget),
        stopping: shutdown.clone(),
        tap: Arc::new(TapStats::default()),
        live: Arc::new(Mutex::new(Live::default())),
        database: redact_url(&cfg.sink.database_url),
        spool_dir: cfg.sink.spool_dir.clone(),
    };
    // The lexicon is loaded and the stages run: the endpoint sees them now.
    let _ = view.stages.set(probes.clone());

    let tap = {
        let hashtags = Arc::clone(&probes.hashtags);
        let tap_stats = Arc::clone(&probes.tap);
        let policy = cfg.core.restart.stage();
        #[cfg(any(test, feature = "testkit"))]
        let fault = cfg.tap_fault.clone();
        spawn_named("tap", move || {
            // The record in hand, outside the unwind (see `tap`).
            let mut held = None;
            let kept = supervise::keep_alive("tap", &policy, || {
                tap::tap_loop(
                    &tap_rx,
                    &rec_tx,
                    &hashtags,
                    &tap_stats,
                    &mut held,
                    #[cfg(any(test, feature = "testkit"))]
                    fault.as_ref(),
                )
            });
            if let Err(e) = kept {
                error!("the tap failed for good ({e}); passing records on to the sink uncounted");
                *tap_stats.failure.lock() = Some(e.to_string());
                tap::pass_through(held.map(|(r, _)| r), &tap_rx, &rec_tx, &tap_stats);
            }
        })?
    };

    let js_done = Shutdown::new();
    let mut js_threads = Vec::new();
    let mut readers = Vec::new();
    if let (Some(a), Some(js), Some(probe), Some(committed)) =
        (&attached, &cfg.jetstream, &js_probe, committed)
    {
        // Fetchers replace the readers; the acker acks what the sink committed.
        let fetch = source::FetchConfig {
            stream: js.stream.clone(),
            offset: a.offset,
            batch: js.batch.max(1),
            expires: Duration::from_secs(1),
            max_held: js.max_ack_pending.max(1),
        };
        for i in 0..js.fetchers.max(1) {
            let handle = source::spawn_fetcher(
                i,
                fetch.clone(),
                a.client.clone(),
                Arc::clone(&probe.tracker),
                ingest_tx.clone(),
                [
                    Arc::clone(&probes.sources[0]),
                    Arc::clone(&probes.sources[1]),
                ],
                Arc::clone(&budget),
                shutdown.clone(),
            )
            .map_err(|source| PipelineError::Spawn {
                thread: "fetch",
                source,
            })?;
            readers.push(handle);
        }
        js_threads.push(
            source::spawn_acker(
                a.client.clone(),
                Arc::clone(&probe.tracker),
                committed,
                js.ack_wait / 3,
                js_done.clone(),
            )
            .map_err(|source| PipelineError::Spawn {
                thread: "acker",
                source,
            })?,
        );
        js_threads.push(
            jetstream::spawn_sharer(
                a.client.clone(),
                js,
                Arc::clone(&probes.hashtags),
                Arc::clone(&probe.merged),
                js_done.clone(),
            )
            .map_err(|source| PipelineError::Spawn {
                thread: "hashtags-share",
                source,
            })?,
        );
    } else {
        // Starts above the highest ingest_seq stored and spooled (see `Sink::seq`).
        let seq = sink.seq();
        for (stream, stats) in [1u8, 2].into_iter().zip(&probes.sources) {
            let handle = source::spawn_reader(
                stream,
                source_cfg.clone(),
                Arc::clone(&seq),
                ingest_tx.clone(),
                Arc::clone(stats),
                Arc::clone(&budget),
                shutdown.clone(),
            )
            .map_err(|source| PipelineError::StartReader { stream, source })?;
            readers.push(handle);
        }
    }
    drop(ingest_tx);

    // The status ticker runs until every stage has drained.
    let ticker_done = Shutdown::new();
    let ticker = {
        let done = ticker_done.clone();
        let probes = probes.clone();
        let line = cfg.status_line;
        spawn_named("status", move || {
            status::status_loop(probes, stats_file, line, &done)
        })?
    };

    let pipeline = Pipeline {
        probes,
        duration: cfg.duration,
        drain_timeout: cfg.drain_timeout,
        shutdown,
        _emulator: emulator,
        readers,
        core,
        aggregator,
        tap,
        sink,
        ticker,
        ticker_done,
        view,
        ops,
        js_threads,
        js_done,
    };
    pipeline.publish_liveness();
    Ok(pipeline)
}

impl Pipeline {
    /// Live statistics of every stage.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Where the operator's endpoint listens (the real port), when it is on.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(OpsServer::addr)
    }

    /// Tells the endpoint which stage threads still run.
    fn publish_liveness(&self) {
        self.view.publish_liveness(liveness(
            &self.readers,
            &self.core,
            &self.aggregator,
            &self.tap,
            &self.sink,
            &self.ticker,
        ));
    }

    /// The status as the status line shows it now (rates over the time since
    /// the previous call with the same meters).
    pub fn status(&self, meters: &mut StatusMeters) -> Status {
        status::build_status(&self.probes, Instant::now(), meters)
    }

    /// Watches the stages every 100 ms (publishing their liveness to the
    /// endpoint) until it is time to stop; returns why, if not by request.
    fn watch(&self) -> Option<Failure> {
        let mut reader_gone: Option<Instant> = None;
        loop {
            self.publish_liveness();
            if self.shutdown.sleep(Duration::from_millis(100)) {
                info!("stopping: draining every stage");
                return None;
            }
            if self
                .duration
                .is_some_and(|d| self.probes.started.elapsed() >= d)
            {
                info!("--duration reached: draining every stage");
                self.shutdown.trigger();
                return None;
            }
            if let Some(why) = self.core.fatal() {
                error!("the worker pools failed: {why}");
                self.shutdown.trigger();
                return Some(Failure::Pools(why));
            }
            if self.readers.iter().all(|r| r.is_finished()) {
                // Readers only end on their own when the dispatcher is gone.
                error!("both stream readers have stopped: draining every stage");
                self.shutdown.trigger();
                return Some(Failure::ReadersStopped);
            }
            if let Some((stage, cause)) = stage_failure(
                &self.probes,
                &self.readers,
                &self.aggregator,
                &self.sink,
                &self.ticker,
                &mut reader_gone,
            ) {
                error!(
                    "the {stage} stopped for good: {cause}; draining every stage (what the sink \
                     cannot write is spooled)"
                );
                self.shutdown.trigger();
                return Some(Failure::Stage { stage, cause });
            }
        }
    }

    /// Runs until the shutdown flag, the configured duration or a fatal
    /// failure of the worker pools; then drains every stage front to back.
    pub fn wait(self) -> Result<Summary, PipelineError> {
        let failure = self.watch();
        self.view.set_stopping();
        let Pipeline {
            probes,
            drain_timeout,
            readers,
            core,
            aggregator,
            tap,
            sink,
            ticker,
            ticker_done,
            ops,
            js_threads,
            js_done,
            ..
        } = self;

        // Drain front to back: each stage ends when its input disconnects, all by
        // the deadline (see `drain`).
        let deadline = Instant::now() + drain_timeout.saturating_sub(EXIT_MARGIN);
        sink.drain_by(deadline);
        let hurry_at = deadline - (drain_timeout / 2).min(HURRY_BEFORE);
        let left_behind = drain(readers, &core, &aggregator, &tap, &sink, hurry_at, deadline);
        let core_result = if core.is_finished() {
            core.join()
        } else {
            Ok(())
        };
        if aggregator.is_finished() {
            aggregator.join();
        }
        let tap_done = tap.is_finished();
        if tap_done && tap.join().is_err() {
            warn!("the tap thread panicked");
        }
        let sink_summary = sink.join_by(deadline, tap_done);
        // The acker acks what the sink committed to its end, then stops.
        js_done.trigger();
        for t in js_threads {
            let _ = t.join();
        }
        if !left_behind.is_empty() {
            let c = probes.core.snapshot();
            warn!(
                "drain deadline: {} had not ended; {} jobs were still in the engine",
                left_behind.join(", "),
                c.sentiment.in_flight + c.engagement.in_flight
            );
        }
        ticker_done.trigger();
        let _ = ticker.join();
        // The endpoint last, so it shows the drain to its end.
        drop(ops);

        let mut summary = Summary::collect(&probes);
        summary.spooled_at_exit = sink_summary.map_err(PipelineError::Sink)?.left_in_spool;
        core_result.map_err(PipelineError::Core)?;
        match failure {
            None => Ok(summary),
            Some(Failure::Pools(reason)) => Err(PipelineError::PoolsFailed { reason }),
            Some(Failure::ReadersStopped) => Err(PipelineError::ReadersStopped),
            Some(Failure::Stage { stage, cause }) => {
                Err(PipelineError::StageFailed { stage, cause })
            }
        }
    }
}

/// The first stage found ended for good while the pipeline runs (the worker pools
/// and both readers are watched apart): `(stage, cause)`. A reader that ends alone
/// gets a second for the other to follow (then the dispatcher is gone, which
/// [`Failure::ReadersStopped`] reports).
fn stage_failure(
    probes: &Probes,
    readers: &[JoinHandle<()>],
    aggregator: &Aggregator,
    sink: &Sink,
    ticker: &JoinHandle<()>,
    reader_gone: &mut Option<Instant>,
) -> Option<(&'static str, String)> {
    if let Some(f) = sink.failure() {
        return Some(("sink", f.to_string()));
    }
    if let Some(why) = aggregator.failure() {
        return Some(("aggregator", why));
    }
    if let Some(why) = probes.tap.failure.lock().clone() {
        return Some(("tap", why));
    }
    if ticker.is_finished() {
        return Some(("status ticker", "its thread ended".to_string()));
    }
    if let Some(i) = readers.iter().position(|r| r.is_finished()) {
        let since = *reader_gone.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_secs(1) {
            let stage = if i == 0 {
                "reader of /tweets/1"
            } else {
                "reader of /tweets/2"
            };
            return Some((
                stage,
                "its thread ended (see the log for its panic)".to_string(),
            ));
        }
    }
    None
}

/// Each stage thread by name, and whether it still runs.
fn liveness(
    readers: &[JoinHandle<()>],
    core: &Core,
    aggregator: &Aggregator,
    tap: &JoinHandle<()>,
    sink: &Sink,
    ticker: &JoinHandle<()>,
) -> Vec<(&'static str, bool)> {
    let mut stages: Vec<(&'static str, bool)> = ["reader /tweets/1", "reader /tweets/2"]
        .into_iter()
        .zip(readers)
        .map(|(name, r)| (name, !r.is_finished()))
        .collect();
    stages.extend([
        ("worker pools", core.is_running()),
        ("aggregator", aggregator.is_running()),
        ("tap", !tap.is_finished()),
        ("sink writer", sink.writer_running()),
        ("status ticker", !ticker.is_finished()),
    ]);
    stages
}
