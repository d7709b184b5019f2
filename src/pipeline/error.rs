//! Why a pipeline did not start, or did not end well.
//!
//! Each variant names the stage and keeps the stage's own typed error as its
//! [`source`](std::error::Error::source), so a caller can walk the chain
//! (`{:#}` of an `anyhow` error shows it as `context: cause: cause`) and a
//! test can match on the stage. The messages are the contexts the operator
//! sees after `error:`; they say which step failed in words, the source says
//! why.

use std::path::PathBuf;

use crate::emulator::EmulatorError;
use crate::engine::{CoreError, Fatal};
use crate::jetstream::JsError;
use crate::sink::SinkError;
use crate::source::SourceError;

/// The error of [`start`](super::start), [`run`](super::run) and
/// [`Pipeline::wait`](super::Pipeline::wait).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Shutdown was triggered before the server answered the lexicon request;
    /// nothing ran. [`run`](super::run) treats this as a normal, empty run.
    #[error("stopped before the server answered")]
    Stopped,
    /// No `server` was given and the built-in emulator could not start.
    #[error("starting the built-in emulator")]
    Emulator(#[source] EmulatorError),
    /// The sink could not start (bad database URL, spool directory, threads).
    #[error("starting the sink")]
    StartSink(#[source] SinkError),
    /// The operator's endpoint could not listen or start its threads.
    #[error("starting the operator's endpoint (--metrics-addr)")]
    Ops(#[source] crate::ops::OpsError),
    /// The server answered the lexicon request with something unusable.
    #[error("fetching the lexicon")]
    Lexicon(#[source] SourceError),
    /// The thread that fetches the lexicon ended without an answer (a bug).
    #[error("the thread fetching the lexicon panicked")]
    LexiconFetchPanicked,
    /// The worker pools could not start (configuration or threads).
    #[error("starting the worker pools")]
    StartCore(#[source] CoreError),
    /// The aggregator thread could not be spawned.
    #[error("starting the aggregator")]
    StartAggregator(#[source] std::io::Error),
    /// The reader thread of a stream could not be spawned.
    #[error("starting the reader of /tweets/{stream}")]
    StartReader {
        /// The stream, 1 or 2.
        stream: u8,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A thread of the pipeline itself (the tap, the status ticker) could not be spawned.
    #[error("spawning thread {thread}")]
    Spawn {
        /// The thread's name.
        thread: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `stats_file` could not be created.
    #[error("creating {}", path.display())]
    StatsFile {
        /// The file asked for.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The sink ended with an error (a thread of it panicked).
    #[error("the sink failed")]
    Sink(#[source] SinkError),
    /// The worker pools ended with an error (supervision failed, a core thread panicked).
    #[error("the worker pools failed")]
    Core(#[source] CoreError),
    /// Supervision reported a fatal failure, but the pools then ended cleanly.
    #[error("the worker pools failed: {reason}")]
    PoolsFailed {
        /// Supervision's account of the failure.
        reason: Fatal,
    },
    /// Both stream readers ended on their own, which happens only when the
    /// dispatcher is gone; the pipeline drained and stopped.
    #[error("the worker pools failed: the stream readers stopped (the dispatcher is gone)")]
    ReadersStopped,
    /// A stage ended for good while the pipeline ran; the pipeline drained (what
    /// the sink could not write is in the spool) and stopped.
    #[error("the {stage} stopped for good: {cause}")]
    StageFailed {
        /// The stage: `sink`, `aggregator`, `tap`, `status ticker`, `reader of /tweets/N`.
        stage: &'static str,
        /// Why, in words.
        cause: String,
    },
    /// NATS JetStream: connecting, the stream, the meta stream, the consumer.
    #[error("NATS JetStream: {what}")]
    JetStream {
        /// The step that failed.
        what: &'static str,
        /// Why.
        #[source]
        source: JsError,
    },
}

impl PipelineError {
    /// `true` for [`PipelineError::Stopped`]: shutdown came before anything ran.
    pub fn is_stopped(&self) -> bool {
        matches!(self, PipelineError::Stopped)
    }

    /// The process exit code for this error: 2 for a permanent database problem
    /// (schema mismatch, privileges, read-only, login: fix the database or the
    /// flags, then run again) and for a JetStream stream that exists with another
    /// configuration, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::StartSink(e) | PipelineError::Sink(e) if e.is_database_problem() => 2,
            PipelineError::JetStream {
                source: JsError::StreamMismatch { .. },
                ..
            } => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn messages_name_the_stage_and_keep_the_cause_as_source() {
        let e = PipelineError::StartReader {
            stream: 2,
            source: std::io::Error::other("no threads left"),
        };
        assert_eq!(e.to_string(), "starting the reader of /tweets/2");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("no threads left")
        );
        let e = PipelineError::StatsFile {
            path: PathBuf::from("/no/such/dir/stats.jsonl"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(e.to_string(), "creating /no/such/dir/stats.jsonl");
        assert!(PipelineError::Stopped.is_stopped());
        assert!(!PipelineError::ReadersStopped.is_stopped());
        assert!(PipelineError::ReadersStopped.source().is_none());
    }
}
