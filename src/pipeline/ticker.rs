//! The status ticker: once a second it takes a [`Snapshot`] of every stage,
//! appends its [`Status`] view ([`status_of`]) to the stats file, and draws
//! it on stderr.
//!
//! On a terminal the status is two lines (figures, then top hashtags) redrawn
//! in place, each cut to the terminal's width so they never wrap; elsewhere
//! it is one plain line a second, so a log file reads as a time series. The
//! logger erases the drawn lines before it writes ([`erase_status_lines`]),
//! so log lines and the status never overwrite each other.
//!
//! Each status is also recorded in the live history ([`crate::stats::history`])
//! that the dashboard charts.
//!
//! The ticker also watches the sink's state and says once, in words, when
//! PostgreSQL becomes unreachable (what happens to the records meanwhile and
//! how to check the server), once when it is reachable but refuses writes (its
//! disk is full …, with the server's reason), and once when it is back. A sink
//! that failed for good is reported by `Pipeline::wait`, not here.
//!
//! Before the pipeline runs, while the lexicon fetch waits for the server,
//! [`wait_for_server`] shows the same status with `waiting for server` and
//! says in words, within 2 s and then every 15 s, which URL does not answer
//! and why.
//!
//! A stats file that cannot be written is given up after one warning; the
//! pipeline goes on. The pure formatting lives in [`crate::stats::status`].

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::error::PipelineError;
use super::probes::{Probes, WAITING_FOR_SERVER};
use super::snapshot::Snapshot;
use crate::log_limit::LogLimiter;
use crate::score::Lexicon;
use crate::shutdown::Shutdown;
use crate::sink::{SinkState, SinkStats};
use crate::source::{FetchProgress, SourceError};
use crate::stats::status::{fit, RateMeter, Status};

/// Whether the two status lines are on the terminal now (the cursor at the end of the second).
static STATUS_DRAWN: AtomicBool = AtomicBool::new(false);
/// Erases the two status lines and leaves the cursor at the start of the first.
const ERASE_STATUS: &str = "\r\x1b[2K\x1b[1A\r\x1b[2K";

/// Erases the status lines if they are drawn, so that a log line written next
/// takes their place; the ticker draws them again at its next tick.
pub(crate) fn erase_status_lines(out: &mut impl Write) -> std::io::Result<()> {
    if STATUS_DRAWN.swap(false, Ordering::SeqCst) {
        write!(out, "{ERASE_STATUS}")?;
    }
    Ok(())
}

/// Rate meters of a status reader (rates are differences between two reads).
#[derive(Debug, Clone, Default)]
pub struct StatusMeters {
    rates_in: [RateMeter; 2],
    rate_out: RateMeter,
    rates_out: [RateMeter; 2],
    /// Each pool's failed thread creations at the previous read.
    spawn_failures: [u64; 2],
}

/// Creates (truncates) the stats file.
pub(super) fn create_stats_file(path: &Path) -> Result<BufWriter<File>, PipelineError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| PipelineError::StatsFile {
            path: path.to_path_buf(),
            source,
        })
}

/// The ticker's loop: one status a second until `done`, then a last one.
/// `line`: show the status on stderr.
pub(super) fn status_loop(
    view: Probes,
    mut stats_file: Option<BufWriter<File>>,
    line: bool,
    done: &Shutdown,
) {
    let terminal = line && std::io::stderr().is_terminal();
    let mut meters = StatusMeters::default();
    // Prime the rate meters so the first line shows real rates.
    let now = Instant::now();
    let _ = status_of(&view.snapshot(now), now, &mut meters);
    let mut next = Instant::now() + Duration::from_secs(1);
    // The sink state of the previous tick, to speak once per change.
    let mut was = SinkState::Up;
    loop {
        let finished = done.sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_secs(1);
        let now = Instant::now();
        let snapshot = view.snapshot(now);
        let state = snapshot.sink.sink_state;
        say_sink_change(&view, was, state, snapshot.sink.sink_reason.as_deref());
        was = state;
        let status = status_of(&snapshot, now, &mut meters);
        view.live.lock().record(status.clone());
        show(&status, &mut stats_file, line, terminal);
        if finished {
            if terminal && STATUS_DRAWN.swap(false, Ordering::SeqCst) {
                eprintln!();
            }
            return;
        }
    }
}

