//! Worker pools: sentiment and engagement workers on OS threads (issue 4).
//!
//! Entry point: [`spawn_core`] starts the dispatcher ([`crate::dispatch`]), the
//! pool supervisor/autoscaler thread ([`crate::supervisor`]) and
//! `min_workers` workers per pool, and returns a [`Core`] handle.
//!
//! A worker is an OS thread with a small stack and its own bounded inbox. Per
//! message it sleeps the configured [`WorkDelay`], computes its score
//! ([`sentiment::sentiment`] or [`engagement::engagement`]) and sends an
//! [`AggMsg::Score`] to the aggregator. A [`Job::Kill`] makes it panic for
//! real (`panic_any(KillPanic)`); the `catch_unwind` loop in the same thread
//! restarts it on the same inbox (see [`crate::supervisor`] for the policy).

pub mod engagement;
pub mod sentiment;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::dispatch::{Envelope, InFlight};
use crate::lexicon::Lexicon;
use crate::model::{AggMsg, Ingest, Job, ScoreKind, Tweet};
use crate::stats::Histogram;
use crate::supervisor::{self, Backoff, Event, KillPanic, RestartPolicy, RestartWindow};

/// The per-message delay of a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkDelay {
    /// No delay (benchmarks of the overhead, tests).
    Off,
    /// Normally distributed, clamped to `min..=max` (all in ms).
    Normal {
        mean: f64,
        sd: f64,
        min: f64,
        max: f64,
    },
}

impl Default for WorkDelay {
    /// The lab's: normal(mean 275 ms, sd 75 ms) clamped to 50..500 ms.
    fn default() -> Self {
        WorkDelay::Normal {
            mean: 275.0,
            sd: 75.0,
            min: 50.0,
            max: 500.0,
        }
    }
}

/// A `--work-delay` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid work delay {0:?}: expected MIN..MAX in ms (e.g. 50..500) or 0 for none")]
pub struct WorkDelayParseError(pub String);

impl FromStr for WorkDelay {
    type Err = WorkDelayParseError;

    /// `"0"` (or `"off"`) is [`WorkDelay::Off`]; `"MIN..MAX"` (ms) is a normal
    /// distribution with mean (MIN+MAX)/2 and sd (MAX−MIN)/6, clamped to
    /// MIN..MAX — `"50..500"` is the lab's 275 ± 75 ms. `"N..N"` is a fixed N ms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || WorkDelayParseError(s.to_string());
        let t = s.trim();
        if t == "0" || t.eq_ignore_ascii_case("off") {
            return Ok(WorkDelay::Off);
        }
        let (a, b) = t.split_once("..").ok_or_else(err)?;
        let min: u64 = a.trim().parse().map_err(|_| err())?;
        let max: u64 = b.trim().parse().map_err(|_| err())?;
        if min > max || max > 3_600_000 {
            return Err(err());
        }
        if max == 0 {
            return Ok(WorkDelay::Off);
        }
        let (min, max) = (min as f64, max as f64);
        Ok(WorkDelay::Normal {
            mean: (min + max) / 2.0,
            sd: (max - min) / 6.0,
            min,
            max,
        })
    }
}

impl fmt::Display for WorkDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkDelay::Off => write!(f, "0"),
            WorkDelay::Normal { min, max, .. } => write!(f, "{min}..{max}"),
        }
    }
}

impl WorkDelay {
    /// The mean delay, the autoscaler's prior for the service time.
    pub fn mean(&self) -> Duration {
        match self {
            WorkDelay::Off => Duration::ZERO,
            WorkDelay::Normal { mean, .. } => Duration::from_secs_f64(mean / 1000.0),
        }
    }

    /// One random delay.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            WorkDelay::Off => Duration::ZERO,
            WorkDelay::Normal { mean, sd, min, max } => {
                let ms = match rand_distr::Normal::new(mean, sd.max(0.0)) {
                    Ok(n) => rng.sample(n),
                    Err(_) => mean,
                };
                Duration::from_secs_f64(ms.clamp(min, max).max(0.0) / 1000.0)
            }
        }
    }
}

