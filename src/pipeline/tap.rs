//! The tap between the aggregator and the sink.
//!
//! Every record passes through unchanged and in order; on the way its
//! hashtags are counted into the top-hashtags sketch that the status line
//! shows, and the record is counted for the exit summary. The loop ends when
//! the aggregator's output disconnects (its sender dropped), and drops the
//! sink's input in turn, so shutdown flows on downstream. If the sink is gone
//! it stops at once: records could no longer be written.
//!
//! If the loop keeps panicking (a bug in the counting) it gives up: the failure
//! is recorded for [`Pipeline::wait`](super::Pipeline::wait), which stops the
//! pipeline, and records are passed on uncounted ([`pass_through`]) so none is
//! lost meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use log::error;
use parking_lot::Mutex;

use crate::model::Record;
use crate::pace::Paced;
use crate::stats::sketch::TopHashtags;

/// Counts of the tap between the aggregator and the sink.
#[derive(Debug, Default)]
pub(super) struct TapStats {
    /// Records handed to the sink.
    pub(super) records: AtomicU64,
    /// Why the tap loop gave up for good.
    pub(super) failure: Mutex<Option<String>>,
}

/// Between the aggregator and the sink: counts hashtags into the sketch.
pub(super) fn tap_loop(
    input: &Receiver<Record>,
    output: &Sender<Record>,
    hashtags: &Mutex<TopHashtags>,
    stats: &TapStats,
) {
    // Paced, so the aggregator's sends never have to wake the tap.
    let mut paced = Paced::default();
    while let Ok(record) = paced.recv(input) {
        if !record.tweet.hashtags.is_empty() {
            let mut top = hashtags.lock();
            for tag in &record.tweet.hashtags {
                top.add(tag);
            }
        }
        if output.send(record).is_err() {
            error!("the sink is gone: stopping the tap");
            return;
        }
        stats.records.fetch_add(1, Ordering::Relaxed);
    }
}

/// After the loop gave up: records go on to the sink unchanged and uncounted in
/// the sketch, until the input disconnects.
pub(super) fn pass_through(input: &Receiver<Record>, output: &Sender<Record>, stats: &TapStats) {
    for record in input {
        if output.send(record).is_err() {
            return;
        }
        stats.records.fetch_add(1, Ordering::Relaxed);
    }
}