/// Says once, in words, that PostgreSQL became unreachable, refuses writes,
/// or is back (the sink went from `was` to `now`).
fn say_sink_change(view: &Probes, was: SinkState, now: SinkState, reason: Option<&str>) {
    match now {
        SinkState::Down if was != SinkState::Down => warn!(
            "PostgreSQL at {} is unreachable{}: records are kept in memory and spilled to {}, \
             and written as soon as it is back. Is it running? Check with \
             `pg_isready -h <host> -p <port>`, or point --database-url / DATABASE_URL at it.",
            view.database,
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            view.spool_dir.display()
        ),
        SinkState::Waiting if was != SinkState::Waiting => warn!(
            "PostgreSQL at {} is reachable but refuses writes for now: {}",
            view.database,
            reason.unwrap_or_default()
        ),
        SinkState::Up if matches!(was, SinkState::Down | SinkState::Waiting) => {
            info!("PostgreSQL at {} is back: writing", view.database);
        }
        // Probing, paused, failed and stopped are shown, not said: the breaker
        // probes on its own, the operator paused, and `Pipeline::wait`
        // reports a failure.
        SinkState::Up
        | SinkState::Down
        | SinkState::Waiting
        | SinkState::Probing
        | SinkState::Paused
        | SinkState::Failed
        | SinkState::Stopped => {}
    }
}

/// Appends `status` to the stats file (given up after a failed write) and,
/// with `line`, shows it on stderr.
fn show(status: &Status, stats_file: &mut Option<BufWriter<File>>, line: bool, terminal: bool) {
    if let Some(f) = stats_file.as_mut() {
        if let Err(e) = writeln!(f, "{}", status.json()).and_then(|_| f.flush()) {
            warn!("cannot write the stats file: {e}; no more stats will be written");
            *stats_file = None;
        }
    }
    if line {
        if terminal {
            draw(status);
        } else {
            eprintln!("{}", status.line());
        }
    }
}

/// No answer for this long is worth saying even before an attempt failed.
const FIRST_WORD_AFTER: Duration = Duration::from_secs(2);
/// The message about a server that does not answer repeats this often.
const REPEAT_WAIT_MESSAGE: Duration = Duration::from_secs(15);

/// When to tell the user that the server does not answer: at the first failed
/// attempt or [`FIRST_WORD_AFTER`] without an answer, whichever comes first,
/// then every [`REPEAT_WAIT_MESSAGE`]. Pure: the caller passes the time.
#[derive(Debug)]
pub(super) struct ServerWaitReport {
    started: Instant,
    limiter: LogLimiter,
}

impl ServerWaitReport {
    pub(super) fn new(started: Instant) -> ServerWaitReport {
        ServerWaitReport {
            started,
            limiter: LogLimiter::every(REPEAT_WAIT_MESSAGE),
        }
    }

    /// Whether to speak at `now`, given how many attempts have failed.
    pub(super) fn due(&mut self, now: Instant, failed: u64) -> bool {
        if failed == 0 && now.saturating_duration_since(self.started) < FIRST_WORD_AFTER {
            return false;
        }
        self.limiter.check(now).is_some()
    }
}

/// What the wait for the server found.
pub(super) enum ServerWait {
    /// The fetch ended (with a lexicon or an error).
    Answered(Result<Lexicon, SourceError>),
    /// `shutdown` was triggered first.
    Stopped,
    /// The fetch thread ended without an answer (it panicked).
    Vanished,
}

