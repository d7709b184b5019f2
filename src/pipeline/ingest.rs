//! `tweetflow ingest`: the two SSE readers publish every event into a JetStream
//! stream, for any number of `tweetflow run --jetstream` instances to share.
//!
//! ```text
//!  reader /tweets/1 ─┐                         ┌─▶ <stream>.1 ─┐
//!                    ├─ publish window ─▶ NATS ┤               ├─ stream <stream> (file storage)
//!  reader /tweets/2 ─┘  (Nats-Msg-Id)          └─▶ <stream>.2 ─┘
//!  lexicon, seq offset ────────────────────────────▶ stream <stream>_meta (last per subject)
//! ```
//!
//! Start: the server (the built-in emulator without `--server`), NATS (waited for; the
//! version and JetStream checked), the stream (created when missing; an existing one
//! with another configuration stops the start, exit code 2), the meta stream and its
//! sequence offset (set once, when missing), the lexicon (fetched from the server and
//! published), then the readers. The status line shows what is published and whether
//! NATS is reachable. Ctrl-C stops the readers and waits, up to `--drain-timeout`, for
//! the publishes in the window to be acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::error::PipelineError;
use crate::emulator::EmulatorConfig;
use crate::jetstream::{names, Client, JsError, JsSnapshot, StreamSpec};
use crate::log_limit::LogLimiter;
use crate::model::unix_micros;
use crate::shutdown::Shutdown;
use crate::source::{self, FetchProgress, SourceConfig, SourceSnapshot, SourceStats};

/// Everything `tweetflow ingest` needs.
#[derive(Debug, Clone)]
pub(crate) struct IngestConfig {
    /// `None`: start the built-in emulator with `emulator` and read from it.
    pub server: Option<String>,
    /// The built-in emulator, used when `server` is `None`.
    pub emulator: EmulatorConfig,
    /// The stream readers and the lexicon fetch (`server` is set at start).
    pub source: SourceConfig,
    /// The NATS server, `nats://HOST:PORT` (several comma-separated for a cluster).
    pub nats_url: String,
    /// The stream's name.
    pub stream: String,
    /// Replicas of the stream (1 to 5; more than 1 needs a JetStream cluster).
    pub replicas: usize,
    /// Within this window a message whose `Nats-Msg-Id` was seen is dropped.
    pub duplicate_window: Duration,
    /// Publishes awaiting their ack at most.
    pub publish_window: usize,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// After a stop, how long to wait for the window's acks.
    pub drain_timeout: Duration,
    /// Print the status line on stderr once a second.
    pub status_line: bool,
    /// The endpoint (`/metrics`, `/readyz`, `/healthz`); `None`: none.
    pub ops_addr: Option<std::net::SocketAddr>,
    /// When `ops_addr`'s port is taken, listen on a free one (a default address).
    pub ops_fallback_port: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            server: None,
            emulator: EmulatorConfig::default(),
            source: SourceConfig::default(),
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            stream: names::DEFAULT_STREAM.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            publish_window: 1024,
            duration: None,
            drain_timeout: Duration::from_secs(5),
            status_line: false,
            ops_addr: None,
            ops_fallback_port: false,
        }
    }
}

/// What `tweetflow ingest` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct IngestSummary {
    /// Both readers' counters (`tweets`: events published other than kills).
    pub source: SourceSnapshot,
    /// Events read from `/tweets/1` and `/tweets/2`.
    pub events_streams: [u64; 2],
    /// The client's counters.
    pub nats: JsSnapshot,
    /// Publishes still unacknowledged at exit (sent again by the next start, as the
    /// readers resume).
    pub unacked_at_exit: u64,
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ingest summary: events {} ({} + {} per stream), kills {}, published {} (duplicates \
             dropped {}), publish retries {}, unacked at exit {}, reconnects {}",
            self.source.events,
            self.events_streams[0],
            self.events_streams[1],
            self.source.kills,
            self.nats.published,
            self.nats.duplicates,
            self.nats.publish_retries,
            self.unacked_at_exit,
            self.source.reconnects,
        )
    }
}

