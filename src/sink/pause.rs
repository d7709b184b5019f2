//! Pausing the sink on demand, for database maintenance.
//!
//! The operator's switch and the writer's answer. While a pause is asked
//! for, the writer writes nothing: it drops its connection and does what it
//! does during an outage, moving the batch it held and the memory buffer to
//! the spool (fsync'd), so new records go straight to disk and a killed
//! process loses nothing; ingest goes on. Once it has done so it is *parked*.
//! On resume it leaves durable mode and drains the backlog, spool first.
//!
//! [`SinkControl::pause`] returns once the writer is parked (it finishes the
//! batch it is writing first), or after the given wait; so once it answers
//! [`PauseOutcome::Paused`], no further row is written until
//! [`SinkControl::resume`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::SinkStats;

#[derive(Debug, Default, Clone, Copy)]
struct State {
    requested: bool,
    parked: bool,
}

/// The switch shared by the control handle and the writer.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    state: Mutex<State>,
    changed: Condvar,
}

impl Pause {
    /// Whether a pause is asked for.
    pub(crate) fn is_requested(&self) -> bool {
        self.state.lock().requested
    }

    fn request(&self, on: bool) {
        self.state.lock().requested = on;
        self.changed.notify_all();
    }

    /// The writer says whether it is parked.
    pub(crate) fn set_parked(&self, on: bool) {
        self.state.lock().parked = on;
        self.changed.notify_all();
    }

    /// The writer waits up to `timeout` for a resume; returns whether it came.
    pub(crate) fn wait_resumed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        while s.requested {
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        !s.requested
    }

    fn wait_parked(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        while s.requested && !s.parked {
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        s.requested && s.parked
    }
}

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
