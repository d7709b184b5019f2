//! The pool supervisor: restart intensity, pool restarts and scaling, in one
//! thread per core.
//!
//! Two levels of restart, as in OTP:
//!
//! * **Worker restart** happens in the worker's own thread (see
//!   [`super::worker`]): a panic restarts its loop on the same inbox, and the
//!   restart is recorded in the pool's sliding window
//!   ([`RestartWindow`](crate::supervise::RestartWindow)).
//! * **Restart intensity.** More than `max_restarts` restarts in `window`
//!   make the pool restart whole — a new generation of threads on the same
//!   inboxes (nothing queued is lost), the old threads leave after their
//!   current message, the window is cleared. More than `max_pool_restarts`
//!   pool restarts in `pool_window`, or a pool restart whose threads cannot be
//!   spawned, is fatal ([`Fatal`]): `Core::fatal` reports it and `Core::join`
//!   returns `CoreError::Fatal`, so the pipeline exits with a clear error.
//!
//! The same thread runs the autoscaler tick ([`super::autoscale`]): it feeds
//! each pool's [`Meter`] and [`Controller`], spawns workers up to the target
//! and retires the highest-numbered ones down to it. A retired worker is only
//! told to stop through the dispatcher ([`Control::Retire`]), so it drains
//! its inbox before it exits. A pool that cannot grow logs at most once per
//! 10 s.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::autoscale::{Controller, Meter};
use super::config::CoreConfig;
use super::dispatch::{Control, Envelope};
use super::error::{CoreError, CoreThread, Fatal};
use super::stats::CoreStats;
use super::worker::{worker_main, Event, WorkerCtx};
use crate::log_limit::LogLimiter;
use crate::model::{AggMsg, Ingest};
use crate::score::Lexicon;
use crate::supervise::RestartWindow;

/// A pool that cannot grow logs at most this often.
const SPAWN_WARNING_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Active,
    Retiring,
}

struct Slot {
    state: SlotState,
    handle: Option<JoinHandle<()>>,
    inbox: Option<Receiver<Envelope>>,
}

struct PoolSup {
    generation: u64,
    gen_tx: Sender<()>,
    gen_rx: Receiver<()>,
    slots: Vec<Slot>,
    active: usize,
    retiring: usize,
    controller: Controller,
    meter: Meter,
    old: Vec<JoinHandle<()>>,
    pool_window: RestartWindow,
    spawn_warnings: LogLimiter,
}

/// The pool supervisor and autoscaler thread.
pub(crate) struct Supervisor {
    cfg: CoreConfig,
    lexicon: Arc<Lexicon>,
    agg: Option<Sender<AggMsg>>,
    stats: Arc<CoreStats>,
    control: Sender<Control>,
    done: Receiver<()>,
    /// A clone of the core's input, only to read its length (the backlog).
    input: Receiver<Ingest>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    pools: [PoolSup; 2],
    epoch: Instant,
}

impl Supervisor {
    pub(crate) fn new(
        cfg: CoreConfig,
        lexicon: Arc<Lexicon>,
        agg: Sender<AggMsg>,
        stats: Arc<CoreStats>,
        control: Sender<Control>,
        done: Receiver<()>,
        input: Receiver<Ingest>,
    ) -> Supervisor {
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let prior = cfg.work_delay.mean().as_secs_f64();
        let pool = |_| {
            let (gen_tx, gen_rx) = crossbeam_channel::bounded(0);
            PoolSup {
                generation: 0,
                gen_tx,
                gen_rx,
                slots: (0..cfg.max_workers)
                    .map(|_| Slot {
                        state: SlotState::Free,
                        handle: None,
                        inbox: None,
                    })
                    .collect(),
                active: 0,
                retiring: 0,
                controller: Controller::new(cfg.autoscale_config(), prior),
                meter: {
                    // Baseline at the epoch: whatever is already waiting in
                    // the input counts as arriving in the first tick.
                    let mut m = Meter::default();
                    let _ = m.sample(0.0, 0, 0, 0, 0);
                    m
                },
                old: Vec::new(),
                pool_window: RestartWindow::new(
                    cfg.restart.max_pool_restarts,
                    cfg.restart.pool_window,
                ),
                spawn_warnings: LogLimiter::every(SPAWN_WARNING_EVERY),
            }
        };
        let pools = [pool(0), pool(1)];
        Supervisor {
            lexicon,
            agg: Some(agg),
            stats,
            control,
            done,
            input,
            events_tx,
            events_rx,
            pools,
            epoch: Instant::now(),
            cfg,
        }
    }

    /// Spawns `min_workers` per pool (before the threads start).
    pub(crate) fn start_min_workers(&mut self) -> Result<(), CoreError> {
        let min = self.cfg.min_workers.max(1);
        for pool in 0..2 {
            for _ in 0..min {
                self.add_worker(pool).map_err(|source| CoreError::Spawn {
                    thread: CoreThread::Worker(self.stats.pools[pool].kind),
                    source,
                })?;
            }
            self.stats.pools[pool].target.store(min, Ordering::Relaxed);
        }
        Ok(())
    }

