//! The `tweetflow` binary: parses the command line, hands it to
//! [`tweetflow::app`], and prints the error chain once if it fails; the exit
//! code is 2 for a permanent database problem, 1 for any other error.

use std::process::ExitCode;

use clap::Parser;
use tweetflow::Cli;

fn main() -> ExitCode {
    match tweetflow::run_cli(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, once: "context: cause: cause".
            eprintln!("error: {e:#}");
            ExitCode::from(tweetflow::exit_code(&e))
        }
    }
}
