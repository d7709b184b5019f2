//! The command line: `tweetflow [run]` and `tweetflow emulate`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tweetflow", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an emulation of the lab's rtp-server (tweet streams, lexicon).
    Emulate(crate::emulator::EmulateArgs),
}
