//! The pool supervisor: restart intensity, pool restarts and scaling, in one
//! thread per core.
//!
//! Two levels of restart, as in OTP:
//!
//! * **Worker restart** happens in the worker's own thread (see
//!   [`super::worker`]): a panic restarts its loop on the same thread and
//!   inbox. Unexpected panics (not kills, which the lab sends at a known
//!   rate) are recorded in the pool's sliding window
//!   ([`RestartWindow`](crate::supervise::RestartWindow)).
//! * **Restart intensity.** More than `max_restarts` unexpected panics in
//!   `window` make the pool restart whole, in place: its generation goes up
//!   and every worker starts afresh before its next message, on its own
//!   thread and inbox (nothing queued is lost, no thread is added); the window
//!   is cleared. More than `max_pool_restarts` pool restarts in
//!   `pool_window` is fatal ([`Fatal`]): `Core::fatal` reports it and
//!   `Core::join` returns `CoreError::Fatal`, so the pipeline exits with a
//!   clear error.
//!
//! Threads are bounded ([`super::limits`]): a pool has `ThreadBound::per_pool`
//! slots and at most one thread per slot. A thread that cannot be created
//! leaves the pool smaller (`workers` below `target` in the snapshot, the
//! status line and `/metrics`, and `spawn_failures`); it is never fatal.
//!
//! The same thread runs the autoscaler tick ([`super::autoscale`]): it feeds
//! each pool's [`Meter`] and [`Controller`], adds workers up to the target and
//! retires the highest-numbered ones down to it. A retired worker is only
//! told to stop through the dispatcher ([`Control::Retire`]), so it drains
//! its inbox; its thread then parks ([`Event::Parked`]). Growth hands a
//! parked thread a new inbox before it creates a thread in a free slot. A
//! pool that cannot grow logs at most once per 10 s.

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
    /// No thread.
    Free,
    /// The dispatcher chooses it.
    Active,
    /// Retired: draining its inbox.
    Retiring,
    /// A thread waiting for a new inbox.
    Parked,
}

struct Slot {
    state: SlotState,
    handle: Option<JoinHandle<()>>,
    /// Hands the slot's thread its next inbox; dropped at shutdown.
    assign: Option<Sender<Receiver<Envelope>>>,
}

