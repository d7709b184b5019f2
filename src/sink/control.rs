//! The operator's handle on the sink: pause and resume writing (the switch
//! itself and the writer's answer are [`Pause`](super::pause::Pause)).

use std::sync::Arc;
use std::time::Duration;

use super::stats::SinkStats;

/// What [`SinkControl::pause`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseOutcome {
    /// The writer is parked: nothing more is written until resumed.
    Paused,
    /// Asked for, but the writer had not parked within the wait (it is
    /// finishing a batch, or it has already ended); it parks when it can.
    Pausing,
}

/// The operator's handle on the sink: pause and resume writing.
#[derive(Debug, Clone)]
pub struct SinkControl {
    stats: Arc<SinkStats>,
}

impl SinkControl {
    pub(crate) fn new(stats: Arc<SinkStats>) -> SinkControl {
        SinkControl { stats }
    }

    /// Asks the writer to stop writing and waits up to `wait` until it has.
    pub fn pause(&self, wait: Duration) -> PauseOutcome {
        self.stats.pause.request(true);
        if self.stats.pause.wait_parked(wait) {
            PauseOutcome::Paused
        } else {
            PauseOutcome::Pausing
        }
    }

    /// Lets the writer write again; the backlog drains, spool first.
    pub fn resume(&self) {
        self.stats.pause.request(false);
    }

    /// Whether a pause is asked for.
    pub fn is_paused(&self) -> bool {
        self.stats.pause.is_requested()
    }
}
