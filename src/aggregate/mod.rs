//! Aggregator: joins each tweet with its two scores by ingest sequence number;
//! no record is emitted twice and none is lost, complete or not.
//!
//! One thread owns a map `Seq -> Pending`. A pending entry is created by whichever
//! half of the join arrives first (the tweet, or a score that overtook it) and is
//! emitted as a [`Record`] as soon as the tweet and both scores are there. An entry
//! still incomplete [`AggConfig::timeout`] after its first message is emitted with
//! the missing scores `NULL` and counted in [`AggStats::incomplete`]. The timeout is
//! measured on the aggregator's input progress, not on the wall clock
//! (`progress`): an entry expires only once every message sent within `timeout` of
//! its birth has been read, and time the aggregator spends held up (blocked in
//! `send`, the process stopped) does not count, so a stall never turns scores that
//! wait in the channel into NULLs. Scores whose
//! tweet never arrived cannot form a record and are counted in
//! [`AggStats::orphan_scores`] (and logged, rate-limited).
//!
//! Memory is bounded by what is in flight: an entry lives at most `timeout`, and
//! never more than [`AggConfig::max_pending`] entries are kept (beyond, the oldest
//! is emitted early as if it had timed out). When the input channel disconnects,
//! every pending record is emitted (incomplete ones with NULLs, counted), then the
//! output sender is dropped, which ends the sink.
//!
//! The join loop runs under `supervise::keep_alive` with the pending entries and
//! the message in hand kept outside the unwind, so a panic (a bug) loses neither:
//! the restarted loop takes that message in again first; if it panics on it once
//! more, the message goes on unjoined (a tweet with NULL scores, counted
//! incomplete; a score as an orphan), so one bad message can neither be lost nor
//! wedge the stage. A loop that keeps panicking
//! gives up for good ([`AggConfig::restart`]): the failure is recorded
//! ([`Aggregator::failure`], the pipeline then stops), what is pending is emitted,
//! and the message in hand and every later tweet go on with NULL scores until the
//! input closes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;

use crate::log_limit::LogLimiter;
use crate::model::{AggMsg, Record, ScoreKind, Seq, Tweet};
use crate::pace::Paced;
use crate::supervise::{self, StagePolicy};

mod progress;

use progress::Progress;

/// Orphan scores are logged at most this often.
const ORPHAN_LOG_EVERY: Duration = Duration::from_secs(10);
/// Stalls of the aggregator are logged at most this often.
const STALL_LOG_EVERY: Duration = Duration::from_secs(30);
/// How long the loop waits for input when nothing is pending.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// Aggregator settings.
#[derive(Debug, Clone)]
pub struct AggConfig {
    /// How long a record may wait for its missing halves (default 30 s).
    pub timeout: Duration,
    /// Most entries kept at once; beyond, the oldest is emitted early (default 1,000,000).
    pub max_pending: usize,
    /// Restarts of the join loop after a panic (a bug); beyond, it gives up for
    /// good (the pipeline then stops). Default: at most 500 restarts within 5 s,
    /// with a back-off from 10 ms to 1 s.
    pub restart: StagePolicy,
    /// Test hook, see [`LoopHook`] (default none).
    pub fault: Option<Arc<dyn LoopHook>>,
}

impl Default for AggConfig {
    fn default() -> Self {
        AggConfig {
            timeout: Duration::from_secs(30),
            max_pending: 1_000_000,
            restart: StagePolicy::default(),
            fault: None,
        }
    }
}

/// A test hook of a stage loop under `keep_alive` (the aggregator, the tap),
/// asked each time the loop takes in a message, before handling it: `true`
/// makes the loop panic, a bug that a restart does not cure while it keeps
/// answering so. The testkit's `StageFault` is one; production configurations
/// carry none.
pub trait LoopHook: Send + Sync + std::fmt::Debug {
    /// Whether the loop panics on the message of `seq`.
    fn panics(&self, seq: Seq) -> bool;
}

