//! Wires every stage with bounded crossbeam channels (issue 6).

/// `tweetflow run`.
pub fn run_cli(_args: crate::cli::RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tweetflow run` is not wired yet")
}