    fn spawn_worker(
        &self,
        pool: usize,
        slot: usize,
        inbox: Receiver<Envelope>,
        generation: u64,
        gen_rx: Receiver<()>,
    ) -> std::io::Result<JoinHandle<()>> {
        let agg = match &self.agg {
            Some(a) => a.clone(),
            None => return Err(std::io::Error::other("the core is shutting down")),
        };
        let kind = self.stats.pools[pool].kind;
        let ctx = WorkerCtx {
            pool,
            kind,
            slot,
            generation,
            inbox,
            gen_rx,
            agg,
            events: self.events_tx.clone(),
            stats: Arc::clone(&self.stats),
            lexicon: Arc::clone(&self.lexicon),
            delay: self.cfg.work_delay,
            timer_slack: self.cfg.timer_slack,
            policy: self.cfg.restart.clone(),
            fault: self.cfg.fault.clone(),
        };
        crate::stats::spawn_thread(
            format!("{}-{slot}", kind.name()),
            Some(self.cfg.stack_size),
            move || worker_main(ctx),
        )
    }

    fn add_worker(&mut self, pool: usize) -> std::io::Result<()> {
        let p = &self.pools[pool];
        let Some(slot) = p.slots.iter().position(|s| s.state == SlotState::Free) else {
            return Err(std::io::Error::other("no free worker slot"));
        };
        let (tx, rx) = crossbeam_channel::bounded(self.cfg.inbox_capacity);
        let handle = self.spawn_worker(pool, slot, rx.clone(), p.generation, p.gen_rx.clone())?;
        let p = &mut self.pools[pool];
        p.slots[slot] = Slot {
            state: SlotState::Active,
            handle: Some(handle),
            inbox: Some(rx),
        };
        p.active += 1;
        self.stats.pools[pool]
            .workers
            .store(p.active, Ordering::Relaxed);
        // If the dispatcher is gone the sender is dropped here and the worker exits.
        let _ = self.control.send(Control::Add {
            pool,
            slot,
            inbox: tx,
        });
        Ok(())
    }

    fn retire_worker(&mut self, pool: usize) {
        let p = &mut self.pools[pool];
        let Some(slot) = p.slots.iter().rposition(|s| s.state == SlotState::Active) else {
            return;
        };
        p.slots[slot].state = SlotState::Retiring;
        p.active -= 1;
        p.retiring += 1;
        let st = &self.stats.pools[pool];
        st.workers.store(p.active, Ordering::Relaxed);
        st.retiring.store(p.retiring, Ordering::Relaxed);
        st.retired.fetch_add(1, Ordering::Relaxed);
        st.retired_in_flight
            .fetch_add(u64::from(st.inflight.get(slot)), Ordering::Relaxed);
        let _ = self.control.send(Control::Retire { pool, slot });
    }

