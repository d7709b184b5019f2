//! The status ticker: once a second it reads every stage's counters into a
//! [`Status`], appends it to the stats file, and draws it on stderr.
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

use super::{PipelineError, Probes};
use crate::log_limit::LogLimiter;
use crate::score::Lexicon;
use crate::shutdown::Shutdown;
use crate::sink::SinkStats;
use crate::source::{FetchProgress, SourceError};
use crate::stats::status::{fit, JetStreamStatus, RateMeter, Status, TagCount};

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
    let _ = build_status(&view, Instant::now(), &mut meters);
    let mut next = Instant::now() + Duration::from_secs(1);
    // The sink state of the previous tick, to speak once per change.
    let mut was = String::from("up");
    loop {
        let finished = done.sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_secs(1);
        let now = Instant::now();
        let status = build_status(&view, now, &mut meters);
        let state = status.sink.as_str();
        if state == "down" && was != "down" {
            warn!(
                "PostgreSQL at {} is unreachable: records are kept in memory and spilled to {}, \
                 and written as soon as it is back. Is it running? Check with \
                 `pg_isready -h <host> -p <port>`, or point --database-url / DATABASE_URL at it.",
                view.database,
                view.spool_dir.display()
            );
        } else if state == "waiting" && was != "waiting" {
            let why = view.sink.snapshot().sink_reason.unwrap_or_default();
            warn!(
                "PostgreSQL at {} is reachable but refuses writes for now: {why}",
                view.database
            );
        } else if state == "up" && (was == "down" || was == "waiting") {
            info!("PostgreSQL at {} is back: writing", view.database);
        }
        was = status.sink.clone();
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

/// The ingest state once the readers were told to stop.
const INGEST_STOPPED: &str = "stopped";
/// The ingest state while the readers read.
const INGEST_UP: &str = "up";
/// The ingest state while the lexicon fetch waits for the server, or while no
/// stream is connected.
pub(super) const WAITING_FOR_SERVER: &str = "waiting for server";

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
            let status = Status {
                t: now.saturating_duration_since(started).as_secs_f64(),
                ingest: WAITING_FOR_SERVER.to_string(),
                sink: sink.snapshot().sink_state.to_string(),
                ..Status::default()
            };
            show(&status, stats_file, line, terminal);
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

/// The status now, from every stage's counters; rates are over the time since
/// the previous call with the same `meters`.
pub(super) fn build_status(view: &Probes, now: Instant, meters: &mut StatusMeters) -> Status {
    let mut status = Status {
        t: now.saturating_duration_since(view.started).as_secs_f64(),
        ..Status::default()
    };
    for (i, s) in view.sources.iter().enumerate().take(2) {
        let snap = s.snapshot();
        status.rate_in_streams[i] = meters.rates_in[i].rate(now, snap.tweets);
        status.kills += snap.kills;
    }
    status.rate_in = status.rate_in_streams.iter().sum();
    let connected: u64 = view
        .sources
        .iter()
        .map(|s| s.connected.load(Ordering::Relaxed))
        .sum();
    status.ingest = match view.budget.waiting() {
        _ if view.stopping.is_triggered() => INGEST_STOPPED.to_string(),
        Some(why) => why.name().to_string(),
        None if connected == 0 => WAITING_FOR_SERVER.to_string(),
        None => INGEST_UP.to_string(),
    };
    status.ingest_waits = view
        .sources
        .iter()
        .map(|s| s.waits.load(Ordering::Relaxed))
        .sum();
    status.memory_used = view.budget.used();
    status.memory_limit = view.budget.limit();
    let core = view.core.snapshot();
    status.sentiment_workers = core.sentiment.workers;
    status.engagement_workers = core.engagement.workers;
    status.sentiment_target = core.sentiment.target;
    status.engagement_target = core.engagement.target;
    status.in_flight = core.sentiment.in_flight + core.engagement.in_flight;
    status.restarts = core.sentiment.restarts + core.engagement.restarts;
    let sink = view.sink.snapshot();
    status.batch_size = sink.batch_size as usize;
    status.write_ms = sink.last_write_ms;
    status.sink = sink.sink_state.to_string();
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
    status.top_hashtags = view
        .hashtags
        .lock()
        .top()
        .into_iter()
        .map(|(tag, count)| TagCount { tag, count })
        .collect();
    if let Some(j) = &view.jetstream {
        let n = j.stats.snapshot();
        let (merged, instances) = j.merged.lock().clone();
        status.jetstream = Some(JetStreamStatus {
            nats_up: n.connected,
            pending: n.consumer_pending,
            ack_pending: n.consumer_ack_pending,
            redelivered: n.consumer_redelivered,
            held: j.tracker.len() as u64,
            delivered: n.delivered,
            delivered_again: n.redelivered,
            acks: n.acks,
            instances: instances as u64,
        });
        status.merged_top_hashtags = merged
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect();
        // The fetchers have no connection of their own: NATS's is theirs.
        if status.ingest == WAITING_FOR_SERVER {
            status.ingest = if n.connected {
                INGEST_UP.to_string()
            } else {
                "waiting for NATS".to_string()
            };
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

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
