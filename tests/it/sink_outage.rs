//! The database goes away: mid-run for ~10 s, and while a process is SIGKILLed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sink_util::*;
use crossbeam_channel::bounded;
use tweetflow::{spawn_sink, Record, SinkConfig};

#[test]
fn database_unreachable_mid_run_for_ten_seconds_loses_nothing() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    let (recs, expect) = workload(1_000_000, 3_000);
    let total = recs.len();
    let cfg = SinkConfig {
        buffer_records: 1_000,
        ..db.config(spool.path())
    };
    let (tx, rx) = bounded(256);
    let sink = spawn_sink(cfg, rx).unwrap();
    let stats = sink.stats();
    // ~18 s of input at ~185 records/s.
    let feeder = feed_slowly(tx, recs, 37, Duration::from_millis(200));
    go_down_after_first_commits(&db, &stats);
    std::thread::sleep(Duration::from_secs(10));
    let during = stats.snapshot();
    // What is on disk is binary frames, each record once.
    let on_disk =
        tweetflow::testkit::spool_file_records(&spool.path().join(tweetflow::testkit::SPOOL_FILE))
            .unwrap();
    assert!(!on_disk.is_empty(), "the outage spilled to the spool");
    let mut seqs: Vec<u64> = on_disk.iter().map(|r| r.tweet.seq).collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a record spooled twice");
    db.come_back();
    feeder.join().unwrap();
    let s = sink.join().unwrap();
    assert!(s.stats.breaker_trips >= 1);
    assert!(
        during.spilled > 0,
        "records were spooled while down: {during:?}"
    );
    // What waited in the spool was written from there after the outage.
    assert!(
        s.stats.records_replayed >= during.spilled,
        "{} replayed, {} were in the spool during the outage",
        s.stats.records_replayed,
        during.spilled
    );
    assert_eq!(s.left_in_spool, 0);
    assert_eq!(s.stats.records_in as usize, total);
    assert_eq!(s.stats.rejected_rows, 0);
    check_rows(&db, &expect);
}

const CHILD_ENV: &str = "TF_SINK_KILL_CHILD";

/// Not a test on its own: the child process of the SIGKILL test (selected by env).
#[test]
#[ignore = "child process of sigkilled_while_the_database_is_down_then_restarted"]
fn sigkill_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut it = spec.splitn(2, '|');
    let url = it.next().unwrap().to_owned();
    let dir = it.next().unwrap().to_owned();
    let (recs, _) = workload(2_000_000, 2_000);
    let n = recs.len() as u64;
    let cfg = SinkConfig {
        database_url: url,
        spool_dir: dir.into(),
        ..SinkConfig::default()
    };
    let (tx, rx) = bounded(256);
    let sink = spawn_sink(cfg, rx).unwrap();
    let stats = sink.stats();
    for r in recs {
        tx.send(r).unwrap();
    }
    wait_for("everything on disk", Duration::from_secs(120), || {
        let s = stats.snapshot();
        s.spilled == n && s.buffered == 0
    });
    println!("READY {n}");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
    drop(tx);
}

#[test]
fn sigkilled_while_the_database_is_down_then_restarted() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    db.go_down();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sink_outage::sigkill_child",
            "--ignored",
            "--nocapture",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", db.url(), spool.path().display()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (ltx, lrx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = ltx.send(line);
        }
    });
    let ready = loop {
        match lrx.recv_timeout(Duration::from_secs(180)) {
            Ok(l) if l.starts_with("READY") => break l,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("child never got ready: {e}");
            }
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // A crash in the middle of a write would leave a torn last frame: add one
    // (a frame's magic and a length that claims more than follows).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(spool.path().join(tweetflow::testkit::SPOOL_FILE))
        .unwrap();
    f.write_all(&[0xF7, b'T', b'F', b'R', 0x40, 0, 0, 0, 9, 9])
        .unwrap();
    drop(f);
    db.come_back();

    let (_, expect) = workload(2_000_000, 2_000);
    let n: u64 = ready.trim_start_matches("READY ").parse().unwrap();
    let (tx, rx) = bounded::<Record>(1);
    drop(tx);
    let s = spawn_sink(db.config(spool.path()), rx)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(s.stats.replayed_at_start, n);
    assert_eq!(s.stats.torn_lines, 1);
    assert_eq!(s.stats.records_committed, n);
    assert_eq!(s.left_in_spool, 0);
    check_rows(&db, &expect);
}
