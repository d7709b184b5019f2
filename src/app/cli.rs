//! The command line: `tweetflow [run] [FLAGS]`, `tweetflow check [FLAGS]`,
//! `tweetflow config [FLAGS]` and `tweetflow emulate [FLAGS]`.
//!
//! Only the clap definitions live here: parsing is loose (numbers, strings,
//! paths), `file.rs` merges a configuration file (`--config`) below the flags
//! and the environment, and `config.rs` checks the values and maps them onto
//! the stages' configurations. `tweetflow` alone means `tweetflow run`, so the
//! flags of `run` are accepted with or without the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    pub(crate) command: Option<Command>,
    /// Flags of `run`, the default subcommand.
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

impl Cli {
    /// The subcommand to run; `tweetflow` alone means `tweetflow run`.
    pub(crate) fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

/// What `tweetflow` was asked to do.
// Built once per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the pipeline (the default): streams -> workers -> aggregator -> PostgreSQL.
    Run(RunArgs),
    /// Check a setup without running it: the server's routes, the lexicon, the database
    /// (TLS, privileges, tables) and the spool directory. Exits 1 when a check fails.
    Check(RunArgs),
    /// Print the effective configuration of `run` with where each value comes from (flag,
    /// environment, --config file, default), secrets redacted; exits 1 if a value is invalid.
    Config(RunArgs),
    /// Serve an emulation of the lab's rtp-server (tweet streams, lexicon).
    Emulate(super::emulate::EmulateArgs),
    /// Read the two tweet streams and publish every event into a NATS JetStream stream,
    /// for any number of `tweetflow run --jetstream` to share (docs/SCALING.md).
    Ingest(super::ingest::IngestArgs),
}