/// Waits for the lexicon fetch running on another thread, so that Ctrl-C is
/// seen within 100 ms even while an HTTP request hangs. Meanwhile it says, on
/// the schedule of [`ServerWaitReport`], that the server at `url` does not
/// answer, and shows the status ([`WAITING_FOR_SERVER`], the sink's state)
/// once a second on stderr (with `line`) and in the stats file.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub(super) fn wait_for_server(
    fetched: &Receiver<Result<Lexicon, SourceError>>,
    progress: &FetchProgress,
    url: &str,
    started: Instant,
    sink: &SinkStats,
    stats_file: &mut Option<BufWriter<File>>,
    line: bool,
    shutdown: &Shutdown,
) -> ServerWait {
    let terminal = line && std::io::stderr().is_terminal();
    let mut report = ServerWaitReport::new(Instant::now());
    let mut meters = StatusMeters::default();
    let mut next_status = Instant::now() + Duration::from_secs(1);
    loop {
        match fetched.recv_timeout(Duration::from_millis(100)) {
            Ok(answer) => return ServerWait::Answered(answer),
            Err(RecvTimeoutError::Disconnected) => return ServerWait::Vanished,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if shutdown.is_triggered() {
            return ServerWait::Stopped;
        }
        let now = Instant::now();
        let (failed, last_error) = progress.failures();
        if report.due(now, failed) {
            let what = match last_error {
                Some(e) if failed > 0 => format!("attempt {failed} failed: {e}"),
                _ => format!(
                    "no answer after {:.0} s",
                    now.saturating_duration_since(report.started).as_secs_f64()
                ),
            };
            warn!("waiting for the server at {url}: {what}; retrying (Ctrl-C stops)");
        }
        if now >= next_status {
            next_status += Duration::from_secs(1);
            let t = now.saturating_duration_since(started).as_secs_f64();
            let snapshot = Snapshot::before_start(t, WAITING_FOR_SERVER, sink.snapshot());
            show(
                &status_of(&snapshot, now, &mut meters),
                stats_file,
                line,
                terminal,
            );
        }
    }
}

/// Redraws the two status lines in place on the terminal.
fn draw(status: &Status) {
    let width = terminal_size::terminal_size_of(std::io::stderr())
        .map_or(160, |(w, _)| usize::from(w.0).saturating_sub(1).max(20));
    let erase = if STATUS_DRAWN.load(Ordering::SeqCst) {
        ERASE_STATUS
    } else {
        ""
    };
    eprint!(
        "{erase}{}\n{}",
        fit(&status.figures(), width),
        fit(&status.tags(), width)
    );
    STATUS_DRAWN.store(true, Ordering::SeqCst);
}

/// The status line's view of `snapshot`; rates are over the time since the
/// previous call with the same `meters`. Before the stages run it shows the
/// time, the ingest state and the sink's state only.
pub(super) fn status_of(snapshot: &Snapshot, now: Instant, meters: &mut StatusMeters) -> Status {
    let sink = &snapshot.sink;
    let mut status = Status {
        t: snapshot.t,
        ingest: snapshot.ingest.to_string(),
        sink: sink.sink_state.to_string(),
        sink_reason: sink.sink_reason.clone(),
        ..Status::default()
    };
    let Some(up) = &snapshot.upstream else {
        return status;
    };
    for (i, s) in up.sources.iter().enumerate() {
        status.rate_in_streams[i] = meters.rates_in[i].rate(now, s.tweets);
    }
    status.rate_in = status.rate_in_streams.iter().sum();
    let sources = up.sources_total();
    status.kills = sources.kills;
    status.ingest_waits = sources.waits;
    status.memory_used = snapshot.memory_used;
    status.memory_limit = snapshot.memory_limit;
    let (sentiment, engagement) = (&up.core.sentiment, &up.core.engagement);
    status.sentiment_workers = sentiment.workers;
    status.engagement_workers = engagement.workers;
    status.sentiment_target = sentiment.target;
    status.engagement_target = engagement.target;
    // A pool short of its target whose thread creation failed since the
    // previous read (the supervisor tries again at each of its ticks).
    let [s_failed, e_failed] = [sentiment, engagement].map(|p| p.spawn_failures);
    let seen = std::mem::replace(&mut meters.spawn_failures, [s_failed, e_failed]);
    status.sentiment_spawn_failed = s_failed > seen[0];
    status.engagement_spawn_failed = e_failed > seen[1];
    status.in_flight = up.in_flight();
    status.restarts = up.restarts();
    status.batch_size = sink.batch_size as usize;
    status.write_ms = sink.last_write_ms;
    status.buffered = sink.buffered;
    status.spilled = sink.spilled;
    status.spool_bytes = sink.spool_bytes;
    status.written_tweets = sink.written_tweets;
    status.written_users = sink.written_users;
    status.committed = sink.records_committed;
    status.rate_out = meters.rate_out.rate(now, sink.records_committed);
    for (i, meter) in meters.rates_out.iter_mut().enumerate() {
        status.rate_out_streams[i] = meter.rate(now, sink.committed_streams[i]);
    }
    status.top_hashtags = snapshot.top_hashtags.clone();
    status.jetstream = snapshot.jetstream.clone();
    status.merged_top_hashtags = snapshot.merged_top_hashtags.clone();
    status
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::Upstream;
    use super::*;
    use crate::engine::{CoreSnapshot, PoolSnapshot};
    use crate::sink::SinkSnapshot;

    /// A snapshot whose sentiment pool has 40 of its 52 workers after
    /// `failures` failed thread creations; the engagement pool is full.
    fn short_pool(failures: u64) -> Snapshot {
        let pool = |workers, spawn_failures| PoolSnapshot {
            workers,
            target: 52,
            spawn_failures,
            ..PoolSnapshot::default()
        };
        Snapshot {
            upstream: Some(Upstream {
                sources: Default::default(),
                core: CoreSnapshot {
                    sentiment: pool(40, failures),
                    engagement: pool(52, 0),
                    ..CoreSnapshot::default()
                },
                aggregate: Default::default(),
                records: 0,
            }),
            ..Snapshot::before_start(3.0, "up", SinkSnapshot::default())
        }
    }

    #[test]
    fn a_pool_short_of_its_target_shows_spawn_failed_while_its_spawns_fail() {
        let mut meters = StatusMeters::default();
        let now = Instant::now();
        let figures = |failures, meters: &mut StatusMeters| {
            status_of(&short_pool(failures), now, meters).figures()
        };
        let f = figures(3, &mut meters);
        assert!(f.contains("│ workers S40/52 (spawn failed) E52 │"), "{f}");
        // No new failure since the previous status: the pool is short for
        // another reason (it is growing), and says no more.
        let f = figures(3, &mut meters);
        assert!(f.contains("│ workers S40 E52 │"), "{f}");
        let f = figures(7, &mut meters);
        assert!(f.contains("│ workers S40/52 (spawn failed) E52 │"), "{f}");
    }

    #[test]
    fn the_server_wait_is_named_at_the_first_failure_then_every_15_s() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = ServerWaitReport::new(t0);
        assert!(r.due(t0, 1), "first failure: at once");
        assert!(!r.due(t0 + s(1), 2));
        assert!(!r.due(t0 + s(14), 5));
        assert!(r.due(t0 + s(15), 6), "again within 30 s");
        assert!(!r.due(t0 + s(29), 7));
        assert!(r.due(t0 + s(30), 8));
    }

    #[test]
    fn a_server_that_never_answers_is_named_after_2_s() {
        let t0 = Instant::now();
        let mut r = ServerWaitReport::new(t0);
        assert!(!r.due(t0 + Duration::from_millis(1900), 0));
        assert!(r.due(t0 + Duration::from_secs(2), 0), "within 5 s");
        assert!(!r.due(t0 + Duration::from_secs(16), 0));
        assert!(r.due(t0 + Duration::from_secs(17), 0));
    }
}
