//! Maps the command line onto the stages' configurations.
//!
//! The flags arrive parsed loosely by [`super::cli`]; here every value is
//! checked before anything starts, so a bad flag stops `tweetflow` with a
//! message that names it (`--min-workers must be …`) instead of failing later
//! inside a stage. Seconds must be non-negative and finite, worker and batch
//! bounds must satisfy `1 <= min <= max`, and the target utilisation must lie
//! in `(0, 1]`. The built-in emulator always binds a free loopback port.

use std::time::Duration;

use anyhow::{bail, Context};

use super::cli::RunArgs;
use crate::ops::ListenAddr;
use crate::pipeline::PipelineConfig;

/// Maps the command line onto the stages' configurations.
pub fn config_from_args(args: &RunArgs) -> anyhow::Result<PipelineConfig> {
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
    cfg.sink.spool_dir = args.spool_dir.clone();
    cfg.sink.spool_max_bytes = Some(args.spool_max_bytes);
    cfg.memory_limit = args.memory_limit;
    cfg.sink.adopt_spool = args.adopt_spool;

    cfg.ops.addr = args
        .metrics_addr
        .parse::<ListenAddr>()
        .map_err(|e| anyhow::anyhow!("--metrics-addr: {e}"))?
        .socket();
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

/// The default database when neither `--database-url`, `TWEETFLOW_DATABASE_URL` nor
/// `DATABASE_URL` names one.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
}
