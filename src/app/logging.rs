//! Log output on stderr, at `info` unless `RUST_LOG` says otherwise.
//!
//! When the status lines are drawn on a terminal they are redrawn in place
//! once a second; a log line written below them would be overwritten or would
//! break the picture. So on a terminal every log line first erases the status
//! lines (if they are drawn) and takes their place; the status thread draws
//! them again at its next tick. Elsewhere (a pipe, a file, `--quiet`) the
//! default env_logger format is used unchanged.

use std::io::Write;

use crate::pipeline::erase_status_lines;

/// Sets up the process's logger; `terminal`: the status lines are drawn on
/// stderr, which is a terminal. A logger set up earlier is kept.
pub(super) fn init(terminal: bool) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if terminal {
        builder.format(|buf, record| {
            erase_status_lines(buf)?;
            writeln!(
                buf,
                "[{} {:5} {}] {}",
                buf.timestamp_seconds(),
                record.level(),
                record.target(),
                record.args()
            )
        });
    }
    let _ = builder.try_init();
}
