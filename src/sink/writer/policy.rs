//! The writer's policy: what it does next, from what it sees. Pure: no I/O and no
//! clock; the time comes in as [`Observed::now`], with the deadlines beside it
//! (the style of [`super::super::monitor`]).
//!
//! A *turn* begins with the gates, in this order; the first that applies wins:
//!
//! 1. the drain's stop point is reached (or the drain cancelled a batch): spool
//!    what is held and the memory buffer, end;
//! 2. the input is closed and nothing is left: end;
//! 3. the operator asked for a pause: spool and park (end, if the input is closed);
//! 4. the pause is over: leave it;
//! 5. a back-off after a refused write runs: wait (end past the grace);
//! 6. the breaker is half-open and no outage was seen yet: wait for the probe;
//! 7. the breaker is not closed: spool and wait (end past the grace);
//! 8. the database is back after an outage: say so;
//!
//! then the work of the turn: connect if need be, pull a batch unless one is held,
//! write it. Each of these reports its result as the next [`Last`], which decides
//! the step after it without the gates (so a batch just pulled is written at
//! once); every other step ends the turn.
//!
//! The *grace*: once the input is closed, a writer that cannot write waits at most
//! `shutdown_grace` before it leaves the rest in the spool. Its clock starts the
//! first time the writer waits with the input closed ([`Observed::closed_at`]).

use std::time::{Duration, Instant};

use crate::sink::health::BreakerState;
use crate::sink::ErrorClass;

/// What the writer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// No batch.
    Nothing,
    /// A batch without records (the pull timed out, or only unreadable spool lines).
    Empty,
    /// A batch to write.
    Records,
}

/// A failed write or connect, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    /// How the error is handled.
    pub(crate) class: ErrorClass,
    /// SQLSTATE 57014: a statement timeout, or the drain's cancel.
    pub(crate) canceled: bool,
    /// A permanent problem was named (what is wrong and how to fix it).
    pub(crate) problem: bool,
}

/// What the step before did, when it decides the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Last {
    /// A turn begins (the step before ended its turn, or none ran yet).
    Turn,
    /// The write connection was opened.
    Connected,
    /// Opening the write connection failed.
    ConnectFailed(Failure),
    /// A batch was pulled.
    Pulled,
    /// The pull found the input closed and nothing left.
    InputEnded,
    /// The write failed; the batch is still held.
    WriteFailed(Failure),
}

/// What the writer sees, read at the start of each step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    /// The time now.
    pub(crate) now: Instant,
    /// What the step before did.
    pub(crate) last: Last,
    /// The drain's stop point, once a drain began.
    pub(crate) stop_at: Option<Instant>,
    /// The drain cancelled a batch in flight.
    pub(crate) drain_cancelled: bool,
    /// How long the last committed batch took.
    pub(crate) last_write: Duration,
    /// The input is closed and nothing waits (memory, spool, handed out).
    pub(crate) finished: bool,
    /// The input is closed.
    pub(crate) closed: bool,
    /// When the grace began (the first wait with the input closed).
    pub(crate) closed_at: Option<Instant>,
    /// `shutdown_grace`.
    pub(crate) grace: Duration,
    /// The operator asks for a pause.
    pub(crate) pause_requested: bool,
    /// The writer is parked for a pause.
    pub(crate) parked: bool,
    /// When the back-off after a refused write ends.
    pub(crate) retry_at: Option<Instant>,
    /// The breaker's state.
    pub(crate) breaker: BreakerState,
    /// The writer has seen the outage (it spooled and said so).
    pub(crate) down: bool,
    /// The write connection is open.
    pub(crate) connected: bool,
    /// The batch held.
    pub(crate) held: Held,
}

/// Why the writer ends with records left in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The sink is paused.
    Paused,
    /// The database refuses writes (back-off).
    Refused,
    /// The database is down; `announce`: say so first (the outage is new).
    Down {
        /// Log that the database is unavailable.
        announce: bool,
    },
}