/// Panics if `hook` picks `seq` (`stage` names the loop in the message).
pub(crate) fn check_hook(hook: Option<&dyn LoopHook>, stage: &str, seq: Seq) {
    if hook.is_some_and(|h| h.panics(seq)) {
        panic!("test fault: {stage} panic on seq {seq}");
    }
}

/// What an incomplete record lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The sentiment score only.
    Sentiment,
    /// The engagement score only.
    Engagement,
    /// Both scores.
    Both,
}

impl Missing {
    /// Every case, in the order of [`AggSnapshot::incomplete_by`].
    pub(crate) const ALL: [Missing; 3] = [Missing::Sentiment, Missing::Engagement, Missing::Both];

    /// What is missing when the sentiment and the engagement score are (`true`)
    /// or are not; `None` when neither is.
    fn of(sentiment: bool, engagement: bool) -> Option<Missing> {
        match (sentiment, engagement) {
            (true, true) => Some(Missing::Both),
            (true, false) => Some(Missing::Sentiment),
            (false, true) => Some(Missing::Engagement),
            (false, false) => None,
        }
    }

    /// Its name, as `/metrics` labels it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Missing::Sentiment => "sentiment",
            Missing::Engagement => "engagement",
            Missing::Both => "both",
        }
    }
}

/// Counters of the aggregator, readable from any thread.
#[derive(Debug, Default)]
pub struct AggStats {
    /// Tweets received.
    pub(crate) tweets_in: AtomicU64,
    /// Scores received.
    pub(crate) scores_in: AtomicU64,
    /// Records emitted (complete or not).
    pub(crate) emitted: AtomicU64,
    /// Records emitted with at least one score missing (timeout, overflow or shutdown).
    pub(crate) incomplete: AtomicU64,
    /// Of those, by what is missing: the sentiment score only, the engagement
    /// score only, both.
    pub(crate) incomplete_by: [AtomicU64; 3],
    /// Scores whose tweet never arrived (dropped after the timeout: no record can be formed).
    pub(crate) orphan_scores: AtomicU64,
    /// A second score of the same kind, or a second tweet, for one seq (ignored).
    pub(crate) duplicates: AtomicU64,
    /// Entries currently waiting.
    pub(crate) pending: AtomicU64,
    /// Times the aggregator was held up (blocked in `send`, or the process
    /// stopped) for longer than it meant to wait; that time does not count
    /// towards the timeout.
    pub(crate) stalls: AtomicU64,
    /// Records that could not be passed on because the output was gone (never
    /// counted as emitted).
    pub(crate) lost: AtomicU64,
    /// Why the join loop gave up for good (it then passes tweets on unscored).
    failure: parking_lot::Mutex<Option<String>>,
}

/// A copy of [`AggStats`] for the status line and stats file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AggSnapshot {
    /// Tweets received from the dispatcher.
    pub tweets_in: u64,
    /// Scores received from the workers.
    pub scores_in: u64,
    /// Records sent on to the sink.
    pub emitted: u64,
    /// Records emitted with a score missing (timeout or overflow).
    pub incomplete: u64,
    /// Of those, by what is missing: the sentiment score only, the engagement
    /// score only, both.
    pub incomplete_by: [u64; 3],
    /// Scores whose tweet was already emitted or never seen.
    pub orphan_scores: u64,
    /// Tweets or scores that arrived twice for one seq.
    pub duplicates: u64,
    /// Tweets waiting for a score now.
    pub pending: u64,
    /// Times the aggregator was held up; see [`AggStats::stalls`].
    pub stalls: u64,
    /// Records that could not be passed on (the output was gone).
    pub lost: u64,
}

impl AggStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> AggSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AggSnapshot {
            tweets_in: l(&self.tweets_in),
            scores_in: l(&self.scores_in),
            emitted: l(&self.emitted),
            incomplete: l(&self.incomplete),
            incomplete_by: self.incomplete_by.each_ref().map(l),
            orphan_scores: l(&self.orphan_scores),
            duplicates: l(&self.duplicates),
            pending: l(&self.pending),
            stalls: l(&self.stalls),
            lost: l(&self.lost),
        }
    }

    /// Why the join loop failed for good, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }
}

