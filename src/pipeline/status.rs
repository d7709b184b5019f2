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
//! A stats file that cannot be written is given up after one warning; the
//! pipeline goes on. The pure formatting lives in [`crate::stats::status`].

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};

use super::{PipelineError, Probes};
use crate::shutdown::Shutdown;
use crate::stats::status::{fit, RateMeter, Status, TagCount};

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
        if let Some(f) = stats_file.as_mut() {
            if let Err(e) = writeln!(f, "{}", status.json()).and_then(|_| f.flush()) {
                warn!("cannot write the stats file: {e}; no more stats will be written");
                stats_file = None;
            }
        }
        if line {
            if terminal {
                draw(&status);
            } else {
                eprintln!("{}", status.line());
            }
        }
        if finished {
            if terminal && STATUS_DRAWN.swap(false, Ordering::SeqCst) {
                eprintln!();
            }
            return;
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
    status.written_tweets = sink.written_tweets;
    status.written_users = sink.written_users;
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
    status
}
