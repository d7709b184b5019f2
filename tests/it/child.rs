//! The `tweetflow` binary as a child process, as a user runs it: its stderr
//! collected line by line with the time each line came, its stats file read,
//! signals sent with `kill`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `tweetflow run`.
pub struct Tweetflow {
    pub child: Child,
    pub started: Instant,
    /// Every stderr line with the time it was read.
    pub lines: Arc<Mutex<Vec<(Instant, String)>>>,
    pub stats: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tweetflow {
    /// Starts `tweetflow` with `args`, `--stats-file` and `--spool-dir` in a
    /// temporary directory, `RUST_LOG=warn`.
    pub fn start(args: &[&str]) -> Tweetflow {
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tweetflow"))
            .args(args)
            .arg("--spool-dir")
            .arg(dir.path().join("spool"))
            .arg("--stats-file")
            .arg(&stats)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Tweetflow {
            child,
            started,
            lines,
            stats,
            _dir: dir,
        }
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self._dir.path().join("spool")
    }

    /// The first stderr line containing `needle`, with its time since the start.
    pub fn line_with(&self, needle: &str) -> Option<(Duration, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, l)| (t.saturating_duration_since(self.started), l.clone()))
    }

    /// All of stderr so far.
    pub fn stderr(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every object of the stats file so far.
    pub fn stats(&self) -> Vec<Value> {
        stats_lines(&self.stats)
    }

    /// Sends `signal` (`INT`, `KILL`, …).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits up to `limit` for the exit; kills the child and panics beyond.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the stderr reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (s, t.elapsed());
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "tweetflow did not exit within {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tweetflow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every JSON object of a stats file (an unfinished last line is skipped).
pub fn stats_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Reads the number before `label` in the exit summary.
pub fn number_before(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in:\n{text}"));
    text[..at]
        .split_whitespace()
        .last()
        .and_then(|w| w.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in:\n{text}"))
}
