//! Wires every stage with bounded crossbeam channels and runs it to a graceful end.
//!
//! ```text
//!  reader /tweets/1 ─┐                     ┌─▶ sentiment pool ──┐
//!                    ├─ingest─▶ dispatcher ─┤                     ├─agg─▶ aggregator ─records─▶ tap ─sink─▶ sink
//!  reader /tweets/2 ─┘      (least-conn)   └─▶ engagement pool ─┘          (join by seq)   (hashtags)  (buffer, spool,
//!                                 └──────────────── AggMsg::Tweet ──────────▲                              writer, health)
//! ```
//!
//! This is the one place where threads and channels are wired: [`start`]
//! (`build.rs`) creates every channel and spawns every stage into one
//! `Stages` value, [`Pipeline::wait`] (`run.rs`) watches them and drains them
//! to a stop. The stages themselves only loop over their input.
//!
//! What the pipeline shows of itself is one `Snapshot` of every stage
//! (`snapshot.rs`, read by [`Probes`]), seen through views: the status line
//! and stats file (`ticker.rs`), the dashboard's history of those, `/metrics`
//! (`metrics.rs`) and the exit [`Summary`]. The operator's endpoint
//! (`endpoint.rs`) answers its routes from them and from [`readiness`]; the
//! HTTP parts it stands on are generic (`crate::ops`).
//!
//! Start order: the server (the built-in emulator when none is given), the
//! sink (it replays a spool left by an earlier run and waits out a database
//! that is down without holding up the rest), the lexicon fetch (it waits for
//! the server; a shutdown meanwhile ends the start with
//! [`PipelineError::Stopped`], which [`run`] treats as an empty run), the
//! worker pools, the aggregator, the tap (`tap.rs`), the readers and the status
//! ticker (`ticker.rs`).
//!
//! Shutdown runs front to back: the [`Shutdown`] flag stops the readers; their
//! senders drop, so the dispatcher's input disconnects; it drops the worker
//! inboxes; the workers drain and drop their aggregator senders; the aggregator
//! flushes and drops its output; the tap and then the sink drain and commit.
//! Every thread ends because its input disconnected. The status ticker stops
//! last, so its final line shows the drained state.

mod build;
mod config;
mod endpoint;
mod error;
mod ingest;
mod jetstream;
mod metrics;
mod probes;
mod readiness;
mod run;
mod snapshot;
mod stages;
mod summary;
mod tap;
mod ticker;

use crate::shutdown::Shutdown;

pub use build::start;
pub(crate) use config::default_instance;
pub use config::{JetStreamRun, PipelineConfig};
pub use error::PipelineError;
pub use ingest::stream_specs;
pub(crate) use ingest::{run_ingest, IngestConfig};
pub use jetstream::JsProbe;
pub use probes::Probes;
pub use run::Pipeline;
pub use summary::Summary;
pub(crate) use ticker::erase_status_lines;
pub use ticker::StatusMeters;

/// Runs the pipeline until `shutdown` is triggered (or `duration` passes, or a
/// stage fails for good), then drains every stage and returns the summary.
///
/// A shutdown before the server answered is an empty run: the default summary.
pub fn run(cfg: PipelineConfig, shutdown: Shutdown) -> Result<Summary, PipelineError> {
    match start(cfg, shutdown) {
        Ok(pipeline) => pipeline.wait(),
        Err(PipelineError::Stopped) => Ok(Summary::default()),
        Err(e) => Err(e),
    }
}