/// A test hook: a predicate that makes a worker panic (an *unexpected* panic,
/// not a kill) on the tweets it selects. `None` in production.
#[derive(Clone)]
pub struct Fault(pub Arc<FaultFn>);

/// The predicate of a [`Fault`].
pub type FaultFn = dyn Fn(ScoreKind, &Tweet) -> bool + Send + Sync;

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fault(..)")
    }
}

/// Configuration of the processing core. All sizes are per pool.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `--min-workers` (default 4, at least 1).
    pub min_workers: usize,
    /// `--max-workers` (default 4096).
    pub max_workers: usize,
    /// `--work-delay` (default 50..500: normal 275 ± 75 ms clamped).
    pub work_delay: WorkDelay,
    /// Capacity of each worker's inbox (default 2; the backlog waits in the
    /// shared input channel instead, see [`crate::dispatch`]).
    pub inbox_capacity: usize,
    /// Worker thread stack size in bytes (default 128 KiB).
    pub stack_size: usize,
    /// Restart intensity and back-off.
    pub restart: RestartPolicy,
    /// Autoscaler/supervisor tick (default 250 ms, capped at 1 s).
    pub tick: Duration,
    /// ρ, the utilisation target (default 0.8).
    pub utilisation: f64,
    /// Autoscaler tuning beyond min/max/ρ (those three above win).
    pub autoscale: crate::autoscale::AutoscaleConfig,
    /// Test hook, see [`Fault`].
    pub fault: Option<Fault>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            min_workers: 4,
            max_workers: 4096,
            work_delay: WorkDelay::default(),
            inbox_capacity: 2,
            stack_size: 128 * 1024,
            restart: RestartPolicy::default(),
            tick: Duration::from_millis(250),
            utilisation: 0.8,
            autoscale: crate::autoscale::AutoscaleConfig::default(),
            fault: None,
        }
    }
}

impl CoreConfig {
    pub(crate) fn autoscale_config(&self) -> crate::autoscale::AutoscaleConfig {
        let min = self.min_workers.max(1);
        let max_service_secs = match self.work_delay {
            WorkDelay::Off => self.autoscale.max_service_secs,
            WorkDelay::Normal { max, .. } => self
                .autoscale
                .max_service_secs
                .min(1.5 * max / 1000.0 + 0.01),
        };
        crate::autoscale::AutoscaleConfig {
            min_workers: min,
            max_workers: self.max_workers.max(min),
            utilisation: self.utilisation,
            max_service_secs,
            ..self.autoscale.clone()
        }
    }
}

/// Errors of the processing core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid core configuration: {0}")]
    Config(String),
    #[error("could not spawn a {what} thread: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    /// A pool could not be restarted; the pipeline must stop.
    #[error("supervision failed: {0}")]
    Fatal(String),
    #[error("a core thread panicked: {0}")]
    Panicked(String),
}

fn store_f64(a: &AtomicU64, v: f64) {
    a.store(v.to_bits(), Ordering::Relaxed);
}

fn load_f64(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

/// Live counters and gauges of one pool.
#[derive(Debug)]
pub struct PoolStats {
    pub(crate) kind: ScoreKind,
    /// Per-slot in-flight counts, shared by the dispatcher and the workers.
    pub(crate) inflight: InFlight,
    pub(crate) workers: AtomicUsize,
    pub(crate) retiring: AtomicUsize,
    pub(crate) target: AtomicUsize,
    pub(crate) busy: AtomicUsize,
    pub(crate) dispatched: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) kills: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) pool_restarts: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) spawn_failures: AtomicU64,
    pub(crate) dispatch_waits: AtomicU64,
    pub(crate) retired: AtomicU64,
    pub(crate) retired_in_flight: AtomicU64,
    pub(crate) service_us: AtomicU64,
    pub(crate) arrival_rate: AtomicU64,
    pub(crate) service_ms: AtomicU64,
    pub(crate) utilisation: AtomicU64,
    pub(crate) little: AtomicU64,
    /// Dispatch-to-result latency (µs).
    pub latency: Histogram,
    /// The supervisor's sliding window of this pool's restart times.
    pub(crate) window: Mutex<RestartWindow>,
}

