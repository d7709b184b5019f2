//! The binary under a lowered `RLIMIT_NPROC` (`prlimit --nproc`) and a burst
//! with 2 % kills: it reads the limit at start, bounds the worker threads by
//! it, and neither aborts nor loses a record.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tweetflow::{Emulator, EmulatorConfig, Rate};

use crate::child::number_before;
use crate::sink_util::TestSchema;

const DB_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Threads of every process of this user (as the binary counts them at start).
fn user_threads() -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let uid = s.lines().find_map(|l| l.strip_prefix("Uid:"));
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        let my_uid = own.lines().find_map(|l| l.strip_prefix("Uid:"));
        if uid.and_then(|u| u.split_whitespace().next())
            == my_uid.and_then(|u| u.split_whitespace().next())
        {
            n += s
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    n
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_lowered_nproc_limit_bounds_the_threads_through_a_burst_with_kills() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed by this test");
    }
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // 2 % of the events are kills; 1,200 events/s in both streams want about
    // 1,200 × 0.06 / 0.8 = 90 workers per pool, more than the limit leaves.
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: 77,
        rate: Rate::Constant(600.0),
        kill_every: Some(50),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let nproc = user_threads() + 64 + 160;
    let mut child = Command::new("prlimit")
        .arg(format!("--nproc={nproc}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tweetflow"))
        .args(["--server", &emulator.url()])
        .args(["--database-url", DB_URL, "--schema", &schema.name])
        .args(["--work-delay", "20..100", "--duration", "5"])
        // The bound keeps the pools below what the burst wants: the backlog
        // is drained, however loaded the machine is.
        .args(["--drain-timeout", "120"])
        .arg("--spool-dir")
        .arg(spool.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { err }, &mut s);
        s
    });
    let mut peak = 0;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(180), "no exit");
        peak = peak.max(threads_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reader.join().unwrap();
    emulator.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("fatal runtime error"), "{err}");
    let bound_line = err
        .lines()
        .find(|l| l.contains("worker threads: at most"))
        .unwrap_or_else(|| panic!("no bound logged: {err}"));
    assert!(
        bound_line.contains(&format!("RLIMIT_NPROC {nproc}")),
        "{bound_line}"
    );
    let per_pool = number_before(bound_line, "worker threads per pool") as usize;
    // (nproc − the user's threads at the child's start − 64) / 2 in both
    // pools, half each (the user's other threads come and go meanwhile).
    let user = number_before(bound_line, "threads of this user)");
    let want = (nproc.saturating_sub(user).saturating_sub(64) / 2 / 2).max(1) as usize;
    assert_eq!(per_pool, want, "{bound_line}");
    assert!(per_pool < 4096, "the limit did not bind: {bound_line}");
    // Every thread of the process: the workers plus the stages' few dozen.
    assert!(
        peak <= 2 * per_pool + 64,
        "peak {peak} threads: {bound_line}"
    );
    let summary = err
        .find("tweetflow ran")
        .map(|at| &err[at..])
        .unwrap_or_else(|| panic!("no exit summary: {err}"));
    let kills = number_before(summary, "kill messages");
    let records = number_before(summary, "records (");
    let committed = number_before(summary, "committed");
    assert!(kills > 20, "{summary}");
    assert!(records > 1000, "{summary}");
    assert_eq!(committed, records, "{summary}");
    assert_eq!(number_before(summary, "left in the spool"), 0, "{summary}");
    eprintln!("{bound_line}\npeak {peak} threads\n{summary}");
}
