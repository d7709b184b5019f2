//! An emulator of the lab's rtp-server (issue 2).

/// `tweetflow emulate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {}

/// Runs the emulator in the foreground until Ctrl-C.
pub fn run_cli(_args: EmulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("the emulator is not built yet")
}
