//! Errors of the processing core.
//!
//! [`CoreError`] is what [`spawn_core`](super::spawn_core) and
//! [`Core::join`](super::Core::join) return. [`Fatal`] is why supervision
//! gave up while running: it is set once, kept in the core's statistics (so
//! the status output and the pipeline see it at once) and returned again by
//! `join`.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::model::ScoreKind;

/// A thread of the processing core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreThread {
    /// The dispatcher.
    Dispatcher,
    /// The pool supervisor and autoscaler.
    Supervisor,
    /// A worker of the given pool.
    Worker(ScoreKind),
}

impl fmt::Display for CoreThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreThread::Dispatcher => f.write_str("dispatcher"),
            CoreThread::Supervisor => f.write_str("supervisor"),
            CoreThread::Worker(kind) => write!(f, "{} worker", kind.name()),
        }
    }
}

/// A [`CoreConfig`](super::CoreConfig) that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreConfigError {
    /// The worker bounds are not `1 <= min_workers <= max_workers`.
    #[error("need 1 <= min_workers ({min}) <= max_workers ({max})")]
    WorkerBounds {
        /// The configured `min_workers`.
        min: usize,
        /// The configured `max_workers`.
        max: usize,
    },
    /// `inbox_capacity` is 0.
    #[error("inbox_capacity must be >= 1")]
    InboxCapacity,
    /// `utilisation` is outside (0, 1].
    #[error("utilisation must be in (0, 1], got {0}")]
    Utilisation(f64),
}

/// Why supervision gave up; the pipeline must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    /// More than `max_pool_restarts` pool restarts within `pool_window`.
    #[error(
        "the {} pool exceeded its restart intensity more than {max_pool_restarts} times in \
         {pool_window:?}; giving up",
        pool.name()
    )]
    RestartIntensity {
        /// The pool.
        pool: ScoreKind,
        /// The policy's `max_pool_restarts`.
        max_pool_restarts: usize,
        /// The policy's `pool_window`.
        pool_window: Duration,
    },
    /// The aggregator's channel closed, so no result can be delivered.
    #[error("the aggregator's channel closed; the core cannot deliver results")]
    AggregatorGone,
}

/// Serialized as its message, as in the status output.
impl Serialize for Fatal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Errors of the processing core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The configuration cannot run; nothing was started.
    #[error("invalid core configuration: {0}")]
    Config(#[from] CoreConfigError),
    /// A thread could not be spawned at start.
    #[error("could not spawn a {thread} thread: {source}")]
    Spawn {
        /// Which thread.
        thread: CoreThread,
        /// The spawn error.
        source: std::io::Error,
    },
    /// Supervision failed; the pipeline must stop.
    #[error("supervision failed: {0}")]
    Fatal(Fatal),
    /// The dispatcher or the supervisor thread panicked.
    #[error("a core thread panicked: {thread}: {message}")]
    Panicked {
        /// Which thread.
        thread: CoreThread,
        /// The panic's message.
        message: String,
    },
}
