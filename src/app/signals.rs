//! SIGINT and SIGTERM for `tweetflow run`.
//!
//! The first signal triggers the [`Shutdown`] token, so the pipeline drains
//! every stage front to back and commits what it holds. A second signal while
//! it drains exits at once with status 130: nothing is lost that was already
//! spilled, since the spool file is fsync'd and replayed at the next start.

use anyhow::Context;

use crate::shutdown::Shutdown;

/// Exit status of a second signal during the drain (128 + SIGINT, as a shell reports it).
const EXIT_ON_SECOND_SIGNAL: i32 = 130;

/// Registers the handlers: the first SIGINT/SIGTERM triggers `shutdown`, a
/// second one exits the process.
pub(super) fn install(shutdown: &Shutdown) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal.
        flag::register_conditional_shutdown(sig, EXIT_ON_SECOND_SIGNAL, shutdown.flag())
            .context("installing the signal handler")?;
        flag::register(sig, shutdown.flag()).context("installing the signal handler")?;
    }
    Ok(())
}
