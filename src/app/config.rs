//! Maps the command line onto the stages' configurations.
//!
//! The flags arrive parsed loosely by [`super::cli`]; here every value is
//! checked before anything starts, so a bad flag stops `tweetflow` with a
//! message that names it (`--min-workers must be …`) instead of failing later
//! inside a stage. Seconds must be non-negative and finite, worker and batch
//! bounds must satisfy `1 <= min <= max`, and the target utilisation must lie
//! in `(0, 1]`. The built-in emulator always binds a free loopback port.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::cli::{RunArgs, WhenFullArg};
use crate::ops::ListenAddr;
use crate::pipeline::PipelineConfig;
use crate::sink::WhenFull;

/// Maps the command line onto the stages' configurations.
pub(crate) fn config_from_args(args: &RunArgs) -> anyhow::Result<PipelineConfig> {
    let secs = |what: &str, v: f64| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .with_context(|| format!("--{what} must be a non-negative number of seconds"))
    };
    let mut cfg = PipelineConfig {
        server: args.server.clone(),
        duration: args.duration.map(|d| secs("duration", d)).transpose()?,
        drain_timeout: secs("drain-timeout", args.drain_timeout)?,
        stats_file: args.stats_file.clone(),
        status_line: !args.quiet,
        ..PipelineConfig::default()
    };
    cfg.emulator.bind = "127.0.0.1:0".parse()?;
    cfg.emulator.seed = args.emulator_seed;
    cfg.emulator.rate = args
        .emulator_rate
        .parse()
        .map_err(|e| anyhow::anyhow!("--emulator-rate: {e}"))?;

    cfg.source.max_event_bytes = args.max_event_bytes;
    cfg.source.read_timeout = secs("read-timeout", args.read_timeout)?;

    cfg.core.work_delay = args
        .work_delay
        .parse()
        .map_err(|e| anyhow::anyhow!("--work-delay: {e}"))?;
    if args.min_workers == 0 || args.min_workers > args.max_workers {
        bail!("--min-workers must be at least 1 and at most --max-workers");
    }
    cfg.core.min_workers = args.min_workers;
    cfg.core.max_workers = args.max_workers;
    cfg.core.restart.max_restarts = args.max_restarts;
    cfg.core.restart.window = secs("restart-window", args.restart_window)?;
    if !(args.utilisation > 0.0 && args.utilisation <= 1.0) {
        bail!("--utilisation must be in (0, 1]");
    }
    cfg.core.utilisation = args.utilisation;

    cfg.aggregate.timeout = secs("aggregate-timeout", args.aggregate_timeout)?;

    if args.batch_min == 0 || args.batch_min > args.batch_max {
        bail!("--batch-min must be at least 1 and at most --batch-max");
    }
    cfg.sink.database_url = database_url(args);
    cfg.sink.db_ca_file = args.db_ca_file.clone();
    cfg.source.ca_file = args.server_ca_file.clone();
    cfg.sink.schema = args.schema.clone();
    cfg.sink.batch_min = args.batch_min;
    cfg.sink.batch_max = args.batch_max;
    cfg.sink.target_write = Duration::from_millis(args.batch_target_ms);
    cfg.sink.linger = Duration::from_millis(args.linger_ms);
    cfg.sink.buffer_records = args.buffer_records;
    cfg.sink.db_timeout = secs("db-timeout", args.db_timeout)?.max(Duration::from_secs(1));
    cfg.sink.spool_dir = args.spool_dir.clone().unwrap_or_else(default_spool_dir);
    cfg.sink.spool_max_bytes = Some(args.spool_max_bytes);
    cfg.memory_limit = args.memory_limit;
    cfg.sink.adopt_spool = args.adopt_spool;
    cfg.sink.when_full = match args.when_full {
        WhenFullArg::Spill => WhenFull::Spill,
        WhenFullArg::Block => WhenFull::Block,
        // The stream keeps what is not read yet; a tweet server does not.
        WhenFullArg::Auto if args.jetstream.is_some() => WhenFull::Block,
        WhenFullArg::Auto => WhenFull::Spill,
    };

    cfg.ops.addr = args
        .metrics_addr
        .parse::<ListenAddr>()
        .map_err(|e| anyhow::anyhow!("--metrics-addr: {e}"))?
        .socket();
    cfg.ops.fallback_port = metrics_addr_is_default(args);
    cfg.ops.control_token = args.control_token.clone().filter(|t| !t.is_empty());

    if let Some(url) = &args.jetstream {
        if args.server.is_some() {
            bail!("--server and --jetstream exclude each other: with --jetstream the tweets come from the stream that `tweetflow ingest` fills");
        }
        if args.max_ack_pending == 0 {
            bail!("--max-ack-pending must be at least 1");
        }
        let ack_wait = secs("ack-wait", args.ack_wait)?;
        if ack_wait < Duration::from_secs(1) {
            bail!("--ack-wait must be at least 1 second");
        }
        cfg.jetstream = Some(crate::pipeline::JetStreamRun {
            url: url.clone(),
            stream: args.stream.clone(),
            consumer: args.consumer.clone(),
            max_ack_pending: args.max_ack_pending,
            ack_wait,
            instance: args
                .instance
                .as_deref()
                .map(crate::jetstream::names::instance_token)
                .unwrap_or_else(crate::pipeline::default_instance),
            ..crate::pipeline::JetStreamRun::default()
        });
    }
    Ok(cfg)
}

