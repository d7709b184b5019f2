//! The worker loop: one OS thread per worker, supervised in its own thread.
//!
//! A worker has a small stack and its own bounded inbox. Per message it sleeps
//! the configured [`WorkDelay`], computes its score
//! ([`sentiment`](crate::score::sentiment) or
//! [`engagement`](crate::score::engagement)) and sends an [`AggMsg::Score`] to
//! the aggregator. A [`Job::Kill`] makes it panic for real
//! (`panic_any(`[`KillPanic`]`)`).
//!
//! The loop runs inside `catch_unwind`. After a panic the same thread starts
//! the loop again on the *same inbox*, so nothing queued behind the failed
//! message is lost; the in-flight count was already fixed by the message's
//! drop guard (`Processing`). A kill consumes its message and logs one
//! `debug` line. Any other panic is logged at `error`, and the tweet it
//! happened on is retried `tweet_retries` times (default 1); if it panics
//! again its score is sent as `None` and counted in `failed`, so a poisonous
//! tweet is never retried forever and never blocks its join.
//!
//! Repeated restarts of one worker back off ([`RestartPolicy::backoff`]): the
//! first restart is immediate, each further one within `backoff_reset` of the
//! previous — without the worker having finished a message in between, i.e. a
//! crash loop — waits longer, up to `backoff_max`. A worker that did work
//! between two kills restarts at once. Every restart is recorded in the pool's
//! [`RestartWindow`](crate::supervise::RestartWindow); when it overflows the
//! worker asks the pool supervisor to restart the whole pool
//! ([`Event::Escalate`]). Kills are not recorded there: the lab sends them in
//! proportion to the rate (2 % of events, 200 kills/s at 10,000 events/s), each one
//! ends one message and cannot loop, so only unexpected panics measure a crash
//! loop.
//!
//! A pool restart happens in place: the supervisor bumps the pool's
//! generation, and each worker, before its next message, drops its restart
//! state (back-off streak, progress) and starts afresh on the same thread and
//! inbox. No thread is created, so a pool restart never adds threads.
//!
//! When its inbox has disconnected and is empty (the worker was retired, or
//! the core shuts down) the thread does not end: it reports
//! [`Event::Parked`] and waits for the supervisor to hand it a new inbox (the
//! pool grows again) or to drop its assignment channel (shutdown). So a pool
//! that shrinks and grows reuses its threads instead of creating new ones.

use std::num::NonZeroU64;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::config::{RestartPolicy, WorkerHook};
use super::delay::WorkDelay;
use super::dispatch::Envelope;
use super::stats::{CoreStats, PoolStats};
use crate::log_limit::LogLimiter;
use crate::model::{AggMsg, Job, ScoreKind, Seq};
use crate::score::{engagement, sentiment, Lexicon};
use crate::supervise::{panic_message, Backoff, KillPanic};

/// Worker → supervisor.
#[derive(Debug)]
pub(crate) enum Event {
    /// A worker's inbox disconnected and is empty: its thread is parked,
    /// waiting for a new inbox on its assignment channel.
    Parked { pool: usize, slot: usize },
    /// The pool's restart window overflowed (in `generation` of the pool).
    Escalate { pool: usize, generation: u64 },
}

/// Everything one worker thread needs.
pub(crate) struct WorkerCtx {
    pub pool: usize,
    pub kind: ScoreKind,
    pub slot: usize,
    pub inbox: Receiver<Envelope>,
    /// The next inbox after this one drained (the pool grew again); disconnects at shutdown.
    pub assign: Receiver<Receiver<Envelope>>,
    pub agg: Sender<AggMsg>,
    pub events: Sender<Event>,
    pub stats: Arc<CoreStats>,
    pub lexicon: Arc<Lexicon>,
    pub delay: WorkDelay,
    /// Timer slack of this thread (`ZERO`: the kernel's default).
    pub timer_slack: Duration,
    pub policy: RestartPolicy,
    pub fault: Option<Arc<dyn WorkerHook>>,
}

struct WorkerState {
    /// The pool generation this state belongs to (see the module documentation).
    generation: u64,
    rng: SmallRng,
    /// The tweet being processed (for the retry decision after a panic).
    current: Option<(Envelope, u32)>,
    /// A tweet to process again before reading the inbox.
    retry: Option<(Envelope, u32)>,
    backoff: Backoff,
    /// Messages finished since the last restart: a worker that made progress
    /// is not in a crash loop, so its next restart starts a new back-off streak.
    progress: u64,
    /// Logs once that the aggregator is gone.
    agg_gone: LogLimiter,
}

/// Holds one in-flight slot while a message is processed; decrements on drop,
/// also during a panic's unwinding.
struct Processing<'a> {
    pool: &'a PoolStats,
    slot: usize,
}

impl<'a> Processing<'a> {
    fn start(pool: &'a PoolStats, slot: usize) -> Processing<'a> {
        pool.inflight.set_busy(slot, true);
        Processing { pool, slot }
    }
}

impl Drop for Processing<'_> {
    fn drop(&mut self) {
        self.pool.inflight.set_busy(self.slot, false);
        self.pool.inflight.finish(self.slot);
    }
}

