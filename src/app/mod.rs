//! The application shell: what `main` calls.
//!
//! It reads the command line with its configuration file (`file.rs`), prints
//! the effective configuration (`tweetflow config`), turns it into
//! configurations (`config.rs`), checks a setup
//! without running it (`check.rs`, `tweetflow check`), sets up the
//! logger (`logging.rs`) and the signal handlers (`signals.rs`), runs the
//! library, and prints what a person needs at the end (the run's summary).
//! It is the one place in the library where errors are `anyhow` chains:
//! every stage below returns its own typed error, and here they only gain
//! the context of the command that failed. `main` prints the chain once.

mod check;
mod cli;
mod config;
mod emulate;
mod file;
mod ingest;
mod lock;
mod logging;
mod signals;

use std::io::IsTerminal;

pub use cli::Cli;
pub(crate) use cli::{Command, LogFormat, RunArgs};
pub(crate) use config::config_from_args;
pub use file::parse_cli;

use crate::shutdown::Shutdown;

/// The exit code for an error of [`run_cli`]: the pipeline's
/// [`PipelineError::exit_code`](crate::PipelineError::exit_code) (2 for a
/// permanent database problem), 1 for anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|c| c.downcast_ref::<crate::pipeline::PipelineError>())
        .map_or(1, crate::pipeline::PipelineError::exit_code)
}

/// Runs the command the command line asks for: `run` (the default), `check` or `emulate`.
pub fn run_cli(cli: Cli) -> anyhow::Result<()> {
    match cli.into_command() {
        Command::Run(args) => run(&args),
        Command::Check(args) => {
            logging::init(args.log_format, false);
            check::run(&args)
        }
        Command::Config(args) => {
            print!("{}", file::render(&args));
            config_from_args(&args).map(|_| ())
        }
        Command::Emulate(args) => {
            logging::init(LogFormat::Text, false);
            emulate::run(args)
        }
        Command::Ingest(args) => {
            logging::init(LogFormat::Text, false);
            ingest::run(&args)
        }
    }
}

/// `tweetflow run`: builds the configuration from the flags, handles signals and
/// logging, runs, prints the summary.
fn run(args: &RunArgs) -> anyhow::Result<()> {
    let mut cfg = config_from_args(args)?;
    let json = args.log_format == LogFormat::Json;
    // JSON logs: stderr holds nothing but log objects.
    cfg.status_line &= !json;
    let terminal = std::io::stderr().is_terminal() && cfg.status_line;
    logging::init(args.log_format, terminal);
    // One instance per spool directory, held until the process ends.
    let _spool_lock = lock::lock(&cfg.sink.spool_dir)?;
    // The full path: a relative --spool-dir depends on where tweetflow was started.
    log::info!(
        "spool directory {} (locked by this instance, pid {})",
        lock::absolute(&cfg.sink.spool_dir).display(),
        std::process::id()
    );

    let shutdown = Shutdown::new();
    signals::install(&shutdown)?;
    let summary = crate::pipeline::run(cfg, shutdown)?;
    if json {
        log::info!(target: "tweetflow::summary", "{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}
