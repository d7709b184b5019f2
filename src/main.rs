use clap::Parser;
use tweetflow::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.into_command() {
        Command::Run(args) => tweetflow::pipeline::run_cli(args),
        Command::Emulate(args) => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            tweetflow::emulator::run_cli(args)
        }
    }
}