impl PoolStats {
    fn new(kind: ScoreKind, slots: usize, policy: &RestartPolicy) -> PoolStats {
        let zero = || AtomicU64::new(0);
        PoolStats {
            kind,
            inflight: InFlight::new(slots),
            workers: AtomicUsize::new(0),
            retiring: AtomicUsize::new(0),
            target: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            dispatched: zero(),
            processed: zero(),
            kills: zero(),
            restarts: zero(),
            pool_restarts: zero(),
            failed: zero(),
            spawn_failures: zero(),
            dispatch_waits: zero(),
            retired: zero(),
            retired_in_flight: zero(),
            service_us: zero(),
            arrival_rate: zero(),
            service_ms: zero(),
            utilisation: zero(),
            little: zero(),
            latency: Histogram::new(),
            window: Mutex::new(RestartWindow::new(policy.max_restarts, policy.window)),
        }
    }

    pub(crate) fn set_gauges(&self, rate: f64, service_ms: f64, util: f64, little: f64) {
        store_f64(&self.arrival_rate, rate);
        store_f64(&self.service_ms, service_ms);
        store_f64(&self.utilisation, util);
        store_f64(&self.little, little);
    }

    fn snapshot(&self) -> PoolSnapshot {
        let in_flight = self.inflight.total();
        let busy = self.busy.load(Ordering::Relaxed) as u64;
        PoolSnapshot {
            workers: self.workers.load(Ordering::Relaxed),
            retiring: self.retiring.load(Ordering::Relaxed),
            target: self.target.load(Ordering::Relaxed),
            in_flight,
            busy,
            queued: in_flight.saturating_sub(busy),
            dispatched: self.dispatched.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
            kills: self.kills.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            pool_restarts: self.pool_restarts.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            spawn_failures: self.spawn_failures.load(Ordering::Relaxed),
            dispatch_waits: self.dispatch_waits.load(Ordering::Relaxed),
            retired: self.retired.load(Ordering::Relaxed),
            retired_in_flight: self.retired_in_flight.load(Ordering::Relaxed),
            arrival_rate: load_f64(&self.arrival_rate),
            service_ms: load_f64(&self.service_ms),
            utilisation: load_f64(&self.utilisation),
            littles_law_size: load_f64(&self.little),
            latency_p50_ms: self.latency.quantile(0.5).map(|v| v as f64 / 1000.0),
            latency_p99_ms: self.latency.quantile(0.99).map(|v| v as f64 / 1000.0),
        }
    }

    /// Messages waiting in inboxes (dispatched, not yet started).
    pub(crate) fn queued(&self) -> u64 {
        self.inflight
            .total()
            .saturating_sub(self.busy.load(Ordering::Relaxed) as u64)
    }
}

/// Live statistics of the core, shared with the stats reporter.
#[derive(Debug)]
pub struct CoreStats {
    pub(crate) pools: [PoolStats; 2],
    pub(crate) tweets: AtomicU64,
    pub(crate) kill_messages: AtomicU64,
    pub(crate) agg_send_failures: AtomicU64,
    pub(crate) input_backlog: AtomicU64,
    pub(crate) fatal: Mutex<Option<String>>,
}

impl CoreStats {
    pub(crate) fn new(slots: usize, policy: &RestartPolicy) -> CoreStats {
        CoreStats {
            pools: [
                PoolStats::new(ScoreKind::Sentiment, slots, policy),
                PoolStats::new(ScoreKind::Engagement, slots, policy),
            ],
            tweets: AtomicU64::new(0),
            kill_messages: AtomicU64::new(0),
            agg_send_failures: AtomicU64::new(0),
            input_backlog: AtomicU64::new(0),
            fatal: Mutex::new(None),
        }
    }

