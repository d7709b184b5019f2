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
    /// Why it is open when the database went silent ("no answer for 10 s");
    /// cleared by the next probe that gets an answer.
    reason: Mutex<Option<String>>,
    /// Since when the writer waits for the database (a connect or a batch).
    writer_since: Mutex<Option<Instant>>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

/// The reason shown while the database gives no answer for `timeout`.
pub(crate) fn silence_reason(timeout: Duration) -> String {
    let s = timeout.as_secs_f64();
    if s.fract() == 0.0 {
        format!("no answer for {s:.0} s")
    } else {
        format!("no answer for {s:.1} s")
    }
}

/// Marks the writer as waiting for the database while it lives (see
/// [`Breaker::writer_waits`]).
#[derive(Debug)]
pub(crate) struct WriterWait<'a>(&'a Breaker);

impl Drop for WriterWait<'_> {
    fn drop(&mut self) {
        *self.0.writer_since.lock() = None;
    }
}

impl Breaker {
    /// A breaker in the half-open state (the first probe decides).
    pub(crate) fn new() -> Breaker {
        Breaker {
            state: Mutex::new(BreakerState::HalfOpen),
            changed: Condvar::new(),
            trips: AtomicU64::new(0),
            reason: Mutex::new(None),
            writer_since: Mutex::new(None),
        }
    }