/// What the writer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The drain's stop point: spool the held batch and the memory buffer, end.
    Drain,
    /// Input closed and all written: fsync the spool, end.
    Finish,
    /// End with the rest in the spool (spooling what is held first, unless `Refused`).
    Leave(Why),
    /// Drop the connection, spool, park, wait for the resume.
    Pause,
    /// The pause is over: leave durable mode.
    Resume,
    /// Wait for the back-off to end at `until`.
    WaitRetry {
        /// When the back-off ends.
        until: Instant,
    },
    /// The back-off is over: leave durable mode, try again.
    RetryDue,
    /// Drop the connection and wait for the probe's verdict.
    WaitProbe,
    /// Drop the connection, spool, wait for the breaker to close.
    WaitDown {
        /// Log that the database is unavailable (the outage is new).
        announce: bool,
    },
    /// The database is back: leave durable mode, say so.
    Recovered,
    /// Open the write connection (creating and checking the schema if need be).
    Connect,
    /// Opening failed for now: trip the breaker.
    ConnectLater,
    /// Pull a batch from the buffer.
    Pull,
    /// Drop the empty batch (committing its spool lines, if any).
    Discard,
    /// Write the held batch.
    Write,
    /// The drain cancelled the write: keep the batch (the next turn spools it).
    Cancelled,
    /// A permanent problem: spool what is held, record the failure, stop.
    GiveUp,
    /// The database refuses writes for now: spool, wait with back-off.
    BackOff,
    /// The write failed (connection, timeout, schema gone): keep the batch, trip
    /// the breaker.
    Retry {
        /// The schema vanished: create it again on the next connect.
        recreate_schema: bool,
        /// A statement timeout: halve the batch size.
        shrink: bool,
    },
}

/// The policy.
pub(crate) fn next(o: &Observed) -> Step {
    match o.last {
        Last::Turn => gate(o).unwrap_or_else(|| work(o)),
        Last::Connected | Last::Pulled => work(o),
        Last::InputEnded => Step::Finish,
        Last::ConnectFailed(f) if f.problem => Step::GiveUp,
        Last::ConnectFailed(_) => Step::ConnectLater,
        Last::WriteFailed(f) => react(o, f),
    }
}

/// The gates at the start of a turn (see the module docs); `None`: to work.
fn gate(o: &Observed) -> Option<Step> {
    if let Some(stop) = o.stop_at {
        // No batch that would end after the stop point.
        if o.drain_cancelled || o.now + o.last_write.mul_f64(1.5) >= stop {
            return Some(Step::Drain);
        }
    }
    if o.held == Held::Nothing && o.finished {
        // Nothing left: end now, whatever the database's state (no grace to wait).
        return Some(Step::Finish);
    }
    if o.pause_requested {
        return Some(if o.closed {
            Step::Leave(Why::Paused)
        } else {
            Step::Pause
        });
    }
    if o.parked {
        return Some(Step::Resume);
    }
    if let Some(until) = o.retry_at {
        if o.now >= until {
            return Some(Step::RetryDue);
        }
        return Some(if grace_over(o) {
            Step::Leave(Why::Refused)
        } else {
            Step::WaitRetry { until }
        });
    }
    match o.breaker {
        BreakerState::Closed => {}
        // The first probe, or one after a failed write not yet seen as an outage:
        // it gets a wait before the grace counts, and is not announced.
        BreakerState::HalfOpen if !o.down => {
            return Some(if o.closed_at.is_some() && grace_over(o) {
                Step::Leave(Why::Down { announce: false })
            } else {
                Step::WaitProbe
            });
        }
        BreakerState::Open | BreakerState::HalfOpen => {
            let announce = !o.down;
            return Some(if grace_over(o) {
                Step::Leave(Why::Down { announce })
            } else {
                Step::WaitDown { announce }
            });
        }
    }
    if o.down {
        return Some(Step::Recovered);
    }
    if !o.connected {
        return Some(Step::Connect);
    }
    None
}

/// The work of a turn once connected: pull, drop an empty batch, or write.
fn work(o: &Observed) -> Step {
    match o.held {
        Held::Nothing => Step::Pull,
        Held::Empty => Step::Discard,
        Held::Records => Step::Write,
    }
}

/// The answer to a failed write.
fn react(o: &Observed, f: Failure) -> Step {
    if f.canceled && o.drain_cancelled {
        return Step::Cancelled;
    }
    if f.class == ErrorClass::Permanent && f.problem {
        return Step::GiveUp;
    }
    match f.class {
        ErrorClass::DiskFull | ErrorClass::Busy => Step::BackOff,
        class => Step::Retry {
            recreate_schema: class == ErrorClass::Schema,
            shrink: f.canceled,
        },
    }
}