    /// The pool of `kind`.
    pub fn pool(&self, kind: ScoreKind) -> &PoolStats {
        &self.pools[pool_index(kind)]
    }

    /// A consistent-enough copy of every counter and gauge.
    pub fn snapshot(&self) -> CoreSnapshot {
        CoreSnapshot {
            tweets: self.tweets.load(Ordering::Relaxed),
            kill_messages: self.kill_messages.load(Ordering::Relaxed),
            agg_send_failures: self.agg_send_failures.load(Ordering::Relaxed),
            input_backlog: self.input_backlog.load(Ordering::Relaxed),
            sentiment: self.pools[0].snapshot(),
            engagement: self.pools[1].snapshot(),
            fatal: self.fatal.lock().clone(),
        }
    }

    pub(crate) fn set_fatal(&self, msg: String) {
        let mut f = self.fatal.lock();
        if f.is_none() {
            log::error!("processing core: fatal: {msg}");
            *f = Some(msg);
        }
    }
}

/// One pool in a [`CoreSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSnapshot {
    /// Active workers (the dispatcher may choose them).
    pub workers: usize,
    /// Retired workers still draining their inbox.
    pub retiring: usize,
    /// The autoscaler's target.
    pub target: usize,
    /// Dispatched and not yet finished.
    pub in_flight: u64,
    /// Being processed right now.
    pub busy: u64,
    /// Waiting in inboxes (`in_flight − busy`).
    pub queued: u64,
    /// Tweets dispatched to this pool.
    pub dispatched: u64,
    /// Scores sent (including `None` after a failed retry).
    pub processed: u64,
    /// Kill messages received by this pool's workers.
    pub kills: u64,
    /// Worker restarts (kills and unexpected panics).
    pub restarts: u64,
    /// Whole-pool restarts after the restart intensity was exceeded.
    pub pool_restarts: u64,
    /// Tweets whose score was given up (`None`) after an unexpected panic and its retry.
    pub failed: u64,
    /// Worker threads that could not be spawned by the autoscaler.
    pub spawn_failures: u64,
    /// Times the dispatcher found every inbox of this pool full and waited.
    pub dispatch_waits: u64,
    /// Workers retired by the autoscaler.
    pub retired: u64,
    /// Messages still in flight at those workers when they were retired
    /// (they finish them before exiting).
    pub retired_in_flight: u64,
    /// Smoothed λ (tweets/s).
    pub arrival_rate: f64,
    /// Smoothed S (ms).
    pub service_ms: f64,
    /// Busy fraction of the workers over the last tick.
    pub utilisation: f64,
    /// λ·S/ρ.
    pub littles_law_size: f64,
    pub latency_p50_ms: Option<f64>,
    /// p99 dispatch-to-result latency (ms) since start.
    pub latency_p99_ms: Option<f64>,
}

/// A copy of [`CoreStats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoreSnapshot {
    /// Tweets dispatched.
    pub tweets: u64,
    /// Kill messages received from the sources.
    pub kill_messages: u64,
    /// Messages that could not be sent to the aggregator (it was gone).
    pub agg_send_failures: u64,
    /// Messages waiting in the core's input channel (at the last tick).
    pub input_backlog: u64,
    pub sentiment: PoolSnapshot,
    pub engagement: PoolSnapshot,
    /// Set when supervision failed; the pipeline must stop.
    pub fatal: Option<String>,
}

pub(crate) fn pool_index(kind: ScoreKind) -> usize {
    match kind {
        ScoreKind::Sentiment => 0,
        ScoreKind::Engagement => 1,
    }
}

/// The running core.
#[derive(Debug)]
pub struct Core {
    stats: Arc<CoreStats>,
    dispatcher: JoinHandle<()>,
    supervisor: JoinHandle<()>,
}

