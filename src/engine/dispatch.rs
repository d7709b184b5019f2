//! Least-connected dispatcher (issue 4).
//!
//! One thread reads the [`Ingest`] channel. For a tweet it sends
//! [`AggMsg::Tweet`] to the aggregator *first*, then one [`Job`] to a
//! sentiment worker and one to an engagement worker; a kill goes to one worker
//! of each pool.
//!
//! Least-connected (as nginx `least_conn`, HAProxy `leastconn`): every worker
//! slot has an in-flight count (dispatched and not yet finished) in a
//! contiguous array of atomics ([`InFlight`]) shared with the workers. The
//! dispatcher increments it before sending; the worker's guard decrements it
//! when the message is done, also when the worker panics. To choose, the
//! dispatcher scans the active slots starting one past the last choice (so
//! ties go round-robin) and keeps the first slot with the smallest count; it
//! stops early at a count of 0, since nothing can be lower. The choice is
//! exact for the counts it reads, and the scan is O(1) whenever some worker is
//! idle — the common case below 100% utilisation — and a few µs over 4,096
//! slots when all are busy.
//!
//! Inboxes are short (default capacity 2): once every worker of a pool has
//! its inbox full, the dispatcher waits and chooses again, so a backlog stays
//! in the shared input channel — first come, first served by whichever worker
//! frees up first, and visible to the autoscaler — instead of queueing behind
//! individual workers (at 275 ms a message, a 64-deep inbox would be 17 s).
//!
//! The pool supervisor adds and retires workers through a control channel:
//! `Add` hands the dispatcher the new inbox's sender, `Retire` makes it drop
//! it, so the worker drains its inbox and exits. Only the dispatcher holds
//! inbox senders, so when the input disconnects and it returns, every worker
//! drains and exits.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, Receiver, SendTimeoutError, Sender, TrySendError};

use crate::model::{AggMsg, Ingest, Job};
use crate::workers::CoreStats;

/// How long the dispatcher pauses when every inbox of a pool is full.
const FULL_PAUSE: Duration = Duration::from_micros(200);

/// What travels in a worker's inbox: the job and when it was dispatched.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The tweet or kill.
    pub job: Job,
    /// When the dispatcher handed it over (start of the dispatch-to-result latency).
    pub dispatched: Instant,
}

/// Supervisor → dispatcher.
#[derive(Debug)]
pub(crate) enum Control {
    /// A new worker in `slot` of `pool`; send its jobs to `inbox`.
    Add {
        pool: usize,
        slot: usize,
        inbox: Sender<Envelope>,
    },
    /// Stop choosing `slot` and drop its inbox sender (graceful retirement).
    Retire { pool: usize, slot: usize },
}

/// Per-slot in-flight counts in one contiguous array, plus their total.
#[derive(Debug)]
pub struct InFlight {
    counts: Box<[AtomicU32]>,
    total: AtomicU64,
}

