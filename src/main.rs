use clap::Parser;
use tweetflow::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Emulate(args)) => tweetflow::emulator::run_cli(args),
        None => anyhow::bail!("`tweetflow run` is not built yet"),
    }
}