/// Flags of `tweetflow run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// A TOML file of flags (`min-workers = 8`, `schema = "s"`, one key per flag, named as
    /// the flag); a flag or a TWEETFLOW_* variable overrides the file's value.
    #[arg(long, env = "TWEETFLOW_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Base URL of the tweet server (routes /tweets/1, /tweets/2, /emotion_values).
    /// Without it, tweetflow starts its built-in emulator on a free loopback port.
    #[arg(long, env = "TWEETFLOW_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// PostgreSQL connection URL (`postgres://user:password@host:port/db?sslmode=…` or
    /// key=value). `sslmode`: disable, prefer (the default: TLS when the server offers it),
    /// require, verify-ca, verify-full. Without it, `DATABASE_URL`, else
    /// postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(
        long,
        env = "TWEETFLOW_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// CA certificates (PEM) the database's certificate must be signed by, for
    /// sslmode=verify-ca and verify-full; the only trust when given (default: the URL's
    /// `sslrootcert`, else the system's roots).
    #[arg(long, env = "TWEETFLOW_DB_CA_FILE", value_name = "PATH")]
    pub db_ca_file: Option<PathBuf>,

    /// CA certificates (PEM) an https:// tweet server's certificate must be signed by,
    /// instead of the system's roots.
    #[arg(long, env = "TWEETFLOW_SERVER_CA_FILE", value_name = "PATH")]
    pub server_ca_file: Option<PathBuf>,

    /// Database schema for the `users` and `tweets` tables (created if missing).
    #[arg(long, env = "TWEETFLOW_SCHEMA", default_value = "public")]
    pub schema: String,

    /// Stop by itself after this many seconds (through the same graceful path as Ctrl-C).
    #[arg(long, env = "TWEETFLOW_DURATION", value_name = "SECS")]
    pub duration: Option<f64>,

    /// After the first Ctrl-C (or SIGTERM, or --duration), exit within this many
    /// seconds: what is not committed by then is fsync'd to the spool and replayed at
    /// the next start.
    #[arg(
        long,
        env = "TWEETFLOW_DRAIN_TIMEOUT",
        value_name = "SECS",
        default_value_t = 5.0
    )]
    pub drain_timeout: f64,

    /// A database that answers nothing for this many seconds (a batch, a probe, a
    /// connect) is taken as down: the sink says "no answer for SECS s", records go to
    /// the spool, and the connections' TCP keepalives and TCP_USER_TIMEOUT end a
    /// connection silent for that long.
    #[arg(
        long,
        env = "TWEETFLOW_DB_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    pub db_timeout: f64,

    /// Append one JSON object a second with the status figures to this file.
    #[arg(long, env = "TWEETFLOW_STATS_FILE", value_name = "PATH")]
    pub stats_file: Option<PathBuf>,

    /// Do not print the status line.
    #[arg(long, env = "TWEETFLOW_QUIET")]
    pub quiet: bool,

    /// Log lines as `text`, or as `json`: one object per line with timestamp, level,
    /// target, message and fields (no status line then).
    #[arg(long, env = "TWEETFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    // ----- ingest -----
    /// Largest SSE event accepted; a bigger one is skipped and counted.
    #[arg(long, env = "TWEETFLOW_MAX_EVENT_BYTES", default_value_t = 1 << 20, value_name = "BYTES", help_heading = "Ingest")]
    pub max_event_bytes: usize,

    /// A stream that sends nothing for this long is considered dead and reconnected.
    #[arg(
        long,
        env = "TWEETFLOW_READ_TIMEOUT",
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
        env = "TWEETFLOW_WORK_DELAY",
        default_value = "50..500",
        value_name = "MIN..MAX",
        help_heading = "Workers"
    )]
    pub work_delay: String,

    /// Fewest workers per pool.
    #[arg(
        long,
        env = "TWEETFLOW_MIN_WORKERS",
        default_value_t = 4,
        help_heading = "Workers"
    )]
    pub min_workers: usize,

    /// Most workers per pool.
    #[arg(
        long,
        env = "TWEETFLOW_MAX_WORKERS",
        default_value_t = 4096,
        help_heading = "Workers"
    )]
    pub max_workers: usize,

    /// Restart intensity: at most this many worker restarts after unexpected panics (kills are
    /// expected and not counted) per pool ...
    #[arg(
        long,
        env = "TWEETFLOW_MAX_RESTARTS",
        default_value_t = 500,
        help_heading = "Workers"
    )]
    pub max_restarts: usize,

    /// ... within this many seconds; beyond it the pool restarts whole, in place.
    #[arg(
        long,
        env = "TWEETFLOW_RESTART_WINDOW",
        default_value_t = 10.0,
        value_name = "SECS",
        help_heading = "Workers"
    )]
    pub restart_window: f64,

    /// Target utilisation of a pool's workers for the autoscaler (0..1).
    #[arg(
        long,
        env = "TWEETFLOW_UTILISATION",
        default_value_t = 0.8,
        help_heading = "Workers"
    )]
    pub utilisation: f64,

    /// A record whose scores have not all arrived after this long is written with NULLs.
    #[arg(
        long,
        env = "TWEETFLOW_AGGREGATE_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECS",
        help_heading = "Workers"
    )]
    pub aggregate_timeout: f64,

    // ----- sink -----
    /// Smallest batch the monitor may choose.
    #[arg(
        long,
        env = "TWEETFLOW_BATCH_MIN",
        default_value_t = 10,
        help_heading = "Sink"
    )]
    pub batch_min: usize,

    /// Largest batch the monitor may choose.
    #[arg(
        long,
        env = "TWEETFLOW_BATCH_MAX",
        default_value_t = 20_000,
        help_heading = "Sink"
    )]
    pub batch_max: usize,

    /// Target write time of one batch; the monitor sizes batches to stay under it.
    #[arg(
        long,
        env = "TWEETFLOW_BATCH_TARGET_MS",
        default_value_t = 200,
        value_name = "MS",
        help_heading = "Sink"
    )]
    pub batch_target_ms: u64,

    /// How long the writer waits for a batch to fill before writing what it has.
    #[arg(
        long,
        env = "TWEETFLOW_LINGER_MS",
        default_value_t = 50,
        value_name = "MS",
        help_heading = "Sink"
    )]
    pub linger_ms: u64,

    /// Records kept in memory while the database is slow; beyond, they spill to the spool file.
    /// While it is down, records go straight to the spool (so a crash loses nothing).
    #[arg(
        long,
        env = "TWEETFLOW_BUFFER_RECORDS",
        default_value_t = 100_000,
        help_heading = "Sink"
    )]
    pub buffer_records: usize,

    /// Most bytes of tweets in memory at once: channels, worker inboxes, pending entries and the
    /// sink's buffer together. Beyond it the sink spills to the spool and the readers wait.
    /// A number of bytes, or with a suffix: `512MiB`, `1GiB` (K, M, G, KiB, MiB, GiB).
    #[arg(
        long,
        env = "TWEETFLOW_MEMORY_LIMIT",
        default_value = "1GiB",
        value_name = "BYTES",
        value_parser = parse_bytes,
        help_heading = "Sink"
    )]
    pub memory_limit: u64,

    /// Most bytes the spool may hold before the readers wait for it to drain (logged, and
    /// shown as `waiting: spool full`); nothing is dropped. It can overshoot by at most
    /// --memory-limit (the records already in memory still go to it).
    #[arg(
        long,
        env = "TWEETFLOW_SPOOL_MAX_BYTES",
        default_value = "10GiB",
        value_name = "BYTES",
        value_parser = parse_bytes,
        help_heading = "Sink"
    )]
    pub spool_max_bytes: u64,

    /// What the sink does when its memory share is full while the database is up: `spill`
    /// appends what memory cannot hold to the spool and reads on; `block` spills nothing and
    /// makes the readers wait (`waiting: sink behind`, TCP holds the sender back); `auto` is
    /// `spill` for a tweet server (which cannot send again what was not read) and `block` with
    /// --jetstream (the stream keeps the backlog). While the database is down, both spill.
    #[arg(
        long,
        env = "TWEETFLOW_WHEN_FULL",
        value_enum,
        default_value_t = WhenFullArg::Auto,
        value_name = "MODE",
        help_heading = "Sink"
    )]
    pub when_full: WhenFullArg,

    /// Directory of the spill file (replayed at the next start if records remain).
    /// Default: the platform's state directory: `$STATE_DIRECTORY/spool` under systemd
    /// (`StateDirectory=tweetflow`: /var/lib/tweetflow/spool), else
    /// `$XDG_STATE_HOME/tweetflow/spool`, else `~/.local/state/tweetflow/spool`.
    #[arg(
        long,
        env = "TWEETFLOW_SPOOL_DIR",
        value_name = "DIR",
        help_heading = "Sink"
    )]
    pub spool_dir: Option<PathBuf>,

    /// Replay a spool that was written for another database URL or schema into
    /// this one (it is refused otherwise, with what was found).
    #[arg(long, env = "TWEETFLOW_ADOPT_SPOOL", help_heading = "Sink")]
    pub adopt_spool: bool,
    // ----- operations -----
    /// Address of the operator's HTTP endpoint: the dashboard, /metrics, /healthz,
    /// /readyz, POST /sink/pause and /sink/resume. `off` disables it. An address given
    /// here (or in the variable or the config file) whose port is taken stops the start;
    /// only the default falls back to a free port, and logs it.
    #[arg(
        long,
        env = "TWEETFLOW_METRICS_ADDR",
        default_value = super::config::DEFAULT_METRICS_ADDR,
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

    // ----- JetStream -----
    /// Read the tweets from this NATS JetStream server (filled by `tweetflow ingest`)
    /// instead of the tweet server: every instance given the same stream and consumer
    /// shares the work (docs/SCALING.md). Several URLs comma-separated for a cluster.
    #[arg(
        long,
        env = "TWEETFLOW_JETSTREAM",
        value_name = "nats://HOST:PORT",
        help_heading = "JetStream"
    )]
    pub jetstream: Option<String>,

    /// The JetStream stream (with --jetstream).
    #[arg(
        long,
        env = "TWEETFLOW_STREAM",
        default_value = "tweets",
        value_name = "NAME",
        help_heading = "JetStream"
    )]
    pub stream: String,

    /// The durable consumer every instance binds (with --jetstream).
    #[arg(
        long,
        env = "TWEETFLOW_CONSUMER",
        default_value = "tweetflow",
        value_name = "NAME",
        help_heading = "JetStream"
    )]
    pub consumer: String,

    /// Most messages delivered and not yet acked, over all instances (the consumer's
    /// max_ack_pending; set when the consumer is created), and per instance.
    #[arg(
        long,
        env = "TWEETFLOW_MAX_ACK_PENDING",
        default_value_t = 20_000,
        value_name = "N",
        help_heading = "JetStream"
    )]
    pub max_ack_pending: usize,

    /// A message not acked within this is redelivered (set when the consumer is created);
    /// messages still in the pipeline get an in-progress ack every third of it.
    #[arg(
        long,
        env = "TWEETFLOW_ACK_WAIT",
        default_value_t = 30.0,
        value_name = "SECS",
        help_heading = "JetStream"
    )]
    pub ack_wait: f64,

    /// This instance's name in the merged hashtag counts (default: host name and pid).
    #[arg(
        long,
        env = "TWEETFLOW_INSTANCE",
        value_name = "NAME",
        help_heading = "JetStream"
    )]
    pub instance: Option<String>,

    // ----- built-in emulator -----
    /// Rate of the built-in emulator (without --server): `profile` (the default swinging profile), a
    /// number of events/s per stream, or `max`.
    #[arg(
        long,
        env = "TWEETFLOW_EMULATOR_RATE",
        default_value = "profile",
        value_name = "RATE",
        help_heading = "Built-in emulator"
    )]
    pub emulator_rate: String,

    /// Seed of the built-in emulator.
    #[arg(
        long,
        env = "TWEETFLOW_EMULATOR_SEED",
        default_value_t = 1,
        value_name = "N",
        help_heading = "Built-in emulator"
    )]
    pub emulator_seed: u64,

    /// Every setting with its value and where it came from (filled by
    /// [`super::file::parse_cli`]; empty for a `Cli` parsed otherwise).
    #[arg(skip)]
    pub settings: super::file::Settings,
}

/// A number of bytes: digits, optionally followed by `K`, `M`, `G` or `KiB`,
/// `MiB`, `GiB` (all binary: 1 K = 1,024 bytes). Zero is refused.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use K, M, G, KiB, MiB or GiB)"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a number of bytes"))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("must be more than 0".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("8 KiB"), Ok(8 << 10));
        for bad in [
            "",
            "0",
            "1TB",
            "-1G",
            "1.5G",
            "GiB",
            "99999999999999999999G",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// `[timestamp level target] message`.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, `fields`.
    Json,
}

/// `--when-full`: the sink's overload policy while the database is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WhenFullArg {
    /// `spill` for a tweet server, `block` with --jetstream.
    Auto,
    /// What memory cannot hold goes to the spool; the readers read on.
    Spill,
    /// Nothing is spilled while the database is up; the readers wait.
    Block,
}