impl InFlight {
    /// `slots` counters, all 0.
    pub fn new(slots: usize) -> InFlight {
        InFlight {
            counts: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The count of `slot`.
    pub fn get(&self, slot: usize) -> u32 {
        self.counts[slot].load(Ordering::Relaxed)
    }

    /// The sum over all slots.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// One more message in flight at `slot`.
    pub fn start(&self, slot: usize) {
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// One message at `slot` finished (never below 0).
    pub fn finish(&self, slot: usize) {
        let dec = self.counts[slot]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok();
        if dec {
            let _ = self
                .total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// The least-connected choice among the slots with `active[i]`, scanning
    /// from `start` (wrapping) and stopping at the first 0. Ties go to the
    /// first slot at or after `start`. `None` when no slot is active.
    pub fn least_loaded(&self, active: &[bool], start: usize) -> Option<usize> {
        let n = active.len().min(self.counts.len());
        if n == 0 {
            return None;
        }
        let start = start % n;
        // (slot, count); u32::MAX marks "none yet" (inactive slots read as MAX too).
        let mut best = (usize::MAX, u32::MAX);
        if !self.scan(active, start, n, &mut best) {
            self.scan(active, 0, start, &mut best);
        }
        (best.0 != usize::MAX).then_some(best.0)
    }

    /// Scans `from..to`; true when it found a 0 (nothing can be lower).
    fn scan(&self, active: &[bool], from: usize, to: usize, best: &mut (usize, u32)) -> bool {
        let counts = &self.counts[from..to];
        let active = &active[from..to];
        for (k, (c, &a)) in counts.iter().zip(active).enumerate() {
            let v = if a {
                c.load(Ordering::Relaxed)
            } else {
                u32::MAX
            };
            if v < best.1 {
                *best = (from + k, v);
                if v == 0 {
                    return true;
                }
            }
        }
        false
    }
}

/// The dispatcher's view of one pool.
struct Route {
    /// Inbox senders by slot; `None` for free or retired slots.
    inboxes: Vec<Option<Sender<Envelope>>>,
    /// `active[i] == inboxes[i].is_some()`, kept for a compact scan.
    active: Vec<bool>,
    /// One past the highest active slot: the scan range.
    high: usize,
    cursor: usize,
    count: usize,
}

impl Route {
    fn new() -> Route {
        Route {
            inboxes: Vec::new(),
            active: Vec::new(),
            high: 0,
            cursor: 0,
            count: 0,
        }
    }

    fn add(&mut self, slot: usize, inbox: Sender<Envelope>) {
        if self.inboxes.len() <= slot {
            self.inboxes.resize_with(slot + 1, || None);
            self.active.resize(slot + 1, false);
        }
        if self.inboxes[slot].replace(inbox).is_none() {
            self.count += 1;
        }
        self.active[slot] = true;
        self.high = self.high.max(slot + 1);
    }

    fn remove(&mut self, slot: usize) {
        if let Some(s) = self.inboxes.get_mut(slot) {
            if s.take().is_some() {
                self.count -= 1;
            }
            self.active[slot] = false;
        }
        while self.high > 0 && !self.active[self.high - 1] {
            self.high -= 1;
        }
    }
}

/// The dispatcher thread's body.
pub(crate) fn run_dispatcher(
    input: Receiver<Ingest>,
    control: Receiver<Control>,
    agg: Sender<AggMsg>,
    stats: Arc<CoreStats>,
    done: Sender<()>,
) {
    let mut d = Dispatcher {
        routes: [Route::new(), Route::new()],
        control,
        control_open: true,
        stats,
        agg,
    };
    loop {
        let ctl = if d.control_open {
            d.control.clone()
        } else {
            never()
        };
        select! {
            recv(ctl) -> c => match c {
                Ok(c) => d.apply(c),
                Err(_) => d.control_open = false,
            },
            recv(input) -> m => match m {
                Ok(m) => {
                    d.drain_control();
                    if !d.handle(m) {
                        break;
                    }
                }
                Err(_) => break,
            },
        }
    }
    log::debug!("dispatcher: input closed; releasing the worker inboxes");
    // Dropping the routes drops every inbox sender: workers drain and exit.
    drop(d);
    drop(done);
}

struct Dispatcher {
    routes: [Route; 2],
    control: Receiver<Control>,
    control_open: bool,
    stats: Arc<CoreStats>,
    agg: Sender<AggMsg>,
}

impl Dispatcher {
    fn apply(&mut self, c: Control) {
        match c {
            Control::Add { pool, slot, inbox } => self.routes[pool].add(slot, inbox),
            Control::Retire { pool, slot } => self.routes[pool].remove(slot),
        }
    }

    fn drain_control(&mut self) {
        while let Ok(c) = self.control.try_recv() {
            self.apply(c);
        }
    }

    /// Returns false when the core must stop reading (the aggregator is gone).
    fn handle(&mut self, m: Ingest) -> bool {
        match m {
            Ingest::Tweet(t) => {
                if self.agg.send(AggMsg::Tweet(Arc::clone(&t))).is_err() {
                    self.stats.agg_send_failures.fetch_add(1, Ordering::Relaxed);
                    self.stats.set_fatal(
                        "the aggregator's channel closed; the core cannot deliver results".into(),
                    );
                    return false;
                }
                self.stats.tweets.fetch_add(1, Ordering::Relaxed);
                for pool in 0..2 {
                    self.stats.pools[pool]
                        .dispatched
                        .fetch_add(1, Ordering::Relaxed);
                    self.dispatch(pool, Job::Tweet(Arc::clone(&t)));
                }
            }
            Ingest::Kill { stream } => {
                log::debug!("kill message from stream {stream}");
                self.stats.kill_messages.fetch_add(1, Ordering::Relaxed);
                for pool in 0..2 {
                    self.dispatch(pool, Job::Kill);
                }
            }
        }
        true
    }

    fn dispatch(&mut self, pool: usize, job: Job) {
        let mut env = Envelope {
            job,
            dispatched: Instant::now(),
        };
        loop {
            let route = &mut self.routes[pool];
            let counts = &self.stats.pools[pool].inflight;
            let choice = counts.least_loaded(&route.active[..route.high], route.cursor);
            let Some(slot) = choice else {
                if !self.wait_for_worker(pool) {
                    log::error!(
                        "dispatcher: {} pool has no workers and no supervisor; dropping a job",
                        self.stats.pools[pool].kind.name()
                    );
                    return;
                }
                continue;
            };
            route.cursor = slot + 1;
            counts.start(slot);
            let Some(tx) = route.inboxes[slot].as_ref() else {
                counts.finish(slot);
                route.remove(slot);
                continue;
            };
            match tx.try_send(env) {
                Ok(()) => return,
                Err(TrySendError::Full(e)) => {
                    // The least-loaded inbox is full, so (nearly) all are: the
                    // pool is saturated. Wait briefly for this worker to take
                    // one, then choose again, so the job goes to whichever
                    // worker frees up first; the backlog stays in the shared
                    // input channel (FIFO), where the autoscaler sees it,
                    // not behind one slow worker.
                    self.stats.pools[pool]
                        .dispatch_waits
                        .fetch_add(1, Ordering::Relaxed);
                    match tx.send_timeout(e, FULL_PAUSE) {
                        Ok(()) => return,
                        Err(SendTimeoutError::Timeout(e)) => {
                            counts.finish(slot);
                            env = e;
                            self.drain_control();
                        }
                        Err(SendTimeoutError::Disconnected(e)) => {
                            counts.finish(slot);
                            route.remove(slot);
                            env = e;
                        }
                    }
                }
                Err(TrySendError::Disconnected(e)) => {
                    // The worker thread is gone (cannot normally happen: the
                    // supervisor keeps a receiver); choose another.
                    counts.finish(slot);
                    route.remove(slot);
                    env = e;
                }
            }
        }
    }

    /// Blocks until the supervisor adds a worker to `pool`; false if it is gone.
    fn wait_for_worker(&mut self, pool: usize) -> bool {
        while self.routes[pool].count == 0 {
            if !self.control_open {
                return false;
            }
            match self.control.recv_timeout(Duration::from_secs(1)) {
                Ok(c) => self.apply(c),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    log::warn!(
                        "dispatcher: waiting for a {} worker",
                        self.stats.pools[pool].kind.name()
                    );
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.control_open = false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_least_loaded_active_slot() {
        let f = InFlight::new(6);
        for (slot, n) in [(0, 3), (1, 1), (2, 2), (3, 1), (4, 0), (5, 5)] {
            for _ in 0..n {
                f.start(slot);
            }
        }
        let all = [true; 6];
        assert_eq!(f.least_loaded(&all, 0), Some(4));
        let no4 = [true, true, true, true, false, true];
        // ties (1 and 3) are broken by the rotating start
        assert_eq!(f.least_loaded(&no4, 0), Some(1));
        assert_eq!(f.least_loaded(&no4, 2), Some(3));
        assert_eq!(f.least_loaded(&no4, 4), Some(1));
        assert_eq!(f.least_loaded(&[false; 6], 3), None);
        assert_eq!(f.least_loaded(&[], 0), None);
        assert_eq!(f.total(), 12);
    }

    #[test]
    fn round_robin_among_idle_equals() {
        let f = InFlight::new(4);
        let active = [true; 4];
        let mut cursor = 0;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let s = f.least_loaded(&active, cursor).unwrap();
            seen.push(s);
            cursor = s + 1;
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn finish_never_goes_below_zero() {
        let f = InFlight::new(2);
        f.start(1);
        f.finish(1);
        f.finish(1);
        f.finish(0);
        assert_eq!(f.get(1), 0);
        assert_eq!(f.total(), 0);
    }

    #[test]
    fn route_tracks_the_scan_range() {
        let mut r = Route::new();
        let (tx, _rx) = crossbeam_channel::bounded(1);
        r.add(0, tx.clone());
        r.add(5, tx.clone());
        assert_eq!((r.high, r.count), (6, 2));
        r.remove(5);
        assert_eq!((r.high, r.count), (1, 1));
        r.remove(5);
        assert_eq!(r.count, 1);
        r.remove(0);
        assert_eq!((r.high, r.count), (0, 0));
    }
}