/// The data stream and the meta stream of `cfg`.
pub fn stream_specs(stream: &str, replicas: usize, duplicate_window: Duration) -> [StreamSpec; 2] {
    [
        StreamSpec {
            name: stream.to_owned(),
            subjects: vec![
                names::data_subject(stream, 1),
                names::data_subject(stream, 2),
            ],
            replicas,
            max_msgs_per_subject: -1,
            duplicate_window,
            max_age: Duration::ZERO,
            max_bytes: -1,
        },
        StreamSpec {
            name: names::meta_stream(stream),
            subjects: vec![format!("{}.>", names::meta_stream(stream))],
            replicas,
            max_msgs_per_subject: 1,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::ZERO,
            max_bytes: -1,
        },
    ]
}

fn js(what: &'static str) -> impl Fn(JsError) -> PipelineError {
    move |source| match source {
        JsError::Stopped => PipelineError::Stopped,
        source => PipelineError::JetStream { what, source },
    }
}

/// Connects and sets up the streams; returns the client and the sequence offset.
fn setup(cfg: &IngestConfig, shutdown: &Shutdown) -> Result<(Client, u64), PipelineError> {
    if !names::valid_name(&cfg.stream) {
        return Err(PipelineError::JetStream {
            what: "the stream's name",
            source: JsError::Url {
                url: cfg.stream.clone(),
                cause: "a stream name is 1 to 200 of A-Z a-z 0-9 - _".into(),
            },
        });
    }
    info!("connecting to NATS at {}", cfg.nats_url);
    let client = Client::connect(
        &cfg.nats_url,
        "tweetflow-ingest",
        cfg.publish_window,
        shutdown,
    )
    .map_err(js("connecting"))?;
    let [data, meta] = stream_specs(&cfg.stream, cfg.replicas, cfg.duplicate_window);
    let made = client.ensure_stream(&data).map_err(js("the stream"))?;
    if made.created {
        info!(
            "created the stream {} (subjects {:?}, file storage, {} replica(s), duplicate \
             window {:?})",
            data.name, data.subjects, data.replicas, data.duplicate_window
        );
    } else {
        info!(
            "the stream {} exists (last sequence {}); publishing to it",
            data.name, made.last_seq
        );
    }
    client.ensure_stream(&meta).map_err(js("the meta stream"))?;
    let subject = names::meta_subject(&cfg.stream, "offset");
    let offset = match client
        .get_last(&meta.name, &subject)
        .map_err(js("reading the sequence offset"))?
        .as_deref()
        .and_then(names::decode_offset)
    {
        Some(o) => o,
        None => {
            let o = unix_micros();
            client
                .put_last(&subject, names::encode_offset(o))
                .map_err(js("storing the sequence offset"))?;
            info!("the stream's sequence offset is {o} (ingest_seq = offset + 2 x stream seq)");
            o
        }
    };
    Ok((client, offset))
}