/// The running aggregator thread.
#[derive(Debug)]
pub struct Aggregator {
    stats: Arc<AggStats>,
    handle: JoinHandle<()>,
}

impl Aggregator {
    /// Shared counters.
    pub fn stats(&self) -> Arc<AggStats> {
        Arc::clone(&self.stats)
    }

    /// Whether its thread has ended (its input disconnected and it flushed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Why the join loop failed for good, if it did (the pipeline then stops).
    pub fn failure(&self) -> Option<String> {
        self.stats.failure()
    }

    /// Whether the aggregator thread still runs.
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }

    /// Waits for the thread: it ends once `input` disconnected and every pending record
    /// was emitted.
    pub fn join(self) {
        if self.handle.join().is_err() {
            log::error!("aggregator thread panicked");
        }
    }
}

/// Starts the aggregator thread.
pub fn spawn_aggregator(
    cfg: AggConfig,
    input: Receiver<AggMsg>,
    out: Sender<Record>,
) -> std::io::Result<Aggregator> {
    let stats = Arc::new(AggStats::default());
    let st = Arc::clone(&stats);
    let handle = crate::stats::spawn_thread("aggregate", None, move || run(cfg, input, out, &st))?;
    Ok(Aggregator { stats, handle })
}

#[derive(Debug)]
struct Pending {
    tweet: Option<Arc<Tweet>>,
    sentiment: Option<Option<f64>>,
    engagement: Option<Option<f64>>,
    /// When the first half arrived, in the [`Progress`] clock's awake time;
    /// the key of its entry in the expiry queue.
    born: Duration,
}

impl Pending {
    fn complete(&self) -> bool {
        self.tweet.is_some() && self.sentiment.is_some() && self.engagement.is_some()
    }
}

/// The join state, free of channels so it can be tested directly.
#[derive(Debug, Default)]
struct Joiner {
    map: HashMap<Seq, Pending>,
    /// Entries in order of creation (timeout is constant, so also in deadline order).
    /// May hold stale seqs of entries already emitted; they are skipped.
    order: VecDeque<(Duration, Seq)>,
    /// The message being taken in ([`take_in`]), and whether this is its retry: a
    /// panic leaves it here, and the restarted loop takes it in again first, once;
    /// a message that panics on its retry too is passed on unjoined
    /// ([`pass_on`]), as it is after a give-up.
    held: Option<(AggMsg, bool)>,
}

/// Why a record leaves the joiner before it is complete.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Timeout,
    Overflow,
    Shutdown,
    /// Its message made the join loop panic twice (a bug).
    Panic,
}

struct Out<'a> {
    tx: &'a Sender<Record>,
    stats: &'a AggStats,
    /// False once the output is gone (records then can only be counted and logged).
    open: bool,
    orphan_log: LogLimiter,
}

impl Out<'_> {
    fn emit(&mut self, p: Pending, cause: Option<Cause>, seq: Seq) {
        let Some(tweet) = p.tweet else {
            let n = p.sentiment.is_some() as u64 + p.engagement.is_some() as u64;
            self.stats.orphan_scores.fetch_add(n, Ordering::Relaxed);
            if self.orphan_log.check(Instant::now()).is_some() {
                log::warn!(
                    "aggregator: {n} score(s) for seq {seq} without a tweet ({cause:?}); \
                     counted as orphan (further ones logged every 10 s)"
                );
            }
            return;
        };
        if let Some(missing) = Missing::of(p.sentiment.is_none(), p.engagement.is_none()) {
            self.stats.incomplete.fetch_add(1, Ordering::Relaxed);
            self.stats.incomplete_by[missing as usize].fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "aggregator: tweet {} (seq {seq}) emitted incomplete ({cause:?})",
                tweet.id
            );
        }
        let rec = Record {
            tweet,
            sentiment: p.sentiment.flatten(),
            engagement: p.engagement.flatten(),
        };
        if !self.open {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(rec).is_ok() {
            self.stats.emitted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            self.open = false;
            log::error!(
                "aggregator: the sink's channel is closed; records can no longer be passed on"
            );
        }
    }
}