/// Whether the input closed and the grace is over (a clock not started yet starts
/// now, so a grace of zero is over at once).
fn grace_over(o: &Observed) -> bool {
    o.closed
        && o.now
            .saturating_duration_since(o.closed_at.unwrap_or(o.now))
            >= o.grace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One time for every row (far enough from the clock's start that rows can
    /// look back).
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(|| Instant::now() + Duration::from_secs(3600))
    }

    /// A calm writer: connected, nothing held, the database up, the input open.
    fn calm() -> Observed {
        Observed {
            now: t0(),
            last: Last::Turn,
            stop_at: None,
            drain_cancelled: false,
            last_write: ms(100),
            finished: false,
            closed: false,
            closed_at: None,
            grace: Duration::from_secs(5),
            pause_requested: false,
            parked: false,
            retry_at: None,
            breaker: BreakerState::Closed,
            down: false,
            connected: true,
            held: Held::Nothing,
        }
    }

    fn failed(class: ErrorClass) -> Failure {
        Failure {
            class,
            canceled: false,
            problem: false,
        }
    }

    type Row = (&'static str, fn(&mut Observed), Step);

    fn check(rows: &[Row]) {
        let mut wrong = Vec::new();
        for (name, set, want) in rows {
            let mut o = calm();
            set(&mut o);
            let got = next(&o);
            if got != *want {
                wrong.push(format!("{name}: {got:?}, expected {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_steady_state_connects_pulls_and_writes() {
        check(&[
            ("connected, nothing held: pull", |_| {}, Step::Pull),
            (
                "no connection: connect",
                |o| o.connected = false,
                Step::Connect,
            ),
            (
                "just connected: pull",
                |o| o.last = Last::Connected,
                Step::Pull,
            ),
            (
                "just connected with a batch held: write it",
                |o| {
                    o.last = Last::Connected;
                    o.held = Held::Records;
                },
                Step::Write,
            ),
            (
                "just pulled: write at once, the gates wait for the next turn",
                |o| {
                    o.last = Last::Pulled;
                    o.held = Held::Records;
                    o.pause_requested = true;
                    o.breaker = BreakerState::Open;
                },
                Step::Write,
            ),
            (
                "pulled an empty batch: drop it",
                |o| {
                    o.last = Last::Pulled;
                    o.held = Held::Empty;
                },
                Step::Discard,
            ),
            (
                "the pull found the input ended",
                |o| o.last = Last::InputEnded,
                Step::Finish,
            ),
            (
                "input closed and drained: finish, also while the database is down",
                |o| {
                    o.closed = true;
                    o.finished = true;
                    o.breaker = BreakerState::Open;
                    o.retry_at = Some(o.now + ms(500));
                },
                Step::Finish,
            ),
            (
                "a batch held is never finished",
                |o| {
                    o.closed = true;
                    o.finished = true;
                    o.held = Held::Records;
                },
                Step::Write,
            ),
        ]);
    }

    #[test]
    fn an_outage_spools_waits_and_ends_past_the_grace() {
        check(&[
            (
                "the breaker opens: spool, say so",
                |o| o.breaker = BreakerState::Open,
                Step::WaitDown { announce: true },
            ),
            (
                "still down: no second announcement",
                |o| {
                    o.breaker = BreakerState::Open;
                    o.down = true;
                },
                Step::WaitDown { announce: false },
            ),
            (
                "a probe during the outage: still down",
                |o| {
                    o.breaker = BreakerState::HalfOpen;
                    o.down = true;
                },
                Step::WaitDown { announce: false },
            ),
            (
                "the first probe: wait for its verdict, nothing spooled",
                |o| o.breaker = BreakerState::HalfOpen,
                Step::WaitProbe,
            ),
            (
                "back up: say so before anything else",
                |o| {
                    o.down = true;
                    o.connected = false;
                    o.held = Held::Records;
                },
                Step::Recovered,
            ),
            (
                "after the recovery: reconnect, the held batch kept",
                |o| {
                    o.connected = false;
                    o.held = Held::Records;
                },
                Step::Connect,
            ),
        ]);
    }

    #[test]
    fn the_grace_period_bounds_the_wait_once_the_input_is_closed() {
        check(&[
            (
                "down, input closed within the grace: wait",
                |o| {
                    o.breaker = BreakerState::Open;
                    o.down = true;
                    o.closed = true;
                    o.closed_at = Some(o.now - ms(4999));
                },
                Step::WaitDown { announce: false },
            ),
            (
                "down, input closed for the grace: leave in the spool",
                |o| {
                    o.breaker = BreakerState::Open;
                    o.down = true;
                    o.closed = true;
                    o.closed_at = Some(o.now - ms(5000));
                },
                Step::Leave(Why::Down { announce: false }),
            ),
            (
                "a new outage with a grace of zero: announce and leave at once",
                |o| {
                    o.breaker = BreakerState::Open;
                    o.closed = true;
                    o.grace = Duration::ZERO;
                },
                Step::Leave(Why::Down { announce: true }),
            ),
            (
                "the first probe with a grace of zero: it gets one wait",
                |o| {
                    o.breaker = BreakerState::HalfOpen;
                    o.closed = true;
                    o.grace = Duration::ZERO;
                },
                Step::WaitProbe,
            ),
            (
                "the first probe past the grace: leave, unannounced",
                |o| {
                    o.breaker = BreakerState::HalfOpen;
                    o.closed = true;
                    o.closed_at = Some(o.now - ms(6000));
                },
                Step::Leave(Why::Down { announce: false }),
            ),
            (
                "back-off past the grace: leave in the spool",
                |o| {
                    o.retry_at = Some(o.now + ms(1000));
                    o.closed = true;
                    o.closed_at = Some(o.now - ms(5000));
                },
                Step::Leave(Why::Refused),
            ),
            (
                "the grace is no matter while the database takes writes",
                |o| {
                    o.closed = true;
                    o.closed_at = Some(o.now - ms(60_000));
                },
                Step::Pull,
            ),
            (
                "a closed_at left from before does not count while the input is open",
                |o| {
                    o.breaker = BreakerState::Open;
                    o.down = true;
                    o.closed_at = Some(o.now - ms(60_000));
                },
                Step::WaitDown { announce: false },
            ),
        ]);
    }

    #[test]
    fn a_pause_wins_over_an_outage_and_a_back_off() {
        check(&[
            (
                "pause asked: park",
                |o| o.pause_requested = true,
                Step::Pause,
            ),
            (
                "pause during an outage: park (the pause wins)",
                |o| {
                    o.pause_requested = true;
                    o.breaker = BreakerState::Open;
                    o.down = true;
                },
                Step::Pause,
            ),
            (
                "pause during a back-off: park",
                |o| {
                    o.pause_requested = true;
                    o.retry_at = Some(o.now + ms(800));
                },
                Step::Pause,
            ),
            (
                "paused and the input closes: leave in the spool at once",
                |o| {
                    o.pause_requested = true;
                    o.parked = true;
                    o.closed = true;
                },
                Step::Leave(Why::Paused),
            ),
            (
                "resumed: leave the pause first",
                |o| o.parked = true,
                Step::Resume,
            ),
            (
                "resumed during an outage: leave the pause, then the outage",
                |o| {
                    o.parked = true;
                    o.breaker = BreakerState::Open;
                },
                Step::Resume,
            ),
            (
                "the drain's stop point wins over the pause",
                |o| {
                    o.pause_requested = true;
                    o.stop_at = Some(o.now);
                },
                Step::Drain,
            ),
        ]);
    }

    #[test]
    fn the_drain_deadline_stops_before_a_batch_that_would_end_too_late() {
        check(&[
            (
                "room for one more batch (1.5 × the last write)",
                |o| o.stop_at = Some(o.now + ms(151)),
                Step::Pull,
            ),
            (
                "the next batch would end after the stop point: spool",
                |o| {
                    o.stop_at = Some(o.now + ms(150));
                    o.held = Held::Records;
                },
                Step::Drain,
            ),
            (
                "the drain cancelled a stuck batch: spool it, whatever the time",
                |o| {
                    o.stop_at = Some(o.now + ms(60_000));
                    o.drain_cancelled = true;
                    o.held = Held::Records;
                },
                Step::Drain,
            ),
            (
                "the stop point during an outage: spool and end",
                |o| {
                    o.stop_at = Some(o.now);
                    o.breaker = BreakerState::Open;
                    o.down = true;
                },
                Step::Drain,
            ),
            (
                "the stuck batch's write comes back cancelled: keep it for the spool",
                |o| {
                    o.held = Held::Records;
                    o.drain_cancelled = true;
                    o.last = Last::WriteFailed(Failure {
                        canceled: true,
                        ..failed(ErrorClass::Connection)
                    });
                },
                Step::Cancelled,
            ),
        ]);
    }

    #[test]
    fn failures_are_given_up_backed_off_or_retried_by_their_class() {
        check(&[
            (
                "a permanent problem: give up (what is held goes to the spool)",
                |o| {
                    o.held = Held::Records;
                    o.last = Last::WriteFailed(Failure {
                        problem: true,
                        ..failed(ErrorClass::Permanent)
                    });
                },
                Step::GiveUp,
            ),
            (
                "permanent but no problem named: retry",
                |o| o.last = Last::WriteFailed(failed(ErrorClass::Permanent)),
                Step::Retry {
                    recreate_schema: false,
                    shrink: false,
                },
            ),
            (
                "the login is refused for good: give up",
                |o| {
                    o.last = Last::ConnectFailed(Failure {
                        problem: true,
                        ..failed(ErrorClass::Permanent)
                    })
                },
                Step::GiveUp,
            ),
            (
                "cannot connect for now: trip the breaker",
                |o| o.last = Last::ConnectFailed(failed(ErrorClass::Connection)),
                Step::ConnectLater,
            ),
            (
                "statement timeout (no drain): shrink, retry",
                |o| {
                    o.last = Last::WriteFailed(Failure {
                        canceled: true,
                        ..failed(ErrorClass::Connection)
                    })
                },
                Step::Retry {
                    recreate_schema: false,
                    shrink: true,
                },
            ),
            (
                "the schema vanished: create it again",
                |o| o.last = Last::WriteFailed(failed(ErrorClass::Schema)),
                Step::Retry {
                    recreate_schema: true,
                    shrink: false,
                },
            ),
            (
                "the connection was lost: keep the batch, retry after recovery",
                |o| o.last = Last::WriteFailed(failed(ErrorClass::Connection)),
                Step::Retry {
                    recreate_schema: false,
                    shrink: false,
                },
            ),
            (
                "the server's disk is full: back off",
                |o| o.last = Last::WriteFailed(failed(ErrorClass::DiskFull)),
                Step::BackOff,
            ),
            (
                "the server failed the write: back off",
                |o| o.last = Last::WriteFailed(failed(ErrorClass::Busy)),
                Step::BackOff,
            ),
            (
                "backing off: wait",
                |o| {
                    o.retry_at = Some(o.now + ms(700));
                    o.breaker = BreakerState::Open;
                },
                Step::WaitRetry {
                    until: t0() + ms(700),
                },
            ),
            (
                "the back-off is over: try again",
                |o| o.retry_at = Some(o.now),
                Step::RetryDue,
            ),
        ]);
    }

    /// The writer's state across steps, as far as the policy sees it: what the
    /// driver does with each step, without I/O.
    fn apply(o: &mut Observed, step: Step) {
        o.last = Last::Turn;
        match step {
            Step::Connect => {
                o.connected = true;
                o.last = Last::Connected;
            }
            Step::Pull => {
                o.held = Held::Records;
                o.last = Last::Pulled;
            }
            Step::Write => o.held = Held::Nothing,
            Step::WaitDown { .. } | Step::WaitProbe | Step::WaitRetry { .. } => {
                o.connected = o.connected && !matches!(step, Step::WaitDown { .. });
                if matches!(step, Step::WaitDown { .. }) {
                    o.down = true;
                    o.held = Held::Nothing;
                }
                if o.closed {
                    o.closed_at.get_or_insert(o.now);
                }
                o.now += ms(200);
            }
            _ => {}
        }
    }

    #[test]
    fn after_a_panic_the_restarted_writer_writes_the_batch_it_held_first() {
        // A restart begins a new run (no connection, a new turn) with the batch the
        // writer held when it panicked.
        let mut o = calm();
        o.connected = false;
        o.held = Held::Records;
        let mut steps = Vec::new();
        for _ in 0..3 {
            let s = next(&o);
            steps.push(s);
            apply(&mut o, s);
        }
        assert_eq!(steps, [Step::Connect, Step::Write, Step::Pull]);
    }

    #[test]
    fn an_outage_after_the_input_closed_ends_one_grace_after_the_first_wait() {
        let mut o = calm();
        o.held = Held::Records;
        o.breaker = BreakerState::Open;
        o.closed = true;
        let start = o.now;
        let mut steps = Vec::new();
        loop {
            let s = next(&o);
            steps.push(s);
            if let Step::Leave(_) = s {
                break;
            }
            assert!(steps.len() < 100, "never left: {steps:?}");
            apply(&mut o, s);
        }
        assert_eq!(steps[0], Step::WaitDown { announce: true });
        assert_eq!(
            steps.last(),
            Some(&Step::Leave(Why::Down { announce: false }))
        );
        // 5 s of grace in waits of 200 ms: 25 waits, then the leave.
        assert_eq!(steps.len(), 26, "{steps:?}");
        assert_eq!(o.now - start, Duration::from_secs(5));
        // The breaker closes in time instead: the writer resumes.
        let mut o = calm();
        o.breaker = BreakerState::Open;
        o.closed = true;
        o.held = Held::Records;
        let first = next(&o);
        apply(&mut o, first);
        o.breaker = BreakerState::Closed;
        o.connected = false;
        let mut steps = Vec::new();
        for _ in 0..4 {
            let s = next(&o);
            steps.push(s);
            if s == Step::Recovered {
                o.down = false;
            }
            apply(&mut o, s);
        }
        assert_eq!(
            steps,
            [Step::Recovered, Step::Connect, Step::Pull, Step::Write]
        );
    }
}
