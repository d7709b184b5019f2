use std::process::ExitCode;

use clap::Parser;
use tweetflow::app::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.into_command() {
        Command::Run(args) => tweetflow::pipeline::run_cli(args),
        Command::Emulate(args) => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            tweetflow::emulator::run_cli(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