impl Core {
    /// Live statistics.
    pub fn stats(&self) -> Arc<CoreStats> {
        Arc::clone(&self.stats)
    }

    /// `Some(reason)` once supervision has failed (a pool could not be
    /// restarted): the pipeline should shut down and exit with this error.
    pub fn fatal(&self) -> Option<String> {
        self.stats.fatal.lock().clone()
    }

    /// Waits until the input has disconnected and every worker has drained
    /// its inbox and exited (all `agg` senders are dropped by then).
    pub fn join(self) -> Result<(), CoreError> {
        let d = self.dispatcher.join();
        let s = self.supervisor.join();
        if let Some(msg) = self.stats.fatal.lock().clone() {
            return Err(CoreError::Fatal(msg));
        }
        for (what, r) in [("dispatcher", d), ("supervisor", s)] {
            if let Err(p) = r {
                return Err(CoreError::Panicked(format!(
                    "{what}: {}",
                    supervisor::panic_message(p.as_ref())
                )));
            }
        }
        Ok(())
    }
}

/// Starts the dispatcher, the supervisor/autoscaler and `min_workers` workers
/// per pool. The dispatcher reads `input`; for a tweet it sends
/// [`AggMsg::Tweet`] to `agg` first, then a [`Job`] to one sentiment and one
/// engagement worker; a kill goes to one worker of each pool.
pub fn spawn_core(
    cfg: CoreConfig,
    lexicon: Arc<Lexicon>,
    input: Receiver<Ingest>,
    agg: Sender<AggMsg>,
) -> Result<Core, CoreError> {
    if cfg.max_workers == 0 || cfg.max_workers < cfg.min_workers {
        return Err(CoreError::Config(format!(
            "need 1 <= min_workers ({}) <= max_workers ({})",
            cfg.min_workers, cfg.max_workers
        )));
    }
    if cfg.inbox_capacity == 0 {
        return Err(CoreError::Config("inbox_capacity must be >= 1".into()));
    }
    if !(cfg.utilisation > 0.0 && cfg.utilisation <= 1.0) {
        return Err(CoreError::Config(format!(
            "utilisation must be in (0, 1], got {}",
            cfg.utilisation
        )));
    }
    supervisor::install_panic_hook();
    let stats = Arc::new(CoreStats::new(cfg.max_workers, &cfg.restart));
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let mut sup = supervisor::Supervisor::new(
        cfg.clone(),
        lexicon,
        agg.clone(),
        Arc::clone(&stats),
        control_tx,
        done_rx,
        input.clone(),
    );
    sup.start_min_workers()?;
    let dstats = Arc::clone(&stats);
    let dispatcher = std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || {
            crate::dispatch::run_dispatcher(input, control_rx, agg, dstats, done_tx);
        })
        .map_err(|source| CoreError::Spawn {
            what: "dispatcher".into(),
            source,
        })?;
    let supervisor = std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || sup.run())
        .map_err(|source| CoreError::Spawn {
            what: "supervisor".into(),
            source,
        })?;
    Ok(Core {
        stats,
        dispatcher,
        supervisor,
    })
}

/// Everything one worker thread needs.
pub(crate) struct WorkerCtx {
    pub pool: usize,
    pub kind: ScoreKind,
    pub slot: usize,
    pub gen: u64,
    pub inbox: Receiver<Envelope>,
    /// Disconnects when this generation of the pool is replaced (pool restart).
    pub gen_rx: Receiver<()>,
    pub agg: Sender<AggMsg>,
    pub events: Sender<Event>,
    pub stats: Arc<CoreStats>,
    pub lexicon: Arc<Lexicon>,
    pub delay: WorkDelay,
    pub policy: RestartPolicy,
    pub fault: Option<Fault>,
}

/// Why a worker's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Its inbox disconnected (retired, or shutdown) and is empty.
    Drained,
    /// A pool restart replaced it by a new thread on the same inbox.
    Replaced,
}