/// Whether `--metrics-addr` is the default nobody chose: only then may a taken
/// port move to a free one. Known from where the value came from when the
/// command line was read by [`super::parse_cli`]; otherwise, whether it equals
/// the default.
fn metrics_addr_is_default(args: &RunArgs) -> bool {
    match args.settings.all.iter().find(|s| s.flag == "metrics-addr") {
        Some(s) => s.source == super::file::Source::Default,
        None => args.metrics_addr == DEFAULT_METRICS_ADDR,
    }
}

/// The operator's endpoint when `--metrics-addr` is not given.
pub(super) const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// The spool directory when `--spool-dir` names none: the platform's state
/// directory, from the process's environment ([`spool_dir_under`]).
pub(super) fn default_spool_dir() -> PathBuf {
    spool_dir_under(
        std::env::var_os("STATE_DIRECTORY"),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The spool directory under the platform's state directory: the first path of
/// systemd's `STATE_DIRECTORY` (`StateDirectory=tweetflow` makes it
/// `/var/lib/tweetflow`) + `spool`; else `$XDG_STATE_HOME/tweetflow/spool`
/// (the XDG base directories: an absolute path, a relative one is ignored);
/// else `$HOME/.local/state/tweetflow/spool`; with none of them, `spool` in
/// the working directory.
pub(super) fn spool_dir_under(
    state_directory: Option<OsString>,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    if let Some(dirs) = set(state_directory) {
        // systemd joins several StateDirectory= entries with ':'.
        let first = std::env::split_paths(&dirs).next().unwrap_or_default();
        if first.is_absolute() {
            return first.join("spool");
        }
    }
    if let Some(xdg) = set(xdg_state_home).map(PathBuf::from) {
        if xdg.is_absolute() {
            return xdg.join("tweetflow").join("spool");
        }
    }
    match set(home).map(PathBuf::from) {
        Some(home) if home.is_absolute() => home.join(".local/state/tweetflow/spool"),
        _ => PathBuf::from("spool"),
    }
}

/// The default database when neither `--database-url`, `TWEETFLOW_DATABASE_URL` nor
/// `DATABASE_URL` names one.
pub(super) const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `--database-url` (or `TWEETFLOW_DATABASE_URL`), else `DATABASE_URL`, else the default.
fn database_url(args: &RunArgs) -> String {
    args.database_url
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_full_auto_spills_for_a_server_and_blocks_with_jetstream() {
        use clap::Parser;
        let when = |extra: &[&str]| {
            let mut argv = vec!["tweetflow"];
            argv.extend_from_slice(extra);
            let crate::app::cli::Command::Run(args) =
                crate::app::cli::Cli::parse_from(argv).into_command()
            else {
                panic!("tweetflow alone must mean run");
            };
            config_from_args(&args).unwrap().sink.when_full
        };
        let js = ["--jetstream", "nats://127.0.0.1:4222"];
        assert_eq!(when(&[]), WhenFull::Spill);
        assert_eq!(when(&js), WhenFull::Block);
        assert_eq!(when(&["--when-full", "block"]), WhenFull::Block);
        assert_eq!(
            when(&[&js[..], &["--when-full", "spill"]].concat()),
            WhenFull::Spill
        );
    }

    #[test]
    fn flags_map_onto_the_stage_configs() {
        use clap::Parser;
        let cli = crate::app::cli::Cli::parse_from([
            "tweetflow",
            "--work-delay",
            "0",
            "--min-workers",
            "3",
            "--batch-max",
            "999",
            "--schema",
            "s1",
            "--duration",
            "2.5",
            "--emulator-rate",
            "max",
            "--drain-timeout",
            "1.5",
            "--memory-limit",
            "256MiB",
            "--metrics-addr",
            "[::1]:0",
            "--control-token",
            "t0k",
        ]);
        let crate::app::cli::Command::Run(args) = cli.into_command() else {
            panic!("tweetflow alone must mean run");
        };
        let cfg = config_from_args(&args).unwrap();
        assert_eq!(cfg.core.min_workers, 3);
        assert_eq!(cfg.sink.batch_max, 999);
        assert_eq!(cfg.sink.schema, "s1");
        assert_eq!(cfg.memory_limit, 256 << 20);
        assert_eq!(cfg.sink.spool_max_bytes, Some(10 << 30));
        assert_eq!(cfg.duration, Some(Duration::from_millis(2500)));
        assert_eq!(cfg.drain_timeout, Duration::from_millis(1500));
        assert_eq!(cfg.emulator.rate, crate::emulator::Rate::Max);
        assert_eq!(cfg.emulator.bind.port(), 0);
        assert_eq!(cfg.core.work_delay, crate::engine::WorkDelay::Off);
        assert_eq!(cfg.sink.spool_dir, default_spool_dir());
        assert_eq!(cfg.ops.addr, Some("[::1]:0".parse().unwrap()));
        assert_eq!(cfg.ops.control_token.as_deref(), Some("t0k"));
        let off = crate::app::cli::Cli::parse_from(["tweetflow", "--metrics-addr", "off"]);
        let crate::app::cli::Command::Run(args) = off.into_command() else {
            panic!("tweetflow alone must mean run");
        };
        assert_eq!(config_from_args(&args).unwrap().ops.addr, None);

        for bad in [
            vec!["tweetflow", "--min-workers", "0"],
            vec!["tweetflow", "--batch-min", "10", "--batch-max", "5"],
            vec!["tweetflow", "--work-delay", "fast"],
            vec!["tweetflow", "--duration=-1"],
            vec!["tweetflow", "--drain-timeout=-1"],
            vec!["tweetflow", "--utilisation", "1.5"],
            vec!["tweetflow", "--metrics-addr", "localhost:9464"],
        ] {
            let cli = crate::app::cli::Cli::parse_from(bad.clone());
            let crate::app::cli::Command::Run(args) = cli.into_command() else {
                panic!()
            };
            assert!(config_from_args(&args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_default_spool_lives_in_the_platforms_state_directory() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            spool_dir_under(os("/var/lib/tweetflow"), os("/x"), os("/home/u")),
            PathBuf::from("/var/lib/tweetflow/spool")
        );
        assert_eq!(
            spool_dir_under(os("/var/lib/tweetflow:/var/lib/other"), None, None),
            PathBuf::from("/var/lib/tweetflow/spool")
        );
        assert_eq!(
            spool_dir_under(None, os("/home/u/.state"), os("/home/u")),
            PathBuf::from("/home/u/.state/tweetflow/spool")
        );
        // Relative or empty values do not count (XDG base directories).
        assert_eq!(
            spool_dir_under(os(""), os("rel/state"), os("/home/u")),
            PathBuf::from("/home/u/.local/state/tweetflow/spool")
        );
        assert_eq!(spool_dir_under(None, None, None), PathBuf::from("spool"));
        assert_eq!(spool_dir_under(None, None, os("")), PathBuf::from("spool"));
    }
}
