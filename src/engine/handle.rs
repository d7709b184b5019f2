//! The handle of the running core: [`spawn_core`] starts it all, [`Core`]
//! reports and joins it.
//!
//! The top of the engine: it validates the configuration, reads the
//! kernel's limits and bounds the pools' threads by them (logged, see
//! [`super::limits`]), installs the panic hook, spawns `min_workers` workers
//! per pool, then the dispatcher and the pool supervisor threads. Shutdown flows downstream: when the input
//! disconnects the dispatcher returns and drops every inbox sender, the
//! workers drain and exit, the supervisor joins them, and the last `agg`
//! sender is dropped.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::config::CoreConfig;
use super::dispatch::run_dispatcher;
use super::error::{CoreConfigError, CoreError, CoreThread, Fatal};
use super::limits::{widen_futex_hash, ThreadBound, ThreadLimits};
use super::pool::Supervisor;
use super::stats::CoreStats;
use crate::model::{AggMsg, Ingest};
use crate::score::Lexicon;
use crate::supervise::{install_panic_hook, panic_message};

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
    pub fn fatal(&self) -> Option<Fatal> {
        self.stats.fatal.lock().clone()
    }

    /// The drain's deadline is near: from now on the workers score what they
    /// still hold without the per-message delay (a delay already being slept
    /// ends by itself, within its 500 ms at most), so every tweet still gets both
    /// scores before the process exits.
    pub fn hurry(&self) {
        self.stats
            .hurry
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the dispatcher and the pool supervisor have ended (every worker
    /// drained and exited).
    pub fn is_finished(&self) -> bool {
        self.dispatcher.is_finished() && self.supervisor.is_finished()
    }

    /// Whether the dispatcher and the pool supervisor both still run.
    pub fn is_running(&self) -> bool {
        !self.dispatcher.is_finished() && !self.supervisor.is_finished()
    }

    /// Waits until the input has disconnected and every worker has drained
    /// its inbox and exited (all `agg` senders are dropped by then).
    pub fn join(self) -> Result<(), CoreError> {
        let d = self.dispatcher.join();
        let s = self.supervisor.join();
        let snap = self.stats.snapshot();
        log::info!(
            "processing core: {} worker threads created for {} tweets ({:.5} per tweet), {} \
             worker restarts on their own thread, {} pool restarts, {} threads could not be \
             created",
            snap.threads_created,
            snap.tweets,
            snap.threads_created as f64 / snap.tweets.max(1) as f64,
            snap.sentiment.restarts + snap.engagement.restarts,
            snap.sentiment.pool_restarts + snap.engagement.pool_restarts,
            snap.sentiment.spawn_failures + snap.engagement.spawn_failures,
        );
        if let Some(msg) = self.stats.fatal.lock().clone() {
            return Err(CoreError::Fatal(msg));
        }
        for (thread, r) in [(CoreThread::Dispatcher, d), (CoreThread::Supervisor, s)] {
            if let Err(p) = r {
                return Err(CoreError::Panicked {
                    thread,
                    message: panic_message(p.as_ref()),
                });
            }
        }
        Ok(())
    }
}

/// Starts the dispatcher, the supervisor/autoscaler and `min_workers` workers
/// per pool. The dispatcher reads `input`; for a tweet it sends
/// [`AggMsg::Tweet`] to `agg` first, then a [`Job`](crate::model::Job) to one sentiment and one
/// engagement worker; a kill goes to one worker of each pool.
pub fn spawn_core(
    cfg: CoreConfig,
    lexicon: Arc<Lexicon>,
    input: Receiver<Ingest>,
    agg: Sender<AggMsg>,
) -> Result<Core, CoreError> {
    if cfg.max_workers == 0 || cfg.max_workers < cfg.min_workers {
        return Err(CoreConfigError::WorkerBounds {
            min: cfg.min_workers,
            max: cfg.max_workers,
        }
        .into());
    }
    if cfg.inbox_capacity == 0 {
        return Err(CoreConfigError::InboxCapacity.into());
    }
    if !(cfg.utilisation > 0.0 && cfg.utilisation <= 1.0) {
        return Err(CoreConfigError::Utilisation(cfg.utilisation).into());
    }
    let bound = ThreadBound::new(ThreadLimits::read(), cfg.max_workers, cfg.max_threads);
    if bound.limited() {
        log::warn!("worker threads: {bound}");
    } else {
        log::info!("worker threads: {bound}");
    }
    match widen_futex_hash(2 * bound.per_pool) {
        Ok(slots) => log::info!("futex hash: {slots} buckets for the worker threads"),
        Err(e) => log::debug!("futex hash left as it is: {e}"),
    }
    let cfg = CoreConfig {
        max_workers: bound.per_pool,
        min_workers: cfg.min_workers.min(bound.per_pool),
        ..cfg
    };
    install_panic_hook();
    let stats = Arc::new(CoreStats::new(cfg.max_workers, &cfg.restart));
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let mut sup = Supervisor::new(
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
    let dispatcher = crate::stats::spawn_thread("dispatcher", None, move || {
        run_dispatcher(input, control_rx, agg, dstats, done_tx);
    })
    .map_err(|source| CoreError::Spawn {
        thread: CoreThread::Dispatcher,
        source,
    })?;
    let supervisor =
        crate::stats::spawn_thread("supervisor", None, move || sup.run()).map_err(|source| {
            CoreError::Spawn {
                thread: CoreThread::Supervisor,
                source,
            }
        })?;
    Ok(Core {
        stats,
        dispatcher,
        supervisor,
    })
}
