//! Live statistics of the processing core: atomics written by the dispatcher,
//! the workers and the supervisor, read by the status output as snapshots.
//!
//! Every counter is monotonic and updated with relaxed atomics: a snapshot is
//! consistent enough for display and for the autoscaler's per-tick deltas,
//! not a consistent cut. Gauges (rates, utilisation) are `f64` bits in an
//! `AtomicU64`. The fatal reason is set once; the first one wins.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use super::config::RestartPolicy;
use super::error::Fatal;
use super::inflight::InFlight;
use crate::model::ScoreKind;
use crate::stats::Histogram;
use crate::supervise::RestartWindow;

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
    pub(crate) parked: AtomicUsize,
    /// Raised by a pool restart; each worker starts afresh when it sees it change.
    pub(crate) generation: AtomicU64,
    pub(crate) target: AtomicUsize,
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
            parked: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            target: AtomicUsize::new(0),
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

    /// Stores the autoscaler's gauges of the last tick.
    pub(crate) fn set_gauges(&self, rate: f64, service_ms: f64, util: f64, little: f64) {
        store_f64(&self.arrival_rate, rate);
        store_f64(&self.service_ms, service_ms);
        store_f64(&self.utilisation, util);
        store_f64(&self.little, little);
    }

    fn snapshot(&self) -> PoolSnapshot {
        let in_flight = self.inflight.total();
        let busy = self.inflight.busy();
        PoolSnapshot {
            workers: self.workers.load(Ordering::Relaxed),
            retiring: self.retiring.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
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
        self.inflight.total().saturating_sub(self.inflight.busy())
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
    /// Worker threads created (the pools reuse them: see `engine::pool`).
    pub(crate) threads_created: AtomicU64,
    /// Worker threads a pool may hold (`ThreadBound::per_pool`).
    pub(crate) thread_bound: usize,
    pub(crate) fatal: Mutex<Option<Fatal>>,
    /// Set by [`Core::hurry`](super::Core::hurry): workers skip the per-message delay.
    pub(crate) hurry: AtomicBool,
}

impl CoreStats {
    /// `slots` per pool: the pool's thread bound.
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
            threads_created: AtomicU64::new(0),
            thread_bound: slots,
            fatal: Mutex::new(None),
            hurry: AtomicBool::new(false),
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
            threads_created: self.threads_created.load(Ordering::Relaxed),
            thread_bound: self.thread_bound,
            sentiment: self.pools[0].snapshot(),
            engagement: self.pools[1].snapshot(),
            fatal: self.fatal.lock().clone(),
        }
    }

    /// Records why supervision failed; the first reason wins.
    pub(crate) fn set_fatal(&self, why: Fatal) {
        let mut f = self.fatal.lock();
        if f.is_none() {
            log::error!("processing core: fatal: {why}");
            *f = Some(why);
        }
    }
}

/// One pool in a [`CoreSnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolSnapshot {
    /// Active workers (the dispatcher may choose them).
    pub workers: usize,
    /// Retired workers still draining their inbox.
    pub retiring: usize,
    /// Worker threads parked, ready for the next growth.
    pub parked: usize,
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
    /// Worker restarts (kills and unexpected panics), each on the worker's own thread.
    pub restarts: u64,
    /// Whole-pool restarts (in place) after more unexpected panics than the
    /// restart intensity allows.
    pub pool_restarts: u64,
    /// Tweets whose score was given up (`None`) after an unexpected panic and its retry.
    pub failed: u64,
    /// Worker threads that could not be created (the pool stays smaller).
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
    /// p50 dispatch-to-result latency (ms) since start.
    pub latency_p50_ms: Option<f64>,
    /// p99 dispatch-to-result latency (ms) since start.
    pub latency_p99_ms: Option<f64>,
}

/// A copy of [`CoreStats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CoreSnapshot {
    /// Tweets dispatched.
    pub tweets: u64,
    /// Kill messages received from the sources.
    pub kill_messages: u64,
    /// Messages that could not be sent to the aggregator (it was gone).
    pub agg_send_failures: u64,
    /// Messages waiting in the core's input channel (at the last tick).
    pub input_backlog: u64,
    /// Worker threads created since the start, both pools.
    pub threads_created: u64,
    /// Worker threads each pool may hold, from the kernel's limits read at
    /// start and the configuration (`engine::limits`).
    pub thread_bound: usize,
    /// The sentiment pool.
    pub sentiment: PoolSnapshot,
    /// The engagement pool.
    pub engagement: PoolSnapshot,
    /// Set when supervision failed; the pipeline must stop.
    pub fatal: Option<Fatal>,
}

/// The index of `kind`'s pool in [`CoreStats`] and the supervisor.
pub(crate) fn pool_index(kind: ScoreKind) -> usize {
    match kind {
        ScoreKind::Sentiment => 0,
        ScoreKind::Engagement => 1,
    }
}