    /// The thread body: events, ticks, and the shutdown.
    pub(crate) fn run(mut self) {
        let tick = self
            .cfg
            .tick
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut next_tick = Instant::now() + tick;
        self.tick();
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            select! {
                recv(self.events_rx) -> ev => {
                    if let Ok(ev) = ev {
                        self.handle(ev);
                    }
                }
                recv(self.done) -> _ => break,
                default(wait) => {
                    self.tick();
                    next_tick += tick;
                    let now = Instant::now();
                    if next_tick < now {
                        next_tick = now + tick;
                    }
                }
            }
        }
        self.shutdown();
    }

    fn shutdown(mut self) {
        log::debug!("supervisor: dispatcher done; waiting for the workers to drain");
        self.agg = None;
        // Release the input too: senders see the disconnection.
        let (_, closed) = crossbeam_channel::bounded(0);
        self.input = closed;
        for pool in 0..2 {
            let p = &mut self.pools[pool];
            let handles: Vec<_> = p
                .slots
                .iter_mut()
                .filter_map(|s| s.handle.take())
                .chain(p.old.drain(..))
                .collect();
            for h in handles {
                if h.join().is_err() {
                    log::error!("a worker thread ended with an uncaught panic");
                }
            }
            for s in p.slots.iter_mut() {
                s.inbox = None;
                s.state = SlotState::Free;
            }
            let st = &self.stats.pools[pool];
            st.workers.store(0, Ordering::Relaxed);
            st.retiring.store(0, Ordering::Relaxed);
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                pool,
                slot,
                generation,
                exit,
            } => {
                let p = &mut self.pools[pool];
                if generation != p.generation {
                    return; // an old generation's thread; joined from `old`
                }
                let s = &mut p.slots[slot];
                if let Some(h) = s.handle.take() {
                    let _ = h.join();
                }
                match s.state {
                    SlotState::Active => p.active -= 1,
                    SlotState::Retiring => p.retiring -= 1,
                    SlotState::Free => {}
                }
                if s.state == SlotState::Active {
                    // Its inbox closed without a retirement: the dispatcher is
                    // finishing (shutdown) and `done` is about to arrive.
                    log::debug!(
                        "{} worker {slot} exited ({exit:?})",
                        self.stats.pools[pool].kind.name()
                    );
                }
                s.state = SlotState::Free;
                s.inbox = None;
                let st = &self.stats.pools[pool];
                st.workers.store(p.active, Ordering::Relaxed);
                st.retiring.store(p.retiring, Ordering::Relaxed);
            }
            Event::Escalate { pool, generation } => {
                if generation == self.pools[pool].generation && self.stats.fatal.lock().is_none() {
                    self.restart_pool(pool);
                }
            }
        }
    }

    /// Replaces every thread of `pool` with a new generation on the same inboxes.
    fn restart_pool(&mut self, pool: usize) {
        let kind = self.stats.pools[pool].kind;
        let name = kind.name();
        let now = Instant::now();
        if self.pools[pool].pool_window.record(now) {
            self.stats.set_fatal(Fatal::RestartIntensity {
                pool: kind,
                max_pool_restarts: self.cfg.restart.max_pool_restarts,
                pool_window: self.cfg.restart.pool_window,
            });
            return;
        }
        log::warn!(
            "{name} pool: more than {} worker restarts in {:?}; restarting the whole pool",
            self.cfg.restart.max_restarts,
            self.cfg.restart.window
        );
        let (gen_tx, gen_rx) = crossbeam_channel::bounded(0);
        let generation = self.pools[pool].generation + 1;
        let live: Vec<(usize, Receiver<Envelope>)> = self.pools[pool]
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state != SlotState::Free)
            .filter_map(|(i, s)| s.inbox.clone().map(|r| (i, r)))
            .collect();
        let mut fresh = Vec::with_capacity(live.len());
        for (slot, inbox) in live {
            match self.spawn_worker(pool, slot, inbox, generation, gen_rx.clone()) {
                Ok(h) => fresh.push((slot, h)),
                Err(e) => {
                    // The old generation keeps running; the partial new one
                    // leaves as soon as `gen_tx` is dropped below.
                    let p = &mut self.pools[pool];
                    p.old.extend(fresh.into_iter().map(|(_, h)| h));
                    self.stats.set_fatal(Fatal::Respawn {
                        pool: kind,
                        slot,
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
        let p = &mut self.pools[pool];
        for (slot, h) in fresh {
            if let Some(old) = p.slots[slot].handle.replace(h) {
                p.old.push(old);
            }
        }
        // Dropping the old generation's sender tells its threads to leave.
        p.gen_tx = gen_tx;
        p.gen_rx = gen_rx;
        p.generation = generation;
        let st = &self.stats.pools[pool];
        st.window.lock().clear();
        st.pool_restarts.fetch_add(1, Ordering::Relaxed);
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let secs = now.duration_since(self.epoch).as_secs_f64();
        // Tweets (and kills) waiting for the dispatcher: each will be one job per pool.
        let backlog = self.input.len() as u64;
        self.stats.input_backlog.store(backlog, Ordering::Relaxed);
        for pool in 0..2 {
            let st = &self.stats.pools[pool];
            // Arrivals = dispatched + still waiting, so a saturated dispatcher
            // does not hide the real rate.
            let sample = self.pools[pool].meter.sample(
                secs,
                st.dispatched.load(Ordering::Relaxed) + backlog,
                st.processed.load(Ordering::Relaxed),
                st.service_us.load(Ordering::Relaxed),
                st.queued() + backlog,
            );
            if let Some(m) = sample {
                let p = &mut self.pools[pool];
                let target = p.controller.update(m);
                let util = if m.dt > 0.0 && p.active > 0 {
                    (m.service_secs / (m.dt * p.active as f64)).min(1.0)
                } else {
                    0.0
                };
                st.set_gauges(
                    p.controller.arrival_rate(),
                    p.controller.service_secs() * 1000.0,
                    util,
                    p.controller.littles_law_size(),
                );
                st.target.store(target, Ordering::Relaxed);
                self.scale_to(pool, target);
            }
            let p = &mut self.pools[pool];
            let (done, running): (Vec<_>, Vec<_>) = p.old.drain(..).partition(|h| h.is_finished());
            p.old = running;
            for h in done {
                let _ = h.join();
            }
        }
    }

    fn scale_to(&mut self, pool: usize, target: usize) {
        while self.pools[pool].active < target {
            if let Err(e) = self.add_worker(pool) {
                self.stats.pools[pool]
                    .spawn_failures
                    .fetch_add(1, Ordering::Relaxed);
                let p = &mut self.pools[pool];
                if p.spawn_warnings.check(Instant::now()).is_some() {
                    log::warn!(
                        "{} pool: cannot grow to {target} workers (have {}): {e}",
                        self.stats.pools[pool].kind.name(),
                        p.active
                    );
                }
                break;
            }
        }
        while self.pools[pool].active > target {
            self.retire_worker(pool);
        }
    }
}
