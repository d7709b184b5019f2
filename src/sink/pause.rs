//! Pausing the sink on demand, for database maintenance.
//!
//! The operator's switch and the writer's answer. While a pause is asked
//! for, the writer writes nothing: it drops its connection and does what it
//! does during an outage, moving the batch it held and the memory buffer to
//! the spool (fsync'd), so new records go straight to disk and a killed
//! process loses nothing; ingest goes on. Once it has done so it is *parked*.
//! On resume it leaves durable mode and drains the backlog, spool first.
//!
//! [`SinkControl::pause`](super::SinkControl::pause) returns once the writer is parked (it finishes the
//! batch it is writing first), or after the given wait; so once it answers
//! [`PauseOutcome::Paused`](super::PauseOutcome::Paused), no further row is written until
//! [`SinkControl::resume`](super::SinkControl::resume).

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

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

    pub(super) fn request(&self, on: bool) {
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

    pub(super) fn wait_parked(&self, timeout: Duration) -> bool {
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