impl Joiner {
    fn entry(&mut self, seq: Seq, now: Duration) -> &mut Pending {
        let order = &mut self.order;
        self.map.entry(seq).or_insert_with(|| {
            order.push_back((now, seq));
            Pending {
                tweet: None,
                sentiment: None,
                engagement: None,
                born: now,
            }
        })
    }

    /// Applies one message (counted on receipt, [`count_in`]); returns the seq if
    /// its entry became complete.
    fn apply(&mut self, msg: AggMsg, now: Duration, stats: &AggStats) -> Option<Seq> {
        let (seq, dup) = match msg {
            AggMsg::Tweet(t) => {
                let seq = t.seq;
                let e = self.entry(seq, now);
                let dup = e.tweet.is_some();
                if !dup {
                    e.tweet = Some(t);
                }
                (seq, dup)
            }
            AggMsg::Score { seq, kind, value } => {
                let e = self.entry(seq, now);
                let slot = match kind {
                    ScoreKind::Sentiment => &mut e.sentiment,
                    ScoreKind::Engagement => &mut e.engagement,
                };
                let dup = slot.is_some();
                if !dup {
                    *slot = Some(value);
                }
                (seq, dup)
            }
        };
        if dup {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.map.get(&seq).filter(|p| p.complete()).map(|_| seq)
    }

    /// Removes and returns the oldest entry still present, if `pred(born)` holds.
    fn pop_oldest(&mut self, pred: impl Fn(Duration) -> bool) -> Option<(Seq, Pending)> {
        while let Some(&(born, seq)) = self.order.front() {
            match self.map.get(&seq) {
                Some(p) if p.born == born => {
                    if !pred(born) {
                        return None;
                    }
                    self.order.pop_front();
                    return self.map.remove(&seq).map(|p| (seq, p));
                }
                _ => {
                    // Stale: emitted already (or re-created later with a newer entry).
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Drops stale queue entries so the queue stays bounded by the map.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(born, seq)| map.get(seq).is_some_and(|p| p.born == *born));
        }
    }
}

/// The aggregator thread: [`join_loop`] under [`supervise::keep_alive`], the
/// pending entries and the message in hand kept outside it, so a panic (a bug)
/// loses no record.
fn run(cfg: AggConfig, input: Receiver<AggMsg>, tx: Sender<Record>, stats: &AggStats) {
    let mut j = Joiner::default();
    if let Err(why) = supervise::keep_alive("aggregator", &cfg.restart, || {
        join_loop(&cfg, &input, &tx, stats, &mut j)
    }) {
        log::error!(
            "aggregator failed for good ({}); emitting what is pending, then passing tweets \
             on without their scores until the input closes",
            why.last_panic
        );
        *stats.failure.lock() = Some(why.to_string());
        let held = j.held.take().map(|(msg, _)| msg);
        flush(&tx, stats, &mut j);
        pass_through(held, &input, &tx, stats);
        return;
    }
    flush(&tx, stats, &mut j);
}

/// The seq a message is about.
fn msg_seq(msg: &AggMsg) -> Seq {
    match msg {
        AggMsg::Tweet(t) => t.seq,
        AggMsg::Score { seq, .. } => *seq,
    }
}

/// Counts a message received.
fn count_in(msg: &AggMsg, stats: &AggStats) {
    let counter = match msg {
        AggMsg::Tweet(_) => &stats.tweets_in,
        AggMsg::Score { .. } => &stats.scores_in,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Takes one message in, keeping it in `j.held` meanwhile (see [`Joiner::held`];
/// `retry`: it made the loop panic once already), and emits the record it
/// completes.
fn take_in(
    cfg: &AggConfig,
    j: &mut Joiner,
    out: &mut Out<'_>,
    msg: AggMsg,
    retry: bool,
    now: Duration,
    stats: &AggStats,
) {
    j.held = Some((msg.clone(), retry));
    check_hook(cfg.fault.as_deref(), "aggregator", msg_seq(&msg));
    if let Some(seq) = j.apply(msg, now, stats) {
        if let Some(p) = j.map.remove(&seq) {
            out.emit(p, None, seq);
        }
    }
    j.held = None;
}

/// After a give-up: the message that was in hand (`held`, counted already), then
/// every tweet still arriving, goes on at once with NULL scores (counted
/// incomplete), so no record is lost while the pipeline stops.
fn pass_through(
    held: Option<AggMsg>,
    input: &Receiver<AggMsg>,
    tx: &Sender<Record>,
    stats: &AggStats,
) {
    let mut out = Out {
        tx,
        stats,
        open: true,
        orphan_log: LogLimiter::every(ORPHAN_LOG_EVERY),
    };
    let received = input.iter().inspect(|msg| count_in(msg, stats));
    for msg in held.into_iter().chain(received) {
        pass_on(&mut out, msg, Cause::Shutdown);
    }
}

/// A message that is not joined: a tweet goes on at once with NULL scores
/// (counted incomplete); a score is counted as an orphan.
fn pass_on(out: &mut Out<'_>, msg: AggMsg, cause: Cause) {
    match msg {
        AggMsg::Tweet(t) => {
            let seq = t.seq;
            let p = Pending {
                tweet: Some(t),
                sentiment: None,
                engagement: None,
                born: Duration::ZERO,
            };
            out.emit(p, Some(cause), seq);
        }
        AggMsg::Score { .. } => {
            out.stats.orphan_scores.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Joins until the input disconnects.
fn join_loop(
    cfg: &AggConfig,
    input: &Receiver<AggMsg>,
    tx: &Sender<Record>,
    stats: &AggStats,
    j: &mut Joiner,
) {
    let mut out = Out {
        tx,
        stats,
        open: true,
        orphan_log: LogLimiter::every(ORPHAN_LOG_EVERY),
    };
    let max_pending = cfg.max_pending.max(1);
    let mut clock = Progress::new(Instant::now());
    let mut stall_log = LogLimiter::every(STALL_LOG_EVERY);
    let mut tick = |clock: &mut Progress, meant: Duration| {
        if let Some(stall) = clock.tick(Instant::now(), meant) {
            stats.stalls.fetch_add(1, Ordering::Relaxed);
            if let Some(more) = stall_log.check(Instant::now()) {
                log::info!(
                    "aggregator: held up for {:.1} s (blocked in send, or the process stopped); \
                     that time does not count towards the timeout ({more} more such stalls since \
                     the last message)",
                    stall.as_secs_f64()
                );
            }
        }
    };
    // Paced: while scores keep coming the aggregator naps between batches
    // instead of parking, so the workers' and the dispatcher's sends never
    // have to wake it.
    let mut paced = Paced::default();
    // Restarted after a panic: the message it happened on first, once; if it
    // did so on its retry too, it goes on unjoined.
    match j.held.take() {
        Some((msg, false)) => take_in(cfg, j, &mut out, msg, true, clock.now(), stats),
        Some((msg, true)) => {
            log::error!(
                "aggregator: the message of seq {} made the join loop panic twice; passing it \
                 on unjoined",
                msg_seq(&msg)
            );
            pass_on(&mut out, msg, Cause::Panic);
        }
        None => {}
    }
    loop {
        // The time spent since the last look (processing, sending) was not a wait.
        tick(&mut clock, Duration::ZERO);
        clock.sample(input.len());
        // Expire what is due, on the input's progress: what was sent is read first.
        let caught_up = clock.caught_up();
        while let Some((seq, p)) = j.pop_oldest(|born| born + cfg.timeout <= caught_up) {
            out.emit(p, Some(Cause::Timeout), seq);
        }
        while j.map.len() > max_pending {
            match j.pop_oldest(|_| true) {
                Some((seq, p)) => out.emit(p, Some(Cause::Overflow), seq),
                None => break,
            }
        }
        j.compact();
        stats.pending.store(j.map.len() as u64, Ordering::Relaxed);
        tick(&mut clock, Duration::ZERO);
        let wait = if input.is_empty() {
            j.order
                .front()
                .map(|(born, _)| (*born + cfg.timeout).saturating_sub(clock.now()))
                .unwrap_or(IDLE_WAIT)
        } else {
            Duration::ZERO
        };
        let got = paced.recv_timeout(input, wait);
        tick(&mut clock, wait);
        match got {
            Ok(msg) => {
                clock.received();
                count_in(&msg, stats);
                take_in(cfg, j, &mut out, msg, false, clock.now(), stats);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Input gone: emits everything pending, oldest first.
fn flush(tx: &Sender<Record>, stats: &AggStats, j: &mut Joiner) {
    let mut out = Out {
        tx,
        stats,
        open: true,
        orphan_log: LogLimiter::every(ORPHAN_LOG_EVERY),
    };
    let n = j.map.len();
    while let Some((seq, p)) = j.pop_oldest(|_| true) {
        out.emit(p, Some(Cause::Shutdown), seq);
    }
    stats.pending.store(0, Ordering::Relaxed);
    log::info!(
        "aggregator: input closed; flushed {n} pending entries; {} records emitted, {} incomplete",
        stats.emitted.load(Ordering::Relaxed),
        stats.incomplete.load(Ordering::Relaxed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::User;

    fn tweet(seq: Seq) -> Arc<Tweet> {
        Arc::new(Tweet::minimal(seq, "", User::minimal(1, 0)))
    }

    #[test]
    fn records_that_cannot_be_passed_on_are_lost_not_emitted() {
        let (in_tx, in_rx) = crossbeam_channel::bounded(16);
        let (out_tx, out_rx) = crossbeam_channel::bounded::<Record>(16);
        drop(out_rx); // the output is gone
        let agg = spawn_aggregator(AggConfig::default(), in_rx, out_tx).unwrap();
        let stats = agg.stats();
        for seq in 1..=3 {
            in_tx.send(AggMsg::Tweet(tweet(seq))).unwrap();
            for kind in ScoreKind::ALL {
                in_tx
                    .send(AggMsg::Score {
                        seq,
                        kind,
                        value: Some(0.0),
                    })
                    .unwrap();
            }
        }
        drop(in_tx);
        agg.join();
        let s = stats.snapshot();
        assert_eq!(s.emitted, 0, "nothing reached a sink");
        assert_eq!(s.lost, 3);
    }

    #[test]
    fn joins_in_any_order_and_counts_duplicates() {
        let st = AggStats::default();
        let mut j = Joiner::default();
        let now = Duration::ZERO;
        let s = |seq, kind| AggMsg::Score {
            seq,
            kind,
            value: Some(1.0),
        };
        assert_eq!(j.apply(s(7, ScoreKind::Engagement), now, &st), None);
        assert_eq!(j.apply(s(7, ScoreKind::Engagement), now, &st), None);
        assert_eq!(j.apply(AggMsg::Tweet(tweet(7)), now, &st), None);
        assert_eq!(j.apply(s(7, ScoreKind::Sentiment), now, &st), Some(7));
        assert_eq!(st.duplicates.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn pop_oldest_skips_stale_entries() {
        let mut j = Joiner::default();
        let t0 = Duration::ZERO;
        let st = AggStats::default();
        j.apply(AggMsg::Tweet(tweet(1)), t0, &st);
        j.apply(AggMsg::Tweet(tweet(2)), t0 + Duration::from_millis(1), &st);
        j.map.remove(&1);
        let (seq, _) = j.pop_oldest(|_| true).unwrap();
        assert_eq!(seq, 2);
        assert!(j.pop_oldest(|_| true).is_none());
        assert!(j.order.is_empty());
    }
}
