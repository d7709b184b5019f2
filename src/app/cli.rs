//! The command line: `tweetflow [run] [FLAGS]` and `tweetflow emulate [FLAGS]`.
//!
//! Only the clap definitions live here: parsing is loose (numbers, strings,
//! paths), and `config.rs` checks the values and maps them onto the
//! stages' configurations. `tweetflow` alone means `tweetflow run`, so the
//! flags of `run` are accepted with or without the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The whole command line: a subcommand, or the flags of `run` alone.
#[derive(Debug, Parser)]
#[command(
    name = "tweetflow",
    version,
    about = "Reads the two tweet streams of an rtp-server, scores every tweet in supervised, \
             autoscaled worker pools and loads users and tweets into PostgreSQL.",
    args_conflicts_with_subcommands = true,
    propagate_version = true
)]
pub struct Cli {
    /// The subcommand given, if any (see [`Cli::into_command`]).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, the default subcommand.
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// The subcommand to run; `tweetflow` alone means `tweetflow run`.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

/// What `tweetflow` was asked to do.
// Built once per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline (the default): streams -> workers -> aggregator -> PostgreSQL.
    Run(RunArgs),
    /// Serve an emulation of the lab's rtp-server (tweet streams, lexicon).
    Emulate(super::emulate::EmulateArgs),
}

/// Flags of `tweetflow run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Base URL of the tweet server (routes /tweets/1, /tweets/2, /emotion_values).
    /// Without it, tweetflow starts its built-in emulator on a free loopback port.
    #[arg(long, env = "TWEETFLOW_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        value_name = "URL"
    )]
    pub database_url: String,

    /// Database schema for the `users` and `tweets` tables (created if missing).
    #[arg(long, default_value = "public")]
    pub schema: String,

    /// Stop by itself after this many seconds (through the same graceful path as Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Append one JSON object a second with the status figures to this file.
    #[arg(long, value_name = "PATH")]
    pub stats_file: Option<PathBuf>,

    /// Do not print the status line.
    #[arg(long)]
    pub quiet: bool,

    // ----- ingest -----
    /// Largest SSE event accepted; a bigger one is skipped and counted.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES", help_heading = "Ingest")]
    pub max_event_bytes: usize,

    /// A stream that sends nothing for this long is considered dead and reconnected.
    #[arg(
        long,
        default_value_t = 15.0,
        value_name = "SECS",
        help_heading = "Ingest"
    )]
    pub read_timeout: f64,

    // ----- workers -----
    /// Per-message work delay in ms: `MIN..MAX` (normal, mean at the middle, sd = range/6,
    /// clamped), or `0` for none.
    #[arg(
        long,
        default_value = "50..500",
        value_name = "MIN..MAX",
        help_heading = "Workers"
    )]
    pub work_delay: String,

    /// Fewest workers per pool.
    #[arg(long, default_value_t = 4, help_heading = "Workers")]
    pub min_workers: usize,

    /// Most workers per pool.
    #[arg(long, default_value_t = 4096, help_heading = "Workers")]
    pub max_workers: usize,

    /// Restart intensity: at most this many worker restarts per pool ...
    #[arg(long, default_value_t = 500, help_heading = "Workers")]
    pub max_restarts: usize,

    /// ... within this many seconds; beyond it the pool restarts whole.
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "SECS",
        help_heading = "Workers"
    )]
    pub restart_window: f64,

    /// Target utilisation of a pool's workers for the autoscaler (0..1).
    #[arg(long, default_value_t = 0.8, help_heading = "Workers")]
    pub utilisation: f64,

    /// A record whose scores have not all arrived after this long is written with NULLs.
    #[arg(
        long,
        default_value_t = 30.0,
        value_name = "SECS",
        help_heading = "Workers"
    )]
    pub aggregate_timeout: f64,

    // ----- sink -----
    /// Smallest batch the monitor may choose.
    #[arg(long, default_value_t = 10, help_heading = "Sink")]
    pub batch_min: usize,

    /// Largest batch the monitor may choose.
    #[arg(long, default_value_t = 20_000, help_heading = "Sink")]
    pub batch_max: usize,

    /// Target write time of one batch; the monitor sizes batches to stay under it.
    #[arg(long, default_value_t = 200, value_name = "MS", help_heading = "Sink")]
    pub batch_target_ms: u64,

    /// How long the writer waits for a batch to fill before writing what it has.
    #[arg(long, default_value_t = 50, value_name = "MS", help_heading = "Sink")]
    pub linger_ms: u64,

    /// Records kept in memory while the database is slow; beyond, they spill to the spool file.
    /// While it is down, records go straight to the spool (so a crash loses nothing).
    #[arg(long, default_value_t = 100_000, help_heading = "Sink")]
    pub buffer_records: usize,

    /// Directory of the spill file (replayed at the next start if records remain).
    #[arg(
        long,
        default_value = "spool",
        value_name = "DIR",
        help_heading = "Sink"
    )]
    pub spool_dir: PathBuf,

    /// Replay a spool that was written for another database URL or schema into
    /// this one (it is refused otherwise, with what was found).
    #[arg(long, help_heading = "Sink")]
    pub adopt_spool: bool,
    // ----- operations -----
    /// Address of the operator's HTTP endpoint: the dashboard, /metrics, /healthz,
    /// /readyz, POST /sink/pause and /sink/resume. `off` disables it; a taken port
    /// falls back to a free one (logged).
    #[arg(
        long,
        env = "TWEETFLOW_METRICS_ADDR",
        default_value = "127.0.0.1:9464",
        value_name = "ADDR|off",
        help_heading = "Operations"
    )]
    pub metrics_addr: String,

    /// Bearer token of POST /sink/pause and /sink/resume; without one they answer 403.
    /// Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "TWEETFLOW_CONTROL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Operations"
    )]
    pub control_token: Option<String>,

    // ----- built-in emulator -----
    /// Rate of the built-in emulator (without --server): `profile` (the default swinging profile), a
    /// number of events/s per stream, or `max`.
    #[arg(
        long,
        default_value = "profile",
        value_name = "RATE",
        help_heading = "Built-in emulator"
    )]
    pub emulator_rate: String,

    /// Seed of the built-in emulator.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Built-in emulator"
    )]
    pub emulator_seed: u64,
}
