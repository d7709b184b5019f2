//! The tap between the aggregator and the sink.
//!
//! Every record passes through unchanged and in order; on the way its
//! hashtags are counted into the top-hashtags sketch that the status line
//! shows, and the record is counted for the exit summary. The loop ends when
//! the aggregator's output disconnects (its sender dropped), and drops the
//! sink's input in turn, so shutdown flows on downstream. If the sink is gone
//! it stops at once: records could no longer be written.
//!
//! The record in hand is kept outside the loop (`held`), so a panic (a bug in
//! the counting) loses it not: the restarted loop takes it in again first, and if
//! it panics on it once more, passes it on uncounted. If the loop
//! keeps panicking it gives up: the failure is recorded for
//! [`Pipeline::wait`](super::run::Pipeline::wait), which stops the pipeline, and
//! records, the one in hand first, are passed on uncounted ([`pass_through`]) so
//! none is lost meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use log::error;
use parking_lot::Mutex;

#[cfg(any(test, feature = "testkit"))]
use crate::aggregate::StageFault;
use crate::model::Record;
use crate::pace::Paced;
use crate::stats::sketch::TopHashtags;

/// Counts of the tap between the aggregator and the sink.
#[derive(Debug, Default)]
pub(super) struct TapStats {
    /// Records handed to the sink.
    records: AtomicU64,
    /// Why the tap loop gave up for good.
    failure: Mutex<Option<String>>,
}

impl TapStats {
    /// Records handed to the sink so far.
    pub(super) fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Why the tap gave up for good, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// The tap gave up for good.
    pub(super) fn fail(&self, why: String) {
        *self.failure.lock() = Some(why);
    }
}

/// Between the aggregator and the sink: counts hashtags into the sketch. The
/// record in hand stays in `held` (with whether this is its retry) until it is
/// sent, so that a panic leaves it there for the restarted loop (or
/// [`pass_through`]).
pub(super) fn tap_loop(
    input: &Receiver<Record>,
    output: &Sender<Record>,
    hashtags: &Mutex<TopHashtags>,
    stats: &TapStats,
    held: &mut Option<(Record, bool)>,
    #[cfg(any(test, feature = "testkit"))] fault: Option<&StageFault>,
) {
    // Paced, so the aggregator's sends never have to wake the tap.
    let mut paced = Paced::default();
    loop {
        let (record, retry) = match held.take() {
            Some((r, false)) => (r, true),
            Some((r, true)) => {
                error!(
                    "the tap panicked twice on the record of seq {}; passing it on uncounted",
                    r.tweet.seq
                );
                if output.send(r).is_err() {
                    error!("the sink is gone: stopping the tap");
                    return;
                }
                stats.records.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            None => match paced.recv(input) {
                Ok(r) => (r, false),
                Err(_) => return,
            },
        };
        let (record, _) = held.insert((record, retry));
        #[cfg(any(test, feature = "testkit"))]
        if let Some(f) = fault {
            f.check("tap", record.tweet.seq);
        }
        if !record.tweet.hashtags.is_empty() {
            let mut top = hashtags.lock();
            for tag in &record.tweet.hashtags {
                top.add(tag);
            }
        }
        let Some((record, _)) = held.take() else {
            continue;
        };
        if output.send(record).is_err() {
            error!("the sink is gone: stopping the tap");
            return;
        }
        stats.records.fetch_add(1, Ordering::Relaxed);
    }
}

/// After the loop gave up: the record it held, then every later one, go on to
/// the sink unchanged and uncounted in the sketch, until the input disconnects.
pub(super) fn pass_through(
    held: Option<Record>,
    input: &Receiver<Record>,
    output: &Sender<Record>,
    stats: &TapStats,
) {
    for record in held.into_iter().chain(input) {
        if output.send(record).is_err() {
            return;
        }
        stats.records.fetch_add(1, Ordering::Relaxed);
    }
}
