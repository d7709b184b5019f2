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
//!
//! The file is bounded: a line that would take it beyond [`REJECTED_MAX_BYTES`]
//! (64 MiB) first renames it to `rejected.jsonl.1`, replacing the one before, and
//! starts a new one. The newest lines, at least that many bytes of them, are
//! always on disk, and the two files together hold at most twice that (plus one
//! line: a line larger than the bound is kept whole, alone in its file). How many
//! tweets and users the database refused in all is
//! `tweetflow_records_rejected_total`, whatever the rotation dropped.

use std::io::Write;
use std::path::Path;

use parking_lot::Mutex;

use crate::model::unix_micros;

/// File name of the rejected file inside the spool directory.
pub(crate) const REJECTED_FILE: &str = "rejected.jsonl";

/// The previous rejected file, kept by one rotation.
pub(crate) const REJECTED_OLD_FILE: &str = "rejected.jsonl.1";

/// Size at which `rejected.jsonl` is rotated (64 MiB).
pub(crate) const REJECTED_MAX_BYTES: u64 = 64 << 20;

/// One writer at a time: the size check, the rotation and the append are one step.
static WRITE: Mutex<()> = Mutex::new(());

/// Appends one rejected item to `rejected.jsonl` under `dir`:
/// `{"at_unix_us":…, "part":…, "error":…, "record":<record JSON or the raw line>}`.
pub(crate) fn save_rejected(dir: &Path, part: &str, error: &str, body: &str) {
    save_bounded(dir, REJECTED_MAX_BYTES, part, error, body);
}

/// [`save_rejected`] with the rotation at `max_bytes`.
fn save_bounded(dir: &Path, max_bytes: u64, part: &str, error: &str, body: &str) {
    let record: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned()));
    let line = serde_json::json!({
        "at_unix_us": unix_micros(),
        "part": part,
        "error": error,
        "record": record,
    });
    let mut s = line.to_string();
    s.push('\n');
    let _one = WRITE.lock();
    let res = std::fs::create_dir_all(dir).and_then(|_| {
        let path = dir.join(REJECTED_FILE);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if len > 0 && len.saturating_add(s.len() as u64) > max_bytes {
            std::fs::rename(&path, dir.join(REJECTED_OLD_FILE))?;
            log::info!(
                "sink: {} reached {len} bytes; renamed to {REJECTED_OLD_FILE} (the one before \
                 is dropped), a new one started",
                path.display()
            );
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence numbers of the lines of `file` (missing file: none).
    fn seqs(dir: &Path, file: &str) -> Vec<u64> {
        let text = match std::fs::read_to_string(dir.join(file)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("{file}: {e}"),
        };
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["record"]["seq"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn the_file_rotates_at_its_bound_and_keeps_every_line_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let max = 4096u64;
        let mut sizes = Vec::new();
        let n = 200u64;
        for seq in 0..n {
            let body = format!(
                r#"{{"seq":{seq},"text":"{}"}}"#,
                "x".repeat((seq % 7) as usize * 10)
            );
            save_bounded(dir.path(), max, "tweet", "value too long", &body);
            let cur = std::fs::metadata(dir.path().join(REJECTED_FILE))
                .unwrap()
                .len();
            sizes.push(cur);
            assert!(cur <= max, "{REJECTED_FILE} is {cur} bytes, beyond {max}");
        }
        let old = seqs(dir.path(), REJECTED_OLD_FILE);
        let cur = seqs(dir.path(), REJECTED_FILE);
        assert!(!old.is_empty(), "no rotation after {n} lines");
        assert!(sizes.windows(2).filter(|w| w[1] < w[0]).count() >= 2);
        // The two files hold the newest lines, in order, without a gap, the last one last.
        let kept: Vec<u64> = old.iter().chain(&cur).copied().collect();
        let first = kept[0];
        assert_eq!(kept, (first..n).collect::<Vec<_>>());
        // At least the newest `max` bytes of lines are kept.
        let old_len = std::fs::metadata(dir.path().join(REJECTED_OLD_FILE))
            .unwrap()
            .len();
        let cur_len = std::fs::metadata(dir.path().join(REJECTED_FILE))
            .unwrap()
            .len();
        assert!(
            old_len <= max && old_len + cur_len > max,
            "{old_len} + {cur_len}"
        );
    }

    #[test]
    fn a_line_larger_than_the_bound_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = format!(r#"{{"seq":1,"text":"{}"}}"#, "y".repeat(300));
        save_bounded(dir.path(), 100, "tweet", "e", r#"{"seq":0}"#);
        save_bounded(dir.path(), 100, "tweet", "e", &big);
        save_bounded(dir.path(), 100, "tweet", "e", r#"{"seq":2}"#);
        assert_eq!(seqs(dir.path(), REJECTED_OLD_FILE), vec![1]);
        assert_eq!(seqs(dir.path(), REJECTED_FILE), vec![2]);
    }
}