    /// Why the breaker is open, when the database went silent.
    pub(crate) fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }

    /// The database answered (if only to refuse): no longer silent.
    pub(crate) fn clear_reason(&self) {
        *self.reason.lock() = None;
    }

    /// The database gave no answer for the deadline: open the breaker with `why`.
    /// Returns whether this is news (the reason was not set yet).
    pub(crate) fn silent(&self, why: String) -> bool {
        let news = {
            let mut r = self.reason.lock();
            let news = r.is_none();
            *r = Some(why);
            news
        };
        self.apply(Event::ProbeFailed);
        news
    }

    /// The writer waits for the database (connects or writes a batch) until the
    /// guard is dropped; the checker's watchdog looks at how long.
    pub(crate) fn writer_waits(&self) -> WriterWait<'_> {
        *self.writer_since.lock() = Some(Instant::now());
        WriterWait(self)
    }

    /// Since when the writer waits for the database, if it does.
    pub(crate) fn writer_since(&self) -> Option<Instant> {
        *self.writer_since.lock()
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        *self.state.lock()
    }

    /// Applies an event; returns the new state.
    pub(crate) fn apply(&self, e: Event) -> BreakerState {
        if e == Event::ProbeOk {
            *self.reason.lock() = None;
        }
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

/// What the checker needs to know.
#[derive(Debug, Clone)]
pub(crate) struct CheckerConfig {
    /// How to connect.
    pub(crate) db: Db,
    /// Time between probes.
    pub(crate) interval: Duration,
    /// Longest silence of a probe or of the writer before the breaker opens.
    pub(crate) db_timeout: Duration,
}

/// A probe running on its own thread, so a database that answers nothing holds
/// neither the checker nor the watchdog.
struct InFlight {
    since: Instant,
    done: crossbeam_channel::Receiver<(Option<postgres::Client>, Result<(), String>)>,
    /// The silence of this probe was reported.
    reported: bool,
}

/// The checker thread: probes every `interval` until `stop` is set, and watches
/// for silence: a probe or a writer's connect or batch that has no answer after
/// `db_timeout` opens the breaker with the reason "no answer for N s" (said once
/// per silence). A probe is never started while another is in flight.
pub(crate) fn spawn_checker<B>(
    breaker: B,
    cfg: CheckerConfig,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>>
where
    B: std::ops::Deref<Target = Breaker> + Send + 'static,
{
    crate::stats::spawn_thread("sink-health", None, move || {
        let mut client: Option<postgres::Client> = None;
        let mut last_error = String::new();
        let mut in_flight: Option<InFlight> = None;
        let mut next_probe = Instant::now();
        // The writer's wait whose silence was reported.
        let mut writer_reported: Option<Instant> = None;
        let why = silence_reason(cfg.db_timeout);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if in_flight.is_none() && now >= next_probe {
                // While the database is silent the breaker stays open (`down`, with
                // the reason) during the probes; otherwise the probe half-opens it.
                if breaker.state() == BreakerState::Open && breaker.reason().is_none() {
                    breaker.apply(Event::ProbeStart);
                }
                match start_probe(&cfg, client.take()) {
                    Ok(p) => in_flight = Some(p),
                    Err(e) => log::warn!("sink: cannot start a database probe: {e}"),
                }
                next_probe = now + cfg.interval;
            }
            if let Some(p) = in_flight.as_mut() {
                match p.done.recv_timeout(Duration::from_millis(50)) {
                    Ok((c, res)) => {
                        let silent = res.is_err() && p.since.elapsed() >= cfg.db_timeout;
                        in_flight = None;
                        client = c;
                        if silent {
                            // Its own deadline ended it: the silence already said.
                            if breaker.silent(why.clone()) {
                                log::info!("sink: the database gave no answer to the health probe; {why}; breaker open");
                            }
                            last_error = why.clone();
                        } else {
                            judge(&breaker, res, &mut last_error);
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if !p.reported && p.since.elapsed() >= cfg.db_timeout {
                            p.reported = true;
                            if breaker.silent(why.clone()) {
                                log::info!(
                                    "sink: the database gave no answer for {:.1} s (health \
                                     probe); {why}; breaker open, records go to the spool",
                                    p.since.elapsed().as_secs_f64()
                                );
                            }
                            last_error = why.clone();
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => in_flight = None,
                }
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(since) = breaker.writer_since() {
                if writer_reported != Some(since) && since.elapsed() >= cfg.db_timeout {
                    writer_reported = Some(since);
                    if breaker.silent(why.clone()) {
                        log::info!(
                            "sink: the database gave no answer for {:.1} s (the writer's \
                             batch or connect); {why}; breaker open, records go to the spool",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    last_error = why.clone();
                }
            }
        }
    })
}

/// Starts one probe on a thread of its own, with the connection of the last one.
fn start_probe(cfg: &CheckerConfig, client: Option<postgres::Client>) -> std::io::Result<InFlight> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let db = cfg.db.clone();
    let timeout = cfg.db_timeout;
    std::thread::Builder::new()
        .name("sink-probe".into())
        .spawn(move || {
            let mut client = client;
            let res = probe(&db, &mut client, timeout).map_err(|e| db.describe(&e));
            if res.is_err() {
                client = None;
            }
            // The checker may have stopped: then nobody waits for the answer.
            let _ = tx.send((client, res));
        })?;
    Ok(InFlight {
        since: Instant::now(),
        done: rx,
        reported: false,
    })
}

/// Applies a probe's result to the breaker, saying what changed.
fn judge(breaker: &Breaker, res: Result<(), String>, last_error: &mut String) {
    match res {
        Ok(()) => {
            if breaker.state() != BreakerState::Closed {
                log::info!("sink: database reachable; breaker closed");
                last_error.clear();
            }
            breaker.apply(Event::ProbeOk);
        }
        Err(msg) => {
            // An answer, though a refusal: no longer silent.
            breaker.clear_reason();
            if breaker.state() == BreakerState::Closed || msg != *last_error {
                log::warn!("sink: database probe failed: {msg}; breaker open");
            }
            *last_error = msg;
            breaker.apply(Event::ProbeFailed);
        }
    }
}

/// One probe: connects if need be, then an empty query that must be answered
/// within `timeout`.
fn probe(
    config: &Db,
    client: &mut Option<postgres::Client>,
    timeout: Duration,
) -> Result<(), postgres::Error> {
    if client.as_ref().is_none_or_closed() {
        *client = Some(config.connect()?);
    }
    match client {
        Some(c) => c.is_valid(timeout),
        None => Ok(()),
    }
}

trait ClosedExt {
    fn is_none_or_closed(&self) -> bool;
}

impl ClosedExt for Option<&postgres::Client> {
    fn is_none_or_closed(&self) -> bool {
        self.is_none_or(|c| c.is_closed())
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
    fn silence_opens_the_breaker_with_its_reason_until_an_answer() {
        assert_eq!(
            silence_reason(Duration::from_secs(10)),
            "no answer for 10 s"
        );
        assert_eq!(
            silence_reason(Duration::from_millis(2500)),
            "no answer for 2.5 s"
        );
        let b = Breaker::new();
        b.apply(Event::ProbeOk);
        assert!(
            b.silent(silence_reason(Duration::from_secs(10))),
            "news the first time"
        );
        assert!(
            !b.silent(silence_reason(Duration::from_secs(10))),
            "said once"
        );
        assert_eq!(b.state(), Open);
        assert_eq!(b.trips.load(Ordering::Relaxed), 1);
        assert_eq!(b.reason().as_deref(), Some("no answer for 10 s"));
        b.apply(Event::ProbeOk);
        assert_eq!((b.state(), b.reason()), (Closed, None));
        assert!(b.writer_since().is_none());
        {
            let _w = b.writer_waits();
            assert!(b.writer_since().is_some());
        }
        assert!(b.writer_since().is_none(), "the wait ends with its guard");
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
