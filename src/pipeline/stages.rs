//! The running stages' handles, as one value: which of them run, which ended
//! for good, and their drain to a stop.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::tap::TapStats;
use crate::aggregate::Aggregator;
use crate::engine::{Core, CoreError};
use crate::shutdown::Shutdown;
use crate::sink::{Sink, SinkError, SinkSummary};

/// Every stage thread of a running pipeline, front to back.
#[derive(Debug)]
pub(super) struct Stages {
    /// `/tweets/1` and `/tweets/2`; emptied by [`Stages::drain`], which joins them.
    pub(super) readers: Vec<JoinHandle<()>>,
    pub(super) core: Core,
    pub(super) aggregator: Aggregator,
    pub(super) tap: JoinHandle<()>,
    pub(super) sink: Sink,
    /// The status ticker: it runs until every other stage has drained.
    pub(super) ticker: Ticker,
    /// With `--jetstream`: the acker and the hashtag sharer, stopped once the sink
    /// has ended (the acker acks what it committed to the end).
    pub(super) jetstream: Vec<JoinHandle<()>>,
    /// Their stop flag.
    pub(super) jetstream_done: Shutdown,
}

/// The status ticker's thread and its stop flag.
#[derive(Debug)]
pub(super) struct Ticker {
    pub(super) thread: JoinHandle<()>,
    pub(super) done: Shutdown,
}

impl Ticker {
    /// Stops the ticker after its last line (the drained state) and joins it.
    pub(super) fn stop(self) {
        self.done.trigger();
        let _ = self.thread.join();
    }
}

/// What the stages left when they were joined.
pub(super) struct Joined {
    /// The worker pools' end (`Ok` when they were left behind at the deadline).
    pub(super) core: Result<(), CoreError>,
    /// The sink's summary.
    pub(super) sink: Result<SinkSummary, SinkError>,
    /// Still running: [`Ticker::stop`] it last.
    pub(super) ticker: Ticker,
}

impl Stages {
    /// Each stage thread by name, and whether it still runs.
    pub(super) fn liveness(&self) -> Vec<(&'static str, bool)> {
        let mut stages: Vec<(&'static str, bool)> = ["reader /tweets/1", "reader /tweets/2"]
            .into_iter()
            .zip(&self.readers)
            .map(|(name, r)| (name, !r.is_finished()))
            .collect();
        stages.extend([
            ("worker pools", self.core.is_running()),
            ("aggregator", self.aggregator.is_running()),
            ("tap", !self.tap.is_finished()),
            ("sink writer", self.sink.writer_running()),
            ("status ticker", !self.ticker.thread.is_finished()),
        ]);
        stages
    }

    /// Both stream readers have ended.
    pub(super) fn readers_stopped(&self) -> bool {
        self.readers.iter().all(|r| r.is_finished())
    }

    /// The first stage found ended for good while the pipeline runs (the worker
    /// pools and both readers are watched apart): `(stage, cause)`. A reader
    /// that ends alone gets a second for the other to follow (then the
    /// dispatcher is gone, which `Failure::ReadersStopped` reports).
    pub(super) fn failure(
        &self,
        tap: &TapStats,
        reader_gone: &mut Option<Instant>,
    ) -> Option<(&'static str, String)> {
        if let Some(f) = self.sink.failure() {
            return Some(("sink", f.to_string()));
        }
        if let Some(why) = self.aggregator.failure() {
            return Some(("aggregator", why));
        }
        if let Some(why) = tap.failure() {
            return Some(("tap", why));
        }
        if self.ticker.thread.is_finished() {
            return Some(("status ticker", "its thread ended".to_string()));
        }
        if let Some(i) = self.readers.iter().position(|r| r.is_finished()) {
            let since = *reader_gone.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(1) {
                let stage = if i == 0 {
                    "reader of /tweets/1"
                } else {
                    "reader of /tweets/2"
                };
                return Some((
                    stage,
                    "its thread ended (see the log for its panic)".to_string(),
                ));
            }
        }
        None
    }

    /// Waits, until `deadline`, for the readers, the core, the aggregator and
    /// the tap to end, stepping the sink's drain meanwhile
    /// ([`Sink::drain_step`]); at `hurry_at` the core hurries
    /// ([`Core::hurry`]). Joins the readers. Returns the names of the stages
    /// still running at the deadline (left behind: the process exits).
    pub(super) fn drain(&mut self, hurry_at: Instant, deadline: Instant) -> Vec<&'static str> {
        let mut hurried = false;
        let upstream_done = |s: &Stages| {
            s.readers_stopped()
                && s.core.is_finished()
                && s.aggregator.is_finished()
                && s.tap.is_finished()
        };
        loop {
            if upstream_done(self) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if !hurried && now >= hurry_at && !self.core.is_finished() {
                info!("drain: the engine scores what it still holds without the work delay");
                self.core.hurry();
                hurried = true;
            }
            self.sink.drain_step();
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut left = Vec::new();
        for r in std::mem::take(&mut self.readers) {
            if !r.is_finished() {
                left.push("a stream reader");
            } else if r.join().is_err() {
                warn!("a stream reader panicked");
            }
        }
        if !self.core.is_finished() {
            left.push("the engine");
        }
        if !self.aggregator.is_finished() {
            left.push("the aggregator");
        }
        if !self.tap.is_finished() {
            left.push("the tap");
        }
        left
    }

    /// Joins the stages that ended (those left behind by [`Stages::drain`]
    /// are not waited for) and the sink by `deadline`; the status ticker is
    /// handed back running.
    pub(super) fn join(self, deadline: Instant) -> Joined {
        let core = if self.core.is_finished() {
            self.core.join()
        } else {
            Ok(())
        };
        if self.aggregator.is_finished() {
            self.aggregator.join();
        }
        let tap_done = self.tap.is_finished();
        if tap_done && self.tap.join().is_err() {
            warn!("the tap thread panicked");
        }
        let sink = self.sink.join_by(deadline, tap_done);
        self.jetstream_done.trigger();
        for t in self.jetstream {
            let _ = t.join();
        }
        Joined {
            core,
            sink,
            ticker: self.ticker,
        }
    }
}
