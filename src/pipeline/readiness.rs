//! Readiness: whether the pipeline can take tweets in and store them now,
//! and if not, every reason why.
//!
//! Ready means all of: the lexicon is loaded (the stages run only after it),
//! every stage thread is alive, the pipeline is not stopping, and records can
//! reach the database: the sink is not paused by the operator, its breaker is
//! closed (the database answers), the database does not refuse the writes
//! (`waiting`: a full disk, another server error), and the sink has neither
//! failed nor stopped. Whenever records only go to the spool, `/readyz` says so. A health endpoint that says 200 while the sink is down misleads
//! whoever routes work by it (vectordotdev/vector#4249), so the breaker's
//! state is part of readiness, not only of the metrics.

use serde::Serialize;

use crate::sink::SinkState;

/// What readiness is decided from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyInput<'a> {
    /// The lexicon was fetched and the stages were started.
    pub lexicon_loaded: bool,
    /// The pipeline is draining to a stop.
    pub stopping: bool,
    /// The operator paused the sink.
    pub paused: bool,
    /// The database as the sink's breaker sees it: `up`, `down` or `probing`
    /// ([`SinkStats::database_state`](crate::sink::SinkStats::database_state)).
    pub database: SinkState,
    /// The sink's state as people see it (`waiting`, `failed` and `stopped`
    /// count here; the breaker's part is `database`), and why.
    pub sink: (SinkState, Option<&'a str>),
    /// Each stage by name, and whether its thread runs.
    pub stages: &'a [(&'static str, bool)],
    /// With `--jetstream`: NATS cannot be reached now.
    pub nats_down: bool,
}

/// One reason the pipeline is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct NotReady {
    /// A stable code: `starting`, `stopping`, `stage_stopped`, `paused`, `nats_down`,
    /// `database_down`, `database_probing`, `database_waiting`, `sink_failed`
    /// or `sink_stopped`.
    pub reason: &'static str,
    /// The same in words, for people.
    pub detail: String,
}

/// Every reason the pipeline is not ready; empty when it is.
pub(crate) fn readiness(i: &ReadyInput<'_>) -> Vec<NotReady> {
    let mut out = Vec::new();
    let mut not = |reason, detail: String| out.push(NotReady { reason, detail });
    if !i.lexicon_loaded {
        not(
            "starting",
            "the lexicon is not loaded yet (waiting for the tweet server)".into(),
        );
    }
    if i.stopping {
        not("stopping", "the pipeline is draining to a stop".into());
    }
    for (stage, alive) in i.stages {
        if !alive {
            not(
                "stage_stopped",
                format!("the {stage} thread is not running"),
            );
        }
    }
    if i.paused {
        if let Some((reason, detail)) = sink_not_ready(SinkState::Paused) {
            not(reason, detail.into());
        }
    }
    if i.nats_down {
        not(
            "nats_down",
            "NATS is unreachable: no message is fetched and no ack is sent until it is back".into(),
        );
    }
    if let Some((reason, detail)) = sink_not_ready(i.database) {
        match i.sink {
            // The database went silent: "no answer for 10 s".
            (SinkState::Down, Some(why)) if i.database == SinkState::Down => {
                not(reason, format!("{detail} ({why})"))
            }
            _ => not(reason, detail.into()),
        }
    }
    let why = i.sink.1.unwrap_or("no reason given");
    match i.sink.0 {
        SinkState::Waiting => not(
            "database_waiting",
            format!("the database refuses writes for now ({why}); records go to the spool"),
        ),
        SinkState::Failed => not(
            "sink_failed",
            format!("the sink failed for good ({why}); records go to the spool"),
        ),
        SinkState::Stopped => not(
            "sink_stopped",
            "the sink's writer has finished; nothing more is written".into(),
        ),
        SinkState::Up | SinkState::Down | SinkState::Probing | SinkState::Paused => {}
    }
    out
}