struct WorkerState {
    rng: SmallRng,
    /// The tweet being processed (for the retry decision after a panic).
    current: Option<(Envelope, u32)>,
    /// A tweet to process again before reading the inbox.
    retry: Option<(Envelope, u32)>,
    backoff: Backoff,
    /// Messages finished since the last restart: a worker that made progress
    /// is not in a crash loop, so its next restart starts a new back-off streak.
    progress: u64,
    agg_gone_logged: bool,
}

/// Holds one in-flight slot while a message is processed; decrements on drop,
/// also during a panic's unwinding.
struct Processing<'a> {
    pool: &'a PoolStats,
    slot: usize,
}

impl<'a> Processing<'a> {
    fn start(pool: &'a PoolStats, slot: usize) -> Processing<'a> {
        pool.busy.fetch_add(1, Ordering::Relaxed);
        Processing { pool, slot }
    }
}

impl Drop for Processing<'_> {
    fn drop(&mut self) {
        self.pool.busy.fetch_sub(1, Ordering::Relaxed);
        self.pool.inflight.finish(self.slot);
    }
}

/// The body of a worker thread: the supervised loop.
pub(crate) fn worker_main(ctx: WorkerCtx) {
    let mut st = WorkerState {
        rng: SmallRng::from_entropy(),
        current: None,
        retry: None,
        backoff: Backoff::new(ctx.policy.clone()),
        progress: 0,
        agg_gone_logged: false,
    };
    let pool = &ctx.stats.pools[ctx.pool];
    loop {
        match catch_unwind(AssertUnwindSafe(|| run(&ctx, &mut st))) {
            Ok(exit) => {
                // The supervisor may be gone at shutdown; nothing to do then.
                let _ = ctx.events.send(Event::Exited {
                    pool: ctx.pool,
                    slot: ctx.slot,
                    gen: ctx.gen,
                    exit,
                });
                return;
            }
            Err(payload) => {
                let now = Instant::now();
                pool.restarts.fetch_add(1, Ordering::Relaxed);
                let killed = payload.is::<KillPanic>();
                if killed {
                    // Routine (the server sends them all the time): one line, at debug;
                    // the status line counts kills and restarts.
                    log::debug!(
                        "{} worker {} killed by a kill message; restarting on the same inbox",
                        ctx.kind.name(),
                        ctx.slot
                    );
                } else {
                    log::error!(
                        "{} worker {} panicked: {}; restarting on the same inbox",
                        ctx.kind.name(),
                        ctx.slot,
                        supervisor::panic_message(payload.as_ref())
                    );
                }
                if let Some((env, attempts)) = st.current.take() {
                    if attempts < ctx.policy.tweet_retries {
                        st.retry = Some((env, attempts + 1));
                    } else {
                        give_up(&ctx, &mut st, &env);
                    }
                }
                let exceeded = pool.window.lock().record(now);
                if exceeded {
                    let _ = ctx.events.send(Event::Escalate {
                        pool: ctx.pool,
                        gen: ctx.gen,
                    });
                }
                if st.progress > 0 {
                    // Killed (or failed) after doing work since its previous restart:
                    // not a crash loop, so no back-off (kills are routine; a small pool
                    // would otherwise spend its time backing off).
                    st.backoff.reset();
                    st.progress = 0;
                }
                let pause = st.backoff.next(now, &mut st.rng);
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
        }
    }
}

fn give_up(ctx: &WorkerCtx, st: &mut WorkerState, env: &Envelope) {
    let pool = &ctx.stats.pools[ctx.pool];
    if let Job::Tweet(t) = &env.job {
        log::error!(
            "{} of tweet seq {} (id {}) failed again after a retry; sending no score",
            ctx.kind.name(),
            t.seq,
            t.id
        );
        pool.failed.fetch_add(1, Ordering::Relaxed);
        send_score(ctx, st, t.seq, None, env.dispatched);
    }
}

fn send_score(
    ctx: &WorkerCtx,
    st: &mut WorkerState,
    seq: crate::model::Seq,
    value: Option<f64>,
    dispatched: Instant,
) {
    let pool = &ctx.stats.pools[ctx.pool];
    let msg = AggMsg::Score {
        seq,
        kind: ctx.kind,
        value,
    };
    if ctx.agg.send(msg).is_err() {
        ctx.stats.agg_send_failures.fetch_add(1, Ordering::Relaxed);
        if !st.agg_gone_logged {
            st.agg_gone_logged = true;
            log::error!(
                "{} worker {}: the aggregator is gone; scores are dropped",
                ctx.kind.name(),
                ctx.slot
            );
        }
    }
    pool.processed.fetch_add(1, Ordering::Relaxed);
    pool.latency
        .record(dispatched.elapsed().as_micros().min(u64::MAX as u128) as u64);
}

fn run(ctx: &WorkerCtx, st: &mut WorkerState) -> Exit {
    let pool = &ctx.stats.pools[ctx.pool];
    loop {
        let (env, attempts) = match st.retry.take() {
            Some(r) => {
                // In flight again: the panic's guard already finished it once.
                pool.inflight.start(ctx.slot);
                r
            }
            None => select! {
                recv(ctx.inbox) -> m => match m {
                    Ok(env) => (env, 0),
                    Err(_) => return Exit::Drained,
                },
                recv(ctx.gen_rx) -> _ => return Exit::Replaced,
            },
        };
        let _guard = Processing::start(pool, ctx.slot);
        match &env.job {
            Job::Kill => {
                pool.kills.fetch_add(1, Ordering::Relaxed);
                std::panic::panic_any(KillPanic);
            }
            Job::Tweet(t) => {
                let t = Arc::clone(t);
                st.current = Some((env.clone(), attempts));
                let started = Instant::now();
                let pause = ctx.delay.sample(&mut st.rng);
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                if let Some(f) = &ctx.fault {
                    if (f.0)(ctx.kind, &t) {
                        panic!("injected fault on tweet seq {}", t.seq);
                    }
                }
                let value = match ctx.kind {
                    ScoreKind::Sentiment => Some(sentiment::sentiment(&t.text, &ctx.lexicon)),
                    ScoreKind::Engagement => engagement::engagement(&t),
                };
                let service = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
                st.current = None;
                st.progress += 1;
                send_score(ctx, st, t.seq, value, env.dispatched);
                pool.service_us.fetch_add(service, Ordering::Relaxed);
            }
        }
    }
}

/// A tweet for tests.
#[doc(hidden)]
pub fn test_tweet(seq: crate::model::Seq, text: &str) -> Tweet {
    Tweet {
        favorite_count: 1,
        retweet_count: 1,
        ..Tweet::minimal(seq, text, crate::model::User::minimal(1, 10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_delay_parses() {
        assert_eq!("0".parse::<WorkDelay>(), Ok(WorkDelay::Off));
        assert_eq!("50..500".parse::<WorkDelay>(), Ok(WorkDelay::default()));
        assert_eq!(
            "10..10".parse::<WorkDelay>(),
            Ok(WorkDelay::Normal {
                mean: 10.0,
                sd: 0.0,
                min: 10.0,
                max: 10.0
            })
        );
        for bad in ["", "5", "500..50", "a..b", "-1..5", "1...5"] {
            assert!(bad.parse::<WorkDelay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn work_delay_samples_stay_clamped_around_the_mean() {
        let d = WorkDelay::default();
        let mut rng = SmallRng::seed_from_u64(1);
        let n = 20_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let s = d.sample(&mut rng).as_secs_f64() * 1000.0;
            assert!((50.0..=500.0).contains(&s));
            sum += s;
        }
        let mean = sum / n as f64;
        assert!((mean - 275.0).abs() < 3.0, "mean {mean}");
        assert_eq!(WorkDelay::Off.sample(&mut rng), Duration::ZERO);
        assert_eq!(d.mean(), Duration::from_millis(275));
    }
}