/// The body of a worker thread: the supervised loop on one inbox after
/// another, parked in between.
pub(crate) fn worker_main(mut ctx: WorkerCtx) {
    set_timer_slack(ctx.timer_slack);
    let pool = &ctx.stats.pools[ctx.pool];
    let mut st = WorkerState {
        generation: pool.generation.load(Ordering::Relaxed),
        rng: SmallRng::from_entropy(),
        current: None,
        retry: None,
        backoff: ctx.policy.backoff(),
        progress: 0,
        agg_gone: LogLimiter::once(),
    };
    loop {
        supervise(&ctx, &mut st);
        // The supervisor may be gone at shutdown; the assignment channel is then closed too.
        let _ = ctx.events.send(Event::Parked {
            pool: ctx.pool,
            slot: ctx.slot,
        });
        match ctx.assign.recv() {
            Ok(inbox) => ctx.inbox = inbox,
            Err(_) => return,
        }
    }
}

/// Runs the loop on the current inbox until it has drained, restarting it
/// after each panic.
fn supervise(ctx: &WorkerCtx, st: &mut WorkerState) {
    let pool = &ctx.stats.pools[ctx.pool];
    loop {
        let Err(payload) = catch_unwind(AssertUnwindSafe(|| run(ctx, st))) else {
            return;
        };
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
                panic_message(payload.as_ref())
            );
        }
        if let Some((env, attempts)) = st.current.take() {
            if attempts < ctx.policy.tweet_retries {
                st.retry = Some((env, attempts + 1));
            } else {
                give_up(ctx, st, &env);
            }
        }
        // Kills are expected, at the lab's rate: only unexpected panics count
        // towards the restart intensity.
        if !killed && pool.window.lock().record(now) {
            // The pool's current generation: the window is the pool's, and this
            // worker may not have seen a restart yet.
            let _ = ctx.events.send(Event::Escalate {
                pool: ctx.pool,
                generation: pool.generation.load(Ordering::Relaxed),
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

/// A failure to set the timer slack is logged once per process.
static SLACK_LOG: Mutex<LogLimiter> = Mutex::new(LogLimiter::once());

/// Sets the calling thread's timer slack (PR_SET_TIMERSLACK); `ZERO` leaves it.
/// The slack lets the kernel end this thread's sleeps up to `slack` late, so
/// it can fire many of the workers' thousands of sleeps a second with one
/// timer interrupt. A failure only costs that saving: logged once, the worker runs on.
fn set_timer_slack(slack: Duration) {
    let Some(ns) = NonZeroU64::new(u64::try_from(slack.as_nanos()).unwrap_or(u64::MAX)) else {
        return;
    };
    if let Err(e) = rustix::thread::set_current_timer_slack(Some(ns)) {
        if SLACK_LOG.lock().check(Instant::now()).is_some() {
            log::warn!(
                "workers: cannot set the timer slack to {slack:?} ({e}); sleeping with the default"
            );
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
    seq: Seq,
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
        if st.agg_gone.check(Instant::now()).is_some() {
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

/// Processes the inbox until it has disconnected and is empty.
fn run(ctx: &WorkerCtx, st: &mut WorkerState) {
    let pool = &ctx.stats.pools[ctx.pool];
    let mut waiting = Select::new_biased();
    waiting.recv(&ctx.inbox);
    loop {
        let (env, attempts) = match st.retry.take() {
            Some(r) => {
                // In flight again: the panic's guard already finished it once.
                pool.inflight.start(ctx.slot);
                r
            }
            // A `Select` rather than `recv()` (which a one-arm `select!` becomes):
            // on an empty channel `recv()` spins and calls sched_yield several
            // times before it parks, a large share of the CPU of thousands of
            // mostly idle workers; `Select::select` tries once and parks.
            None => match waiting.select().recv(&ctx.inbox) {
                Ok(env) => (env, 0),
                Err(_) => return,
            },
        };
        let generation = pool.generation.load(Ordering::Relaxed);
        if generation != st.generation {
            // The pool restarted: this worker starts afresh, in place.
            log::debug!(
                "{} worker {}: pool restart; fresh restart state",
                ctx.kind.name(),
                ctx.slot
            );
            st.generation = generation;
            st.backoff = ctx.policy.backoff();
            st.progress = 0;
        }
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
                // After `Core::hurry` (the drain's deadline is near) what is left is
                // scored at once rather than left unscored.
                if !pause.is_zero() && !ctx.stats.hurry.load(Ordering::Relaxed) {
                    std::thread::sleep(pause);
                }
                if ctx.fault.as_ref().is_some_and(|f| f.panics(ctx.kind, &t)) {
                    panic!("injected fault on tweet seq {}", t.seq);
                }
                let value = match ctx.kind {
                    ScoreKind::Sentiment => Some(sentiment(&t.text, &ctx.lexicon)),
                    ScoreKind::Engagement => engagement(&t),
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
