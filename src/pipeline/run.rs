//! Running a built pipeline: watching its stages until it is time to stop,
//! then draining them front to back into the exit [`Summary`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use super::endpoint::OpsView;
use super::error::PipelineError;
use super::probes::Probes;
use super::stages::Stages;
use super::summary::Summary;
use super::ticker::{status_of, StatusMeters};
use crate::emulator::Emulator;
use crate::ops::OpsServer;
use crate::shutdown::Shutdown;
use crate::stats::status::Status;

/// Taken off the drain timeout for what follows the drain: noticing the signal
/// (the wait loop polls every 100 ms), the last status line, the summary, exit.
const EXIT_MARGIN: Duration = Duration::from_millis(300);

/// The engine gets the first part of the drain for its normal drain (the lab's
/// delay per message); at most this long before the deadline it hurries.
const HURRY_BEFORE: Duration = Duration::from_secs(2);

/// A running pipeline; [`Pipeline::wait`] runs it to its end.
#[derive(Debug)]
pub struct Pipeline {
    pub(super) probes: Probes,
    pub(super) duration: Option<Duration>,
    pub(super) drain_timeout: Duration,
    pub(super) shutdown: Shutdown,
    pub(super) _emulator: Option<Emulator>,
    pub(super) stages: Stages,
    pub(super) view: Arc<OpsView>,
    pub(super) ops: Option<OpsServer>,
}

/// Why [`Pipeline::wait`] stopped the pipeline by itself.
enum Failure {
    /// Supervision reported a fatal failure of the worker pools.
    Pools(crate::engine::Fatal),
    /// Both stream readers ended on their own.
    ReadersStopped,
    /// Another stage ended for good.
    Stage { stage: &'static str, cause: String },
}

impl Pipeline {
    /// Live statistics of every stage.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Where the operator's endpoint listens (the real port), when it is on.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(OpsServer::addr)
    }

    /// Tells the endpoint which stage threads still run.
    pub(super) fn publish_liveness(&self) {
        self.view.publish_liveness(self.stages.liveness());
    }

    /// The status as the status line shows it now (rates over the time since
    /// the previous call with the same meters).
    pub fn status(&self, meters: &mut StatusMeters) -> Status {
        let now = Instant::now();
        status_of(&self.probes.snapshot(now), now, meters)
    }

    /// Watches the stages every 100 ms (publishing their liveness to the
    /// endpoint) until it is time to stop; returns why, if not by request.
    fn watch(&self) -> Option<Failure> {
        let mut reader_gone: Option<Instant> = None;
        loop {
            self.publish_liveness();
            if self.shutdown.sleep(Duration::from_millis(100)) {
                info!("stopping: draining every stage");
                return None;
            }
            if self
                .duration
                .is_some_and(|d| self.probes.started.elapsed() >= d)
            {
                info!("--duration reached: draining every stage");
                self.shutdown.trigger();
                return None;
            }
            if let Some(why) = self.stages.core.fatal() {
                error!("the worker pools failed: {why}");
                self.shutdown.trigger();
                return Some(Failure::Pools(why));
            }
            if self.stages.readers_stopped() {
                // Readers only end on their own when the dispatcher is gone.
                error!("both stream readers have stopped: draining every stage");
                self.shutdown.trigger();
                return Some(Failure::ReadersStopped);
            }
            if let Some((stage, cause)) = self.stages.failure(&self.probes.tap, &mut reader_gone) {
                error!(
                    "the {stage} stopped for good: {cause}; draining every stage (what the sink \
                     cannot write is spooled)"
                );
                self.shutdown.trigger();
                return Some(Failure::Stage { stage, cause });
            }
        }
    }

    /// Runs until the shutdown flag, the configured duration or a fatal
    /// failure of the worker pools; then drains every stage front to back.
    pub fn wait(self) -> Result<Summary, PipelineError> {
        let failure = self.watch();
        self.view.set_stopping();
        let Pipeline {
            probes,
            drain_timeout,
            mut stages,
            ops,
            ..
        } = self;

        // Drain front to back: each stage ends when its input disconnects, all by
        // the deadline (see `Stages::drain`).
        let deadline = Instant::now() + drain_timeout.saturating_sub(EXIT_MARGIN);
        stages.sink.drain_by(deadline);
        let hurry_at = deadline - (drain_timeout / 2).min(HURRY_BEFORE);
        let left_behind = stages.drain(hurry_at, deadline);
        let joined = stages.join(deadline);
        if !left_behind.is_empty() {
            let c = probes.core.snapshot();
            warn!(
                "drain deadline: {} had not ended; {} jobs were still in the engine",
                left_behind.join(", "),
                c.sentiment.in_flight + c.engagement.in_flight
            );
        }
        joined.ticker.stop();
        // The endpoint last, so it shows the drain to its end.
        drop(ops);

        let mut summary = Summary::of(&probes.snapshot(Instant::now()), &probes.cpu_at_start);
        summary.spooled_at_exit = joined.sink.map_err(PipelineError::Sink)?.left_in_spool;
        joined.core.map_err(PipelineError::Core)?;
        match failure {
            None => Ok(summary),
            Some(Failure::Pools(reason)) => Err(PipelineError::PoolsFailed { reason }),
            Some(Failure::ReadersStopped) => Err(PipelineError::ReadersStopped),
            Some(Failure::Stage { stage, cause }) => {
                Err(PipelineError::StageFailed { stage, cause })
            }
        }
    }
}