/// Runs `tweetflow ingest` until `shutdown` (or `duration`), then waits for the window.
pub(crate) fn run_ingest(
    cfg: IngestConfig,
    shutdown: Shutdown,
) -> Result<IngestSummary, PipelineError> {
    let started = Instant::now();
    let view = Arc::new(IngestView::new(cfg.publish_window));
    let _endpoint = start_endpoint(&cfg, &view)?;
    let (_emulator, server) =
        super::build::server_or_emulator(cfg.server.as_deref(), &cfg.emulator)?;
    let (client, _offset) = match setup(&cfg, &shutdown) {
        Err(PipelineError::Stopped) => return Ok(IngestSummary::default()),
        other => other?,
    };
    let mut source_cfg = cfg.source.clone();
    source_cfg.server = server.clone();
    info!("fetching the lexicon from {server}/emotion_values");
    let (text, lexicon) = match source::fetch_lexicon_text(
        &server,
        &source_cfg,
        &shutdown,
        &FetchProgress::default(),
    ) {
        Ok(x) => x,
        Err(source::SourceError::Shutdown) => return Ok(IngestSummary::default()),
        Err(e) => return Err(PipelineError::Lexicon(e)),
    };
    client
        .put_last(
            &names::meta_subject(&cfg.stream, "lexicon"),
            text.into_bytes(),
        )
        .map_err(js("publishing the lexicon"))?;
    info!(
        "lexicon ({} entries) published to {}",
        lexicon.len(),
        names::meta_stream(&cfg.stream)
    );

    let stats = [Arc::new(SourceStats::new()), Arc::new(SourceStats::new())];
    view.running(client.stats(), stats.clone());
    let mut readers = Vec::new();
    for (n, st) in [1u8, 2].into_iter().zip(&stats) {
        let r = source::spawn_publishing_reader(
            n,
            source_cfg.clone(),
            &cfg.stream,
            client.publisher(),
            Arc::clone(st),
            shutdown.clone(),
        )
        .map_err(|source| PipelineError::StartReader { stream: n, source })?;
        readers.push(r);
    }
    info!(
        "publishing /tweets/1 and /tweets/2 of {server} to {}.1 and {}.2 at {}",
        cfg.stream, cfg.stream, cfg.nats_url
    );
    let js_stats = client.stats();
    let snapshot = || stats[0].snapshot().sum(&stats[1].snapshot());
    let mut last = (Instant::now(), 0u64);
    let mut away_since: Option<Instant> = None;
    let mut away_log = LogLimiter::every(Duration::from_secs(15));
    loop {
        if shutdown.sleep(Duration::from_secs(1)) {
            break;
        }
        if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
            info!("--duration reached: stopping");
            shutdown.trigger();
            break;
        }
        if readers.iter().all(|r| r.is_finished()) {
            warn!("both readers have stopped");
            break;
        }
        let (s, n) = (snapshot(), js_stats.snapshot());
        if !n.connected {
            let since = *away_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(3) && away_log.check(Instant::now()).is_some()
            {
                warn!(
                    "NATS has been unreachable for {} s: the readers wait (nothing is dropped)",
                    since.elapsed().as_secs()
                );
            }
        } else {
            away_since = None;
        }
        if cfg.status_line {
            let rate = (n.published - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), n.published);
            eprintln!(
                "ingest {:>5.0}s | events {} | published {} ({rate:.0}/s, duplicates {}) | window \
                 {} | NATS {}",
                started.elapsed().as_secs_f64(),
                s.events,
                n.published,
                n.duplicates,
                n.publish_window,
                if n.connected {
                    "up"
                } else {
                    "UNREACHABLE: readers wait"
                }
            );
        }
    }
    // The readers stop at the flag; the window is then flushed against the deadline.
    view.stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + cfg.drain_timeout;
    for r in readers {
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
    let flushed = client.flush_by(deadline);
    let n = js_stats.snapshot();
    if !flushed {
        warn!(
            "{} publishes were not acknowledged by the drain deadline; the next start replays \
             from the server (the duplicate window drops what did arrive)",
            n.publish_window
        );
    }
    Ok(IngestSummary {
        source: snapshot(),
        events_streams: [
            stats[0].events.load(std::sync::atomic::Ordering::Relaxed),
            stats[1].events.load(std::sync::atomic::Ordering::Relaxed),
        ],
        unacked_at_exit: if flushed { 0 } else { n.publish_window },
        nats: n,
    })
}

/// What `ingest`'s endpoint reads: the client's counters and the readers' once they run.
#[derive(Debug)]
struct IngestView {
    window: u64,
    live: std::sync::OnceLock<(Arc<crate::jetstream::JsStats>, [Arc<SourceStats>; 2])>,
    stopping: std::sync::atomic::AtomicBool,
}

