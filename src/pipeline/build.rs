//! Building a pipeline: every channel created and every stage spawned, in
//! the start order of the module's documentation. Running it is `run.rs`.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use log::{error, info, warn};
use parking_lot::Mutex;

use super::config::{JetStreamRun, PipelineConfig};
use super::endpoint::{self, OpsView};
use super::error::PipelineError;
use super::jetstream::{self, JsProbe};
use super::probes::Probes;
use super::run::Pipeline;
use super::stages::{Stages, Ticker};
use super::tap::{self, TapStats};
use super::ticker::{self, ServerWait};
use crate::aggregate;
use crate::budget::Budget;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::engine;
use crate::model::{AggMsg, Ingest, Record, Seq};
use crate::ops::{OpsConfig, OpsServer};
use crate::score::Lexicon;
use crate::shutdown::Shutdown;
use crate::sink::{self, redact_url, Sink};
use crate::source::{self, FetchProgress, SourceConfig, SourceStats};
use crate::stats::history::Live;
use crate::stats::sketch::TopHashtags;
use crate::supervise;

/// The sink's share of the memory limit and its largest batch, in bytes.
fn sink_shares(limit: u64) -> (u64, u64) {
    (limit / 2, (limit / 16).clamp(1 << 20, 64 << 20))
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
    let (emulator, server) = start_server(&cfg)?;

    // The sink first: it replays a spool left by an earlier run and waits out a
    // database that is down, without holding up the rest.
    let budget = Budget::new(cfg.memory_limit);
    let (rec_tx, rec_rx) = bounded::<Record>(cfg.channel_capacity);
    // With --jetstream the sink tells which records committed, for the acks.
    let (committed_tx, committed_rx) = match cfg.jetstream {
        Some(_) => {
            let (tx, rx) = bounded(256);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let sink = start_sink(&cfg, &budget, rec_rx, committed_tx)?;

    // The operator's endpoint next, so the probes answer while the lexicon
    // fetch waits for the server (`/readyz` says `starting` meanwhile).
    let view = Arc::new(OpsView::new(
        sink.stats(),
        sink.control(),
        cfg.ops.control_token.clone(),
    ));
    let ops = match start_endpoint(&cfg.ops, &view) {
        Ok(ops) => ops,
        Err(e) => {
            drop(rec_tx);
            if let Err(s) = sink.join() {
                warn!("the sink failed while stopping: {s}");
            }
            return Err(e);
        }
    };

    let mut source_cfg = cfg.source.clone();
    source_cfg.server = server.clone();
    // Created now: the wait for the server already writes to it.
    let mut stats_file = cfg
        .stats_file
        .as_deref()
        .map(ticker::create_stats_file)
        .transpose()?;
    let mut attached = None;
    let lexicon = match &cfg.jetstream {
        Some(js) => jetstream::attach(js, &shutdown).map(|a| {
            let lexicon = Arc::new(a.lexicon.clone());
            attached = Some(a);
            lexicon
        }),
        None => fetch_lexicon(
            &cfg,
            &source_cfg,
            started,
            &sink,
            &mut stats_file,
            &shutdown,
        ),
    };
    let lexicon = match lexicon {
        Ok(lexicon) => lexicon,
        Err(err) => {
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

    let (ingest_tx, ingest_rx) = bounded::<Ingest>(cfg.channel_capacity);
    let (agg_tx, agg_rx) = bounded::<AggMsg>(cfg.channel_capacity);
    let (tap_tx, tap_rx) = bounded::<Record>(cfg.channel_capacity);
    let core = engine::spawn_core(cfg.core.clone(), lexicon, ingest_rx, agg_tx)
        .map_err(PipelineError::StartCore)?;
    let aggregator = aggregate::spawn_aggregator(cfg.aggregate.clone(), agg_rx, tap_tx)
        .map_err(PipelineError::StartAggregator)?;

    let probes = Probes {
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
        jetstream: attached.as_ref().map(|a| JsProbe {
            stats: a.client.stats(),
            tracker: Arc::new(source::Tracker::new(a.offset)),
            merged: Arc::new(Mutex::new((Vec::new(), 0))),
        }),
    };
    let jetstream_done = Shutdown::new();
    let (readers, jetstream) = match (&attached, &cfg.jetstream, committed_rx) {
        (Some(a), Some(js), Some(committed)) => {
            spawn_fetchers(a, js, &probes, ingest_tx, committed, &jetstream_done)?
        }
        _ => (
            spawn_readers(&source_cfg, &probes, &sink, ingest_tx)?,
            Vec::new(),
        ),
    };
    let stages = Stages {
        tap: spawn_tap(&cfg, &probes, tap_rx, rec_tx)?,
        readers,
        ticker: spawn_ticker(&probes, stats_file, cfg.status_line)?,
        core,
        aggregator,
        sink,
        jetstream,
        jetstream_done,
    };
    // The lexicon is loaded and the stages run: the endpoint sees them now.
    view.set_stages(probes.clone());

    let pipeline = Pipeline {
        probes,
        duration: cfg.duration,
        drain_timeout: cfg.drain_timeout,
        shutdown,
        _emulator: emulator,
        stages,
        view,
        ops,
    };
    pipeline.publish_liveness();
    Ok(pipeline)
}

/// The server: the one given (its URL), or the built-in emulator, started;
/// none with `--jetstream`.
fn start_server(cfg: &PipelineConfig) -> Result<(Option<Emulator>, String), PipelineError> {
    match cfg.jetstream {
        Some(_) => Ok((None, String::new())),
        None => server_or_emulator(cfg.server.as_deref(), &cfg.emulator),
    }
}

/// The server given (without a trailing `/`), or the built-in emulator started now.
pub(super) fn server_or_emulator(
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

/// The sink, with its share of the memory budget, reading `records`.
fn start_sink(
    cfg: &PipelineConfig,
    budget: &Arc<Budget>,
    records: Receiver<Record>,
    committed: Option<Sender<Vec<Seq>>>,
) -> Result<Sink, PipelineError> {
    info!(
        "writing to {} (schema {}), spilling to {} when it is down",
        redact_url(&cfg.sink.database_url),
        cfg.sink.schema,
        cfg.sink.spool_dir.display()
    );
    let mut sink_cfg = cfg.sink.clone();
    let (buffer_bytes, batch_bytes) = sink_shares(cfg.memory_limit);
    sink_cfg.buffer_bytes = sink_cfg.buffer_bytes.min(buffer_bytes);
    sink_cfg.batch_max_bytes = sink_cfg.batch_max_bytes.min(batch_bytes);
    sink_cfg.budget = Arc::clone(budget);
    sink_cfg.committed = committed;
    sink::spawn_sink(sink_cfg, records).map_err(PipelineError::StartSink)
}

/// The operator's endpoint, when an address is configured.
fn start_endpoint(
    cfg: &OpsConfig,
    view: &Arc<OpsView>,
) -> Result<Option<OpsServer>, PipelineError> {
    let Some(addr) = cfg.addr else {
        return Ok(None);
    };
    let server = if cfg.fallback_port {
        OpsServer::start_or_free_port(addr, endpoint::routes(), Arc::clone(view))
    } else {
        OpsServer::start(addr, endpoint::routes(), Arc::clone(view))
    }
    .map_err(PipelineError::Ops)?;
    if !server.addr().ip().is_loopback() {
        warn!(
            "the operator's endpoint listens on {}: metrics and the dashboard are \
             reachable from the network (the control routes still need the token)",
            server.addr()
        );
    }
    let url = server.url();
    info!("dashboard at {url} (metrics at {url}metrics, probes at {url}healthz and {url}readyz)");
    Ok(Some(server))
}

/// The lexicon, fetched from the server on a thread of its own, so that
/// Ctrl-C is seen at once even while a request hangs on a server that accepts
/// and never answers (on Ctrl-C it is left behind: it ends by itself at its
/// next timeout or attempt). Meanwhile the status says `waiting for server`.
fn fetch_lexicon(
    cfg: &PipelineConfig,
    source_cfg: &SourceConfig,
    started: Instant,
    sink: &Sink,
    stats_file: &mut Option<BufWriter<File>>,
    shutdown: &Shutdown,
) -> Result<Arc<Lexicon>, PipelineError> {
    let server = source_cfg.server.clone();
    let lexicon_url = format!("{server}/emotion_values");
    info!("fetching the lexicon from {lexicon_url}");
    let progress = Arc::new(FetchProgress::default());
    let (fetched_tx, fetched_rx) = bounded(1);
    {
        let (source_cfg, shutdown) = (source_cfg.clone(), shutdown.clone());
        let progress = Arc::clone(&progress);
        spawn_named("source-lexicon", move || {
            let answer =
                source::fetch_lexicon_reporting(&server, &source_cfg, &shutdown, &progress);
            let _ = fetched_tx.send(answer);
        })?;
    }
    let waited = ticker::wait_for_server(
        &fetched_rx,
        &progress,
        &lexicon_url,
        started,
        &sink.stats(),
        stats_file,
        cfg.status_line,
        shutdown,
    );
    match waited {
        ServerWait::Answered(Ok(lex)) => {
            info!("lexicon: {} entries", lex.len());
            Ok(Arc::new(lex))
        }
        ServerWait::Answered(Err(e)) if !shutdown.is_triggered() => Err(PipelineError::Lexicon(e)),
        ServerWait::Vanished => Err(PipelineError::LexiconFetchPanicked),
        _ => Err(PipelineError::Stopped),
    }
}

/// Both stream readers, sending to `ingest`; they start above the highest
/// `ingest_seq` stored and spooled (see `Sink::seq`).
fn spawn_readers(
    source_cfg: &SourceConfig,
    probes: &Probes,
    sink: &Sink,
    ingest: Sender<Ingest>,
) -> Result<Vec<JoinHandle<()>>, PipelineError> {
    let seq = sink.seq();
    let mut readers = Vec::new();
    for (stream, stats) in [1u8, 2].into_iter().zip(&probes.sources) {
        let handle = source::spawn_reader(
            stream,
            source_cfg.clone(),
            Arc::clone(&seq),
            ingest.clone(),
            Arc::clone(stats),
            Arc::clone(&probes.budget),
            probes.stopping.clone(),
        )
        .map_err(|source| PipelineError::StartReader { stream, source })?;
        readers.push(handle);
    }
    Ok(readers)
}

/// Thread handles.
type Threads = Vec<JoinHandle<()>>;

/// With `--jetstream`: the fetchers (in place of the readers), sending to `ingest`,
/// then the acker (acks what the sink reports `committed`) and the hashtag sharer,
/// which run until `done`.
fn spawn_fetchers(
    a: &jetstream::Attached,
    js: &JetStreamRun,
    probes: &Probes,
    ingest: Sender<Ingest>,
    committed: Receiver<Vec<Seq>>,
    done: &Shutdown,
) -> Result<(Threads, Threads), PipelineError> {
    let Some(probe) = &probes.jetstream else {
        return Ok((Vec::new(), Vec::new()));
    };
    let spawn = |thread: &'static str| move |source| PipelineError::Spawn { thread, source };
    let fetch = source::FetchConfig {
        stream: js.stream.clone(),
        offset: a.offset,
        batch: js.batch.max(1),
        expires: Duration::from_secs(1),
        max_held: js.max_ack_pending.max(1),
    };
    let mut fetchers = Vec::new();
    for i in 0..js.fetchers.max(1) {
        fetchers.push(
            source::spawn_fetcher(
                i,
                fetch.clone(),
                a.client.clone(),
                Arc::clone(&probe.tracker),
                ingest.clone(),
                [
                    Arc::clone(&probes.sources[0]),
                    Arc::clone(&probes.sources[1]),
                ],
                Arc::clone(&probes.budget),
                probes.stopping.clone(),
            )
            .map_err(spawn("fetch"))?,
        );
    }
    let acker = source::spawn_acker(
        a.client.clone(),
        Arc::clone(&probe.tracker),
        committed,
        js.ack_wait / 3,
        done.clone(),
    )
    .map_err(spawn("acker"))?;
    let sharer = jetstream::spawn_sharer(
        a.client.clone(),
        js,
        Arc::clone(&probes.hashtags),
        Arc::clone(&probe.merged),
        done.clone(),
    )
    .map_err(spawn("hashtags-share"))?;
    Ok((fetchers, vec![acker, sharer]))
}

/// The status ticker; it runs until every stage has drained.
fn spawn_ticker(
    probes: &Probes,
    stats_file: Option<BufWriter<File>>,
    line: bool,
) -> Result<Ticker, PipelineError> {
    let done = Shutdown::new();
    let thread = {
        let done = done.clone();
        let probes = probes.clone();
        spawn_named("status", move || {
            ticker::status_loop(probes, stats_file, line, &done)
        })?
    };
    Ok(Ticker { thread, done })
}

/// The tap between the aggregator and the sink, restarted under the stage
/// policy; when it fails for good it passes records on uncounted.
fn spawn_tap(
    cfg: &PipelineConfig,
    probes: &Probes,
    tap_rx: Receiver<Record>,
    rec_tx: Sender<Record>,
) -> Result<JoinHandle<()>, PipelineError> {
    let hashtags = Arc::clone(&probes.hashtags);
    let tap_stats = Arc::clone(&probes.tap);
    let policy = cfg.core.restart.stage();
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
                fault.as_deref(),
            )
        });
        if let Err(e) = kept {
            error!("the tap failed for good ({e}); passing records on to the sink uncounted");
            tap_stats.fail(e.to_string());
            tap::pass_through(held.map(|(r, _)| r), &tap_rx, &rec_tx, &tap_stats);
        }
    })
}
