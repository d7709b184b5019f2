//! The sink's settings, each with its default.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::url::redact_url;
use crate::budget::Budget;
use crate::supervise::StagePolicy;

/// Sink settings. Its `Debug` shows the database URL without its password.
#[derive(Clone)]
pub struct SinkConfig {
    /// `postgres://user@host:port/db` or key=value form; `sslmode` (libpq's five
    /// modes) and `sslrootcert` are honoured.
    pub database_url: String,
    /// CA certificates (PEM) that sign the server's certificate, for
    /// `sslmode=verify-ca` and `verify-full` (default: the URL's `sslrootcert`,
    /// else the system's roots).
    pub db_ca_file: Option<PathBuf>,
    /// Schema of the `users` and `tweets` tables (created if missing). Default `public`.
    pub schema: String,
    /// Smallest batch the monitor may choose (default 10).
    pub batch_min: usize,
    /// Largest batch (default 20,000).
    pub batch_max: usize,
    /// First batch size (default 500).
    pub batch_initial: usize,
    /// Target write time of one batch (default 200 ms).
    pub target_write: Duration,
    /// Longest wait for a batch to fill once its first record is there (default 50 ms).
    pub linger: Duration,
    /// Records kept in memory before spilling to the spool (default 100,000).
    pub buffer_records: usize,
    /// Directory of `spool.bin`, `spool.bin.offset`, `rejected.jsonl` (default `spool`).
    pub spool_dir: PathBuf,
    /// Probe period of the health checker (default 500 ms).
    pub health_interval: Duration,
    /// Connect timeout of both connections (default 3 s).
    pub connect_timeout: Duration,
    /// Statement timeout of the writer's connection (default 60 s); a batch that takes
    /// longer is treated as a timeout (retried after recovery).
    pub statement_timeout: Duration,
    /// Longest silence of the database (a batch, a probe or a connect without an
    /// answer) before the sink is taken as down, and the TCP user timeout of every
    /// connection (default 10 s; at least 1 s).
    pub db_timeout: Duration,
    /// When the input has closed while the database is down, how long to wait for it
    /// before leaving the rest in the spool (default 5 s).
    pub shutdown_grace: Duration,
    /// Longest time spooled appends may stay without fsync (default 200 ms).
    pub spool_sync: Duration,
    /// Most bytes of records kept in memory (as `Tweet::heap_bytes` counts
    /// them), besides `buffer_records`; beyond, records spill to the spool.
    /// Default unlimited; the pipeline sets half of `--memory-limit`.
    pub buffer_bytes: u64,
    /// A batch stops growing at this many bytes (at least one record), which
    /// bounds what the writer holds outside the memory budget: the spool lines
    /// it read, their records and the COPY buffer. Default 64 MiB.
    pub batch_max_bytes: u64,
    /// Uncommitted spool bytes at which [`SinkConfig::budget`] is told the
    /// spool is full, so that ingest waits (`--spool-max-bytes`). The sink itself
    /// never refuses a record: what is already in memory still lands in the
    /// spool. Default `None`: no maximum.
    pub spool_max_bytes: Option<u64>,
    /// The memory budget that the spool-full state is reported to, and the
    /// sink-behind state of [`WhenFull::Block`].
    pub budget: Arc<Budget>,
    /// What happens to a record that the memory share (`buffer_records`,
    /// `buffer_bytes`) cannot hold while the database is up (`--when-full`).
    /// Default [`WhenFull::Spill`]. While the database is down, probing,
    /// waiting or paused, both spill.
    pub when_full: WhenFull,
    /// Restarts of the writer after a panic (a bug): at most 5 within 60 s by
    /// default, with a back-off from 100 ms to 5 s; beyond, the writer gives up,
    /// its records are spooled and the sink reports the failure.
    pub restart: StagePolicy,
    /// Replay a spool tagged for another target (database URL without password, and
    /// schema) into this one; without it such a spool is refused (default false).
    pub adopt_spool: bool,
    /// Told the `ingest_seq` of every record of each batch once it is committed (or
    /// rejected to `rejected.jsonl`), one `Vec` per batch; `None` (the default): nobody
    /// listens. `run --jetstream` acks its messages from it.
    pub committed: Option<crossbeam_channel::Sender<Vec<crate::model::Seq>>>,
    /// Test hook, see [`SinkHook`] (default none).
    pub fault: Option<Arc<dyn SinkHook>>,
}

/// What the sink does when its memory share is full while the database is up
/// (`--when-full`; the name and the idea are Vector's `buffer.when_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// What memory cannot hold is appended to the spool (written in batches),
    /// and ingest goes on reading: for a source that cannot replay what it did
    /// not read (the SSE stream).
    #[default]
    Spill,
    /// Nothing is spilled while the database is up: ingest waits (the budget's
    /// `waiting: sink behind`, the readers stop reading, TCP holds the sender
    /// back) until the writer has made room. What is already on its way to the
    /// sink still lands (in memory, beyond its share, or behind a spool that
    /// still holds records, for the order); nothing is dropped. While the
    /// database is down, probing, waiting or paused, records spill as with
    /// `Spill`.
    Block,
}

impl WhenFull {
    /// `spill` or `block`, as the flag names it.
    pub fn name(self) -> &'static str {
        match self {
            WhenFull::Spill => "spill",
            WhenFull::Block => "block",
        }
    }
}

/// Test hooks that the sink asks at three points, to exercise what a bug must
/// not do (lose a record, or stop the sink without saying so) and what a failed
/// fsync does. The testkit's `SinkFault` is one; production configurations
/// carry none.
pub trait SinkHook: Send + Sync + std::fmt::Debug {
    /// Whether the row encoder panics on the record of `seq` (the record is then
    /// rejected and the rest of its batch written).
    fn encode_panics(&self, seq: u64) -> bool;
    /// Whether the writer panics before writing a batch of `records` (asked once
    /// per batch attempt).
    fn batch_panics(&self, records: &[crate::model::Record]) -> bool;
    /// Stands in for the spool's directory fsync of `dir` (after the spool file
    /// or its target tag is created) when it answers: what the fsync returned.
    fn sync_dir(&self, dir: &Path) -> Option<io::Result<()>>;
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            db_ca_file: None,
            schema: "public".into(),
            batch_min: 10,
            batch_max: 20_000,
            batch_initial: 500,
            target_write: Duration::from_millis(200),
            linger: Duration::from_millis(50),
            buffer_records: 100_000,
            spool_dir: PathBuf::from("spool"),
            health_interval: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(60),
            db_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            spool_sync: Duration::from_millis(200),
            buffer_bytes: u64::MAX,
            batch_max_bytes: 64 << 20,
            spool_max_bytes: None,
            budget: Budget::unlimited(),
            when_full: WhenFull::Spill,
            restart: StagePolicy {
                max_restarts: 5,
                window: Duration::from_secs(60),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
                backoff_reset: Duration::from_secs(30),
            },
            adopt_spool: false,
            committed: None,
            fault: None,
        }
    }
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("db_ca_file", &self.db_ca_file)
            .field("schema", &self.schema)
            .field("batch_min", &self.batch_min)
            .field("batch_max", &self.batch_max)
            .field("batch_initial", &self.batch_initial)
            .field("target_write", &self.target_write)
            .field("linger", &self.linger)
            .field("buffer_records", &self.buffer_records)
            .field("spool_dir", &self.spool_dir)
            .field("health_interval", &self.health_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("db_timeout", &self.db_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("spool_sync", &self.spool_sync)
            .field("when_full", &self.when_full)
            .finish()
    }
}
