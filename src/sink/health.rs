//! Database health: a circuit breaker and the thread that probes the database.
//!
//! The breaker follows Vector's sink health model:
//!
//! ```text
//!            write failure / probe failure
//!   Closed ─────────────────────────────────▶ Open
//!     ▲                                         │ next probe tick
//!     │ probe ok                                ▼
//!     └──────────────────────────────────── HalfOpen ──probe failure──▶ Open
//! ```
//!
//! * **Closed** ("up"): the writer writes; the checker still probes every interval on
//!   its own connection, and trips the breaker when a probe fails.
//! * **Open** ("down"): the writer pauses (it spools what it holds, see `buffer`);
//!   at the next tick the checker moves to half-open.
//! * **HalfOpen** ("probing"): exactly one probe is in flight — only the checker
//!   probes, on a fresh connection — and its result closes or re-opens the breaker.
//!
//! The breaker starts half-open: nothing is written before the first probe succeeds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::db::connect::Db;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// The database is up; writes flow.
    Closed,
    /// The database is down; writes pause.
    Open,
    /// A single probe decides.
    HalfOpen,
}

impl BreakerState {
    /// `"up"`, `"down"` or `"probing"`, as shown in the stats.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "up",
            BreakerState::Open => "down",
            BreakerState::HalfOpen => "probing",
        }
    }
}

/// What can happen to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The writer lost its connection or timed out.
    WriteFailed,
    /// The checker's tick while open: start the single probe.
    ProbeStart,
    /// The probe reached the database.
    ProbeOk,
    /// The probe failed.
    ProbeFailed,
}

/// The pure transition function.
pub(super) fn transition(s: BreakerState, e: Event) -> BreakerState {
    use BreakerState::*;
    match (s, e) {
        (_, Event::WriteFailed) => Open,
        (_, Event::ProbeFailed) => Open,
        (Open, Event::ProbeStart) => HalfOpen,
        (s, Event::ProbeStart) => s,
        (_, Event::ProbeOk) => Closed,
    }
}

/// The shared circuit breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<BreakerState>,
    changed: Condvar,
    /// How many times it went from closed (or probing) to open.
    pub trips: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    /// A breaker in the half-open state (the first probe decides).
    pub(crate) fn new() -> Breaker {
        Breaker {
            state: Mutex::new(BreakerState::HalfOpen),
            changed: Condvar::new(),
            trips: AtomicU64::new(0),
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        *self.state.lock()
    }

    /// Applies an event; returns the new state.
    pub(crate) fn apply(&self, e: Event) -> BreakerState {
        let mut s = self.state.lock();
        let next = transition(*s, e);
        if next != *s {
            if next == BreakerState::Open && *s == BreakerState::Closed {
                self.trips.fetch_add(1, Ordering::Relaxed);
            }
            *s = next;
            self.changed.notify_all();
        }
        next
    }

    /// Waits up to `timeout` for the breaker to be closed; returns whether it is.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        while *s != BreakerState::Closed {
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        *s == BreakerState::Closed
    }
}

/// The checker thread: probes every `interval` until `stop` is set.
pub(crate) fn spawn_checker<B>(
    breaker: B,
    config: Db,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>>
where
    B: std::ops::Deref<Target = Breaker> + Send + 'static,
{
    crate::stats::spawn_thread("sink-health", None, move || {
        let mut client: Option<postgres::Client> = None;
        let mut last_error = String::new();
        while !stop.load(Ordering::Relaxed) {
            let state = breaker.state();
            if state == BreakerState::Open {
                breaker.apply(Event::ProbeStart);
            }
            match probe(&config, &mut client) {
                Ok(()) => {
                    if breaker.state() != BreakerState::Closed {
                        log::info!("sink: database reachable; breaker closed");
                        last_error.clear();
                    }
                    breaker.apply(Event::ProbeOk);
                }
                Err(e) => {
                    client = None;
                    let msg = config.describe(&e);
                    if breaker.state() == BreakerState::Closed || msg != last_error {
                        log::warn!("sink: database probe failed: {msg}; breaker open");
                    }
                    last_error = msg;
                    breaker.apply(Event::ProbeFailed);
                }
            }
            // Sleep in small steps so `stop` is seen quickly.
            let until = Instant::now() + interval;
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                std::thread::sleep((until - now).min(Duration::from_millis(50)));
            }
        }
    })
}

fn probe(config: &Db, client: &mut Option<postgres::Client>) -> Result<(), postgres::Error> {
    if client.as_ref().is_none_or_closed() {
        *client = Some(config.connect()?);
    }
    match client {
        Some(c) => c.simple_query("SELECT 1").map(|_| ()),
        None => Ok(()),
    }
}

trait ClosedExt {
    fn is_none_or_closed(&self) -> bool;
}

impl ClosedExt for Option<&postgres::Client> {
    fn is_none_or_closed(&self) -> bool {
        self.map_or(true, |c| c.is_closed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    #[test]
    fn transitions_follow_the_breaker_model() {
        assert_eq!(transition(Closed, Event::WriteFailed), Open);
        assert_eq!(transition(Closed, Event::ProbeFailed), Open);
        assert_eq!(transition(Closed, Event::ProbeStart), Closed);
        assert_eq!(transition(Open, Event::ProbeStart), HalfOpen);
        assert_eq!(transition(HalfOpen, Event::ProbeOk), Closed);
        assert_eq!(transition(HalfOpen, Event::ProbeFailed), Open);
        assert_eq!(transition(HalfOpen, Event::WriteFailed), Open);
        assert_eq!(transition(Open, Event::ProbeOk), Closed);
    }

    #[test]
    fn wait_closed_wakes_on_change_and_trips_are_counted() {
        let b = Arc::new(Breaker::new());
        assert_eq!(b.state().name(), "probing");
        assert!(!b.wait_closed(Duration::from_millis(1)));
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || b2.wait_closed(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        b.apply(Event::ProbeOk);
        assert!(t.join().unwrap());
        assert_eq!(b.apply(Event::WriteFailed), Open);
        assert_eq!(b.trips.load(Ordering::Relaxed), 1);
        assert_eq!(b.state().name(), "down");
    }
}
