//! The least-connected dispatcher: one thread from the core's input to the workers' inboxes.
//!
//! One thread reads the [`Ingest`] channel. For a tweet it sends
//! [`AggMsg::Tweet`] to the aggregator *first*, then one [`Job`] to a
//! sentiment worker and one to an engagement worker; a kill goes to one worker
//! of each pool.
//!
//! Least-connected (as nginx `least_conn`, HAProxy `leastconn`): the
//! dispatcher sends each job to the active worker slot with the fewest
//! messages in flight, counted in [`InFlight`] (see there for the scan and
//! its cost).
//!
//! Inboxes are short (default capacity 2): once every worker of a pool has
//! its inbox full, the dispatcher waits and chooses again, so a backlog stays
//! in the shared input channel — first come, first served by whichever worker
//! frees up first, and visible to the autoscaler — instead of queueing behind
//! individual workers (at 275 ms a message, a 64-deep inbox would be 17 s).
//!
//! The input is read paced (`crate::pace`): while tweets keep coming the
//! dispatcher naps 5 ms between batches instead of parking, so the readers'
//! sends do not have to wake it, and its jobs go out in bursts.
//!
//! Its counters (tweets, dispatched per pool) are kept locally and added to
//! the shared statistics every [`FLUSH_EVERY`] tweets and whenever the input
//! is empty, so a tweet costs no read-modify-write on lines the status output
//! and the supervisor read; one clock reading stamps both of a tweet's jobs.
//!
//! The pool supervisor adds and retires workers through a control channel:
//! `Add` hands the dispatcher the new inbox's sender, `Retire` makes it drop
//! it, so the worker drains its inbox and exits. Only the dispatcher holds
//! inbox senders, so when the input disconnects and it returns, every worker
//! drains and exits.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, Receiver, SendTimeoutError, Sender, TrySendError};

use super::error::Fatal;
use super::stats::CoreStats;
use crate::model::{AggMsg, Ingest, Job};
use crate::pace::{Paced, Polled};

/// The local counters are flushed at least every this many tweets.
const FLUSH_EVERY: u64 = 64;

/// How long the dispatcher pauses when every inbox of a pool is full.
const FULL_PAUSE: Duration = Duration::from_micros(200);

/// What travels in a worker's inbox: the job and when it was dispatched.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
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
        unflushed: 0,
    };
    // Paced: while tweets keep coming the dispatcher naps between batches
    // instead of parking, so the readers' sends never have to wake it.
    let mut paced = Paced::default();
    loop {
        match paced.poll(&input) {
            Polled::Msg(m) => {
                d.drain_control();
                if !d.handle(m) {
                    break;
                }
                continue;
            }
            Polled::Disconnected => break,
            Polled::Empty => d.flush(),
        }
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
                    paced.took();
                    d.drain_control();
                    if !d.handle(m) {
                        break;
                    }
                }
                Err(_) => break,
            },
        }
    }
    d.flush();
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
    /// Tweets dispatched (to both pools) not yet added to the statistics.
    unflushed: u64,
}

impl Dispatcher {
    /// Adds the local counters to the shared statistics.
    fn flush(&mut self) {
        let n = std::mem::take(&mut self.unflushed);
        if n > 0 {
            self.stats.tweets.fetch_add(n, Ordering::Relaxed);
            for p in &self.stats.pools {
                p.dispatched.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

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
                    self.stats.set_fatal(Fatal::AggregatorGone);
                    return false;
                }
                self.unflushed += 1;
                let now = Instant::now();
                let waited = self.dispatch(0, Job::Tweet(Arc::clone(&t)), now);
                // The clock is read again only when the first job had to wait.
                let now = if waited { Instant::now() } else { now };
                self.dispatch(1, Job::Tweet(t), now);
                if self.unflushed >= FLUSH_EVERY {
                    self.flush();
                }
            }
            Ingest::Kill { stream } => {
                log::debug!("kill message from stream {stream}");
                self.stats.kill_messages.fetch_add(1, Ordering::Relaxed);
                for pool in 0..2 {
                    self.dispatch(pool, Job::Kill, Instant::now());
                }
            }
        }
        true
    }

    /// Sends `job`, dispatched at `now`, to the least-loaded worker of
    /// `pool`; true when it had to wait for room.
    fn dispatch(&mut self, pool: usize, job: Job, now: Instant) -> bool {
        let mut env = Envelope {
            job,
            dispatched: now,
        };
        let mut waited = false;
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
                    return waited;
                }
                waited = true;
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
                Ok(()) => return waited,
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
                    waited = true;
                    match tx.send_timeout(e, FULL_PAUSE) {
                        Ok(()) => return waited,
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
