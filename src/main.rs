//! The `tweetflow` binary: parses the command line (with its `--config`
//! file), hands it to [`tweetflow::app`], and prints the error chain once if
//! it fails; the exit code is 2 for a permanent database problem, 1 for any
//! other error.

use std::process::ExitCode;

fn main() -> ExitCode {
    match tweetflow::parse_cli(std::env::args_os()).and_then(tweetflow::run_cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, once: "context: cause: cause".
            eprintln!("error: {e:#}");
            ExitCode::from(tweetflow::exit_code(&e))
        }
    }
}
