//! The processing core: sentiment and engagement workers on OS threads, in
//! supervised, autoscaled pools, fed by a least-connected dispatcher.
//!
//! [`spawn_core`] starts the dispatcher, the pool supervisor/autoscaler thread
//! and `min_workers` workers per pool, and returns a [`Core`] handle. For each
//! tweet from the input the dispatcher sends [`AggMsg::Tweet`](crate::model::AggMsg)
//! to the aggregator first, then one job to a sentiment worker and one to an
//! engagement worker; a kill goes to one worker of each pool. Each worker
//! sends its score to the aggregator. When the input disconnects, every
//! worker drains its inbox and exits, and the core's `agg` senders are gone.
//!
//! Inside, dependencies run one way, each layer using only those before it:
//!
//! 1. [`config`] (with [`delay`]), [`stats`] (with `inflight`), [`error`]
//!    and [`limits`] (the thread bound from the kernel's limits): plain data;
//! 2. `dispatch` (the least-connected dispatcher), then `worker` (the
//!    supervised worker loop, which reads the dispatcher's envelopes);
//! 3. `autoscale` (the pure Little's-law controller), then `pool` (the pool
//!    supervisor: restarts, intensity, scaling);
//! 4. `handle`: [`spawn_core`] and [`Core`].
//!
//! The generic restart tools (kill panics, restart window, back-off) come
//! from [`crate::supervise`]; the scores from [`crate::score`].

mod autoscale;
mod config;
mod delay;
mod dispatch;
mod error;
mod handle;
mod inflight;
mod limits;
mod pool;
mod stats;
mod worker;

pub use config::{AutoscaleConfig, CoreConfig, RestartPolicy, WorkerHook};
pub use delay::{WorkDelay, WorkDelayParseError};
pub use error::{CoreConfigError, CoreError, CoreThread, Fatal};
pub use handle::{spawn_core, Core};
pub use inflight::InFlight;
pub(crate) use limits::{ThreadBound, ThreadLimits};
pub use stats::{CoreSnapshot, CoreStats, PoolSnapshot, PoolStats};