/// Why the sink in `state` makes the pipeline not ready, if it does.
fn sink_not_ready(state: SinkState) -> Option<(&'static str, &'static str)> {
    match state {
        SinkState::Up => None,
        SinkState::Down => Some((
            "database_down",
            "the database is unreachable (breaker open); records go to the spool",
        )),
        SinkState::Probing => Some((
            "database_probing",
            "the database has not answered a probe yet (breaker half-open)",
        )),
        SinkState::Paused => Some((
            "paused",
            "the sink is paused (POST /sink/resume to write again); records go to the spool",
        )),
        // Not the breaker's states: see `ReadyInput::sink`.
        SinkState::Waiting | SinkState::Failed | SinkState::Stopped => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(stages: &'a [(&'static str, bool)]) -> ReadyInput<'a> {
        ReadyInput {
            lexicon_loaded: true,
            stopping: false,
            paused: false,
            database: SinkState::Up,
            sink: (SinkState::Up, None),
            stages,
            nats_down: false,
        }
    }

    fn reasons(i: &ReadyInput<'_>) -> Vec<&'static str> {
        readiness(i).into_iter().map(|r| r.reason).collect()
    }

    #[test]
    fn ready_only_when_everything_holds() {
        let up = [("aggregator", true), ("sink writer", true)];
        assert!(readiness(&input(&up)).is_empty());
        let down = [("aggregator", true), ("sink writer", false)];
        let r = readiness(&input(&down));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "stage_stopped");
        assert!(r[0].detail.contains("sink writer"), "{}", r[0].detail);
        let i = ReadyInput {
            paused: true,
            database: SinkState::Down,
            ..input(&up)
        };
        assert_eq!(reasons(&i), ["paused", "database_down"]);
        let i = ReadyInput {
            lexicon_loaded: false,
            database: SinkState::Probing,
            ..input(&[])
        };
        assert_eq!(reasons(&i), ["starting", "database_probing"]);
        let i = ReadyInput {
            stopping: true,
            ..input(&up)
        };
        assert_eq!(reasons(&i), ["stopping"]);
    }

    /// The reasons and details when the sink is in `state`, everything else fine:
    /// the breaker's states arrive as `database`, the others as `sink`.
    fn for_state(state: SinkState, why: Option<&str>) -> Vec<NotReady> {
        let breaker = matches!(state, SinkState::Down | SinkState::Probing);
        readiness(&ReadyInput {
            paused: state == SinkState::Paused,
            database: if breaker { state } else { SinkState::Up },
            sink: (state, why),
            ..input(&[("sink writer", true)])
        })
    }

    #[test]
    fn ready_while_the_sink_writes() {
        assert_eq!(for_state(SinkState::Up, None), []);
    }

    #[test]
    fn not_ready_while_the_database_is_down() {
        let r = for_state(SinkState::Down, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "database_down");
        assert!(r[0].detail.contains("unreachable"), "{}", r[0].detail);
    }

    #[test]
    fn not_ready_while_the_breaker_probes() {
        let r = for_state(SinkState::Probing, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "database_probing");
    }

    #[test]
    fn not_ready_while_paused() {
        let r = for_state(SinkState::Paused, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "paused");
    }

    #[test]
    fn not_ready_while_the_database_refuses_writes_naming_why() {
        let r = for_state(
            SinkState::Waiting,
            Some("the database server's disk is full (could not extend file)"),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "database_waiting");
        assert!(r[0].detail.contains("disk is full"), "{}", r[0].detail);
        assert!(r[0].detail.contains("spool"), "{}", r[0].detail);
    }

    #[test]
    fn not_ready_once_the_sink_failed_naming_why() {
        let r = for_state(
            SinkState::Failed,
            Some("the table public.tweets does not match"),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "sink_failed");
        assert!(r[0].detail.contains("public.tweets"), "{}", r[0].detail);
    }

    #[test]
    fn not_ready_once_the_writer_stopped() {
        let r = for_state(SinkState::Stopped, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "sink_stopped");
    }

    #[test]
    fn every_state_but_up_is_not_ready() {
        for state in SinkState::ALL {
            assert_eq!(
                for_state(state, Some("x")).is_empty(),
                state == SinkState::Up,
                "{}",
                state.name()
            );
        }
    }

    #[test]
    fn a_silent_database_is_named_in_the_detail() {
        let up = [("sink writer", true)];
        let i = ReadyInput {
            database: SinkState::Down,
            sink: (SinkState::Down, Some("no answer for 10 s")),
            ..input(&up)
        };
        let r = readiness(&i);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "database_down");
        assert!(
            r[0].detail.ends_with("(no answer for 10 s)"),
            "{}",
            r[0].detail
        );
    }
}