struct PoolSup {
    generation: u64,
    slots: Vec<Slot>,
    active: usize,
    retiring: usize,
    parked: usize,
    controller: Controller,
    meter: Meter,
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
    /// `cfg.max_workers` is the number of slots per pool (the thread bound applied).
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
        let pool = |_| PoolSup {
            generation: 0,
            slots: (0..cfg.max_workers)
                .map(|_| Slot {
                    state: SlotState::Free,
                    handle: None,
                    assign: None,
                })
                .collect(),
            active: 0,
            retiring: 0,
            parked: 0,
            controller: Controller::new(cfg.autoscale_config(), prior),
            meter: {
                // Baseline at the epoch: whatever is already waiting in
                // the input counts as arriving in the first tick.
                let mut m = Meter::default();
                let _ = m.sample(0.0, 0, 0, 0, 0);
                m
            },
            pool_window: RestartWindow::new(cfg.restart.max_pool_restarts, cfg.restart.pool_window),
            spawn_warnings: LogLimiter::every(SPAWN_WARNING_EVERY),
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

    /// Spawns `min_workers` per pool (before the threads start). A pool that
    /// gets fewer runs smaller (logged); one that gets none is an error.
    pub(crate) fn start_min_workers(&mut self) -> Result<(), CoreError> {
        let min = self.cfg.min_workers.clamp(1, self.cfg.max_workers.max(1));
        for pool in 0..2 {
            for _ in 0..min {
                if let Err(source) = self.add_worker(pool) {
                    self.stats.pools[pool]
                        .spawn_failures
                        .fetch_add(1, Ordering::Relaxed);
                    let kind = self.stats.pools[pool].kind;
                    if self.pools[pool].active == 0 {
                        return Err(CoreError::Spawn {
                            thread: CoreThread::Worker(kind),
                            source,
                        });
                    }
                    log::warn!(
                        "{} pool: starting with {} of {min} workers: {source}",
                        kind.name(),
                        self.pools[pool].active
                    );
                    break;
                }
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
        assign: Receiver<Receiver<Envelope>>,
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
            inbox,
            assign,
            agg,
            events: self.events_tx.clone(),
            stats: Arc::clone(&self.stats),
            lexicon: Arc::clone(&self.lexicon),
            delay: self.cfg.work_delay,
            timer_slack: self.cfg.timer_slack,
            policy: self.cfg.restart.clone(),
            fault: self.cfg.fault.clone(),
        };
        if self
            .cfg
            .fault
            .as_ref()
            .is_some_and(|f| f.spawn_fails(kind, slot))
        {
            return Err(std::io::Error::from_raw_os_error(11)); // EAGAIN, as pthread_create
        }
        let handle = crate::stats::spawn_thread(
            format!("{}-{slot}", kind.name()),
            Some(self.cfg.stack_size),
            move || worker_main(ctx),
        )?;
        self.stats.threads_created.fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    }

    /// Adds a worker: a parked thread gets a new inbox; else a thread is
    /// created in the lowest free slot.
    fn add_worker(&mut self, pool: usize) -> std::io::Result<()> {
        let p = &self.pools[pool];
        let parked = p.slots.iter().position(|s| s.state == SlotState::Parked);
        let free = || p.slots.iter().position(|s| s.state == SlotState::Free);
        let Some(slot) = parked.or_else(free) else {
            return Err(std::io::Error::other("no free worker slot"));
        };
        let (tx, rx) = crossbeam_channel::bounded(self.cfg.inbox_capacity);
        let reused = parked.is_some()
            && p.slots[slot]
                .assign
                .as_ref()
                .is_some_and(|a| a.try_send(rx.clone()).is_ok());
        let p = &mut self.pools[pool];
        if reused {
            p.parked -= 1;
        } else {
            if parked.is_some() {
                // Its thread is gone (cannot normally happen): free the slot.
                self.release(pool, slot);
            }
            let (assign_tx, assign_rx) = crossbeam_channel::bounded(1);
            let handle = self.spawn_worker(pool, slot, rx, assign_rx)?;
            let s = &mut self.pools[pool].slots[slot];
            s.handle = Some(handle);
            s.assign = Some(assign_tx);
        }
        let p = &mut self.pools[pool];
        p.slots[slot].state = SlotState::Active;
        p.active += 1;
        self.publish(pool);
        // If the dispatcher is gone the sender is dropped here and the worker parks.
        let _ = self.control.send(Control::Add {
            pool,
            slot,
            inbox: tx,
        });
        Ok(())
    }

    /// Joins the slot's thread (if any) and marks it free.
    fn release(&mut self, pool: usize, slot: usize) {
        let p = &mut self.pools[pool];
        let s = &mut p.slots[slot];
        match s.state {
            SlotState::Active => p.active -= 1,
            SlotState::Retiring => p.retiring -= 1,
            SlotState::Parked => p.parked -= 1,
            SlotState::Free => {}
        }
        s.state = SlotState::Free;
        s.assign = None;
        if let Some(h) = s.handle.take() {
            if h.join().is_err() {
                log::error!("a worker thread ended with an uncaught panic");
            }
        }
        self.publish(pool);
    }

    /// Stores the pool's sizes in its statistics.
    fn publish(&self, pool: usize) {
        let p = &self.pools[pool];
        let st = &self.stats.pools[pool];
        st.workers.store(p.active, Ordering::Relaxed);
        st.retiring.store(p.retiring, Ordering::Relaxed);
        st.parked.store(p.parked, Ordering::Relaxed);
    }

    fn retire_worker(&mut self, pool: usize) {
        let p = &mut self.pools[pool];
        let Some(slot) = p.slots.iter().rposition(|s| s.state == SlotState::Active) else {
            return;
        };
        p.slots[slot].state = SlotState::Retiring;
        p.active -= 1;
        p.retiring += 1;
        self.publish(pool);
        let st = &self.stats.pools[pool];
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
            // Closing every assignment channel ends the parked threads, and
            // the others as soon as their inbox has drained.
            for s in self.pools[pool].slots.iter_mut() {
                s.assign = None;
            }
            for slot in 0..self.pools[pool].slots.len() {
                self.release(pool, slot);
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Parked { pool, slot } => {
                let p = &mut self.pools[pool];
                let s = &mut p.slots[slot];
                match s.state {
                    SlotState::Active => {
                        // Its inbox closed without a retirement: the dispatcher is
                        // finishing (shutdown) and `done` is about to arrive.
                        log::debug!(
                            "{} worker {slot} drained its inbox",
                            self.stats.pools[pool].kind.name()
                        );
                        p.active -= 1;
                    }
                    SlotState::Retiring => p.retiring -= 1,
                    SlotState::Parked | SlotState::Free => return,
                }
                s.state = SlotState::Parked;
                p.parked += 1;
                self.publish(pool);
            }
            Event::Escalate { pool, generation } => {
                if generation == self.pools[pool].generation && self.stats.fatal.lock().is_none() {
                    self.restart_pool(pool);
                }
            }
        }
    }

    /// Restarts every worker of `pool` afresh, in place (see the module documentation).
    fn restart_pool(&mut self, pool: usize) {
        let kind = self.stats.pools[pool].kind;
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
            "{} pool: more than {} worker panics in {:?} (kills not counted); restarting the \
             whole pool in place",
            kind.name(),
            self.cfg.restart.max_restarts,
            self.cfg.restart.window
        );
        let p = &mut self.pools[pool];
        p.generation += 1;
        let st = &self.stats.pools[pool];
        st.generation.store(p.generation, Ordering::Relaxed);
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
            // A thread ends only at shutdown; one that ended otherwise (a
            // panic outside its supervised loop) frees its slot.
            let dead: Vec<usize> = (0..self.pools[pool].slots.len())
                .filter(|&i| {
                    self.pools[pool].slots[i]
                        .handle
                        .as_ref()
                        .is_some_and(|h| h.is_finished())
                })
                .collect();
            for slot in dead {
                log::error!(
                    "{} worker {slot}: its thread ended unexpectedly; the slot is freed",
                    self.stats.pools[pool].kind.name()
                );
                if self.pools[pool].slots[slot].state == SlotState::Active {
                    let _ = self.control.send(Control::Retire { pool, slot });
                }
                self.release(pool, slot);
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