impl IngestView {
    fn new(window: usize) -> IngestView {
        IngestView {
            window: window.max(1) as u64,
            live: std::sync::OnceLock::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn running(&self, nats: Arc<crate::jetstream::JsStats>, readers: [Arc<SourceStats>; 2]) {
        let _ = self.live.set((nats, readers));
    }

    /// Why `/readyz` answers 503, each `(reason, detail)`; empty when ready.
    fn not_ready(&self) -> Vec<(&'static str, String)> {
        let mut r = Vec::new();
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            r.push(("stopping", "the readers are stopping".to_owned()));
        }
        let Some((nats, _)) = self.live.get() else {
            r.push((
                "starting",
                "connecting to NATS, setting up the stream, fetching the lexicon".to_owned(),
            ));
            return r;
        };
        let n = nats.snapshot();
        if !n.connected {
            r.push((
                "nats_down",
                "NATS is unreachable: the readers wait (nothing is dropped)".to_owned(),
            ));
        } else if n.publish_window >= self.window {
            r.push((
                "readers_wait",
                format!(
                    "the publish window is full ({} awaiting their ack): the readers wait for NATS",
                    n.publish_window
                ),
            ));
        }
        r
    }
}

fn ingest_routes() -> crate::ops::Routes<IngestView> {
    crate::ops::Routes::new()
        .get("/healthz", |_, _| crate::ops::Response::text(200, "ok\n"))
        .get("/readyz", ingest_readyz)
        .get("/metrics", ingest_metrics)
}

fn ingest_readyz(v: &IngestView, _: &crate::ops::Request<'_>) -> crate::ops::Response {
    let reasons = v.not_ready();
    if reasons.is_empty() {
        crate::ops::Response::json(200, &serde_json::json!({"ready": true}))
    } else {
        let reasons: Vec<_> = reasons
            .into_iter()
            .map(|(reason, detail)| serde_json::json!({"reason": reason, "detail": detail}))
            .collect();
        crate::ops::Response::json(
            503,
            &serde_json::json!({"ready": false, "reasons": reasons}),
        )
    }
}

/// The Prometheus text of `ingest` (docs/METRICS.md, section ingest).
fn ingest_metrics(v: &IngestView, _: &crate::ops::Request<'_>) -> crate::ops::Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut e = crate::ops::Exposition::new();
    let ready = if v.not_ready().is_empty() { 1.0 } else { 0.0 };
    let (n, readers) = match v.live.get() {
        Some((nats, readers)) => {
            let r = |f: fn(&SourceStats) -> &std::sync::atomic::AtomicU64| {
                [f(&readers[0]).load(Relaxed), f(&readers[1]).load(Relaxed)]
            };
            (
                nats.snapshot(),
                Some((r(|s| &s.events), r(|s| &s.reconnects))),
            )
        }
        None => (JsSnapshot::default(), None),
    };
    let nats_published = v
        .live
        .get()
        .map(|(nats, _)| {
            [
                nats.published_streams[0].load(Relaxed),
                nats.published_streams[1].load(Relaxed),
            ]
        })
        .unwrap_or_default();
    let (events, reconnects) = readers.unwrap_or_default();
    let per_stream = |x: [u64; 2]| {
        [
            (&[("stream", "1")][..], x[0]),
            (&[("stream", "2")][..], x[1]),
        ]
    };
    e.counter(
        "tweetflow_ingest_events_total",
        "SSE events read, per tweet-server stream",
        &per_stream(events),
    );
    e.counter(
        "tweetflow_ingest_published_total",
        "events published and acknowledged by JetStream, per stream (duplicates included)",
        &per_stream(nats_published),
    );
    e.counter(
        "tweetflow_ingest_duplicates_total",
        "publishes JetStream reported as duplicates (already in the stream)",
        &[(&[], n.duplicates)],
    );
    e.counter(
        "tweetflow_ingest_publish_retries_total",
        "publishes sent again after their ack failed",
        &[(&[], n.publish_retries)],
    );
    e.counter(
        "tweetflow_ingest_reconnects_total",
        "reconnections of a reader to the tweet server, per stream",
        &per_stream(reconnects),
    );
    e.gauge(
        "tweetflow_ingest_publish_acks_pending",
        "publishes awaiting their ack from JetStream",
        &[(&[], n.publish_window as f64)],
    );
    e.gauge(
        "tweetflow_ingest_nats_up",
        "1 while NATS is reachable",
        &[(&[], if n.connected { 1.0 } else { 0.0 })],
    );
    e.gauge(
        "tweetflow_ingest_ready",
        "1 when /readyz answers 200",
        &[(&[], ready)],
    );
    crate::ops::Response::new(200, crate::ops::METRICS_CONTENT_TYPE, e.finish())
}

/// `ingest`'s endpoint, when an address is configured.
fn start_endpoint(
    cfg: &IngestConfig,
    view: &Arc<IngestView>,
) -> Result<Option<crate::ops::OpsServer>, PipelineError> {
    let Some(addr) = cfg.ops_addr else {
        return Ok(None);
    };
    let server = if cfg.ops_fallback_port {
        crate::ops::OpsServer::start_or_free_port(addr, ingest_routes(), Arc::clone(view))
    } else {
        crate::ops::OpsServer::start(addr, ingest_routes(), Arc::clone(view))
    }
    .map_err(PipelineError::Ops)?;
    let url = server.url();
    info!("metrics at {url}metrics, probes at {url}healthz and {url}readyz");
    Ok(Some(server))
}
