//! The rejected file, `rejected.jsonl` in the spool directory: what the sink could
//! not store, kept for a person to look at.
//!
//! Two things end there: a tweet or user the database refused on its own (after the
//! writer isolated it), and a spool line that does not parse. One JSON object per
//! line, appended and `fsync`'d:
//! `{"at_unix_us":…, "part":"user"|"tweet"|"spool-line", "error":…, "record":…}`,
//! where `record` is the record's JSON, or the raw line as a string when it is not
//! JSON. A failure to write the file is logged, never fatal: it must not stop the
//! sink.

use std::io::Write;
use std::path::Path;

use crate::model::unix_micros;

/// File name of the rejected file inside the spool directory.
pub(crate) const REJECTED_FILE: &str = "rejected.jsonl";

/// Appends one rejected item to `rejected.jsonl` under `dir`:
/// `{"at_unix_us":…, "part":…, "error":…, "record":<record JSON or the raw line>}`.
pub(crate) fn save_rejected(dir: &Path, part: &str, error: &str, body: &str) {
    let record: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned()));
    let line = serde_json::json!({
        "at_unix_us": unix_micros(),
        "part": part,
        "error": error,
        "record": record,
    });
    let res = std::fs::create_dir_all(dir).and_then(|_| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(REJECTED_FILE))?;
        let mut s = line.to_string();
        s.push('\n');
        f.write_all(s.as_bytes())?;
        f.sync_data()
    });
    if let Err(e) = res {
        log::error!(
            "sink: cannot write the rejected file in {}: {e}",
            dir.display()
        );
    }
}
