//! A database that is up but slower than the input, under both `--when-full`
//! policies: `block` spills nothing and holds the input back through the memory
//! budget; `spill` spills what memory cannot hold. Both commit every record once,
//! and an outage under `block` still goes to the spool and is replayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sink_util::*;
use crossbeam_channel::{bounded, Sender};
use tweetflow::testkit::SinkFault;
use tweetflow::{spawn_sink, Budget, Record, SinkConfig, Wait, WhenFull};

/// Records in the sink's memory share.
const SHARE: usize = 200;
/// The sink's input channel.
const CHANNEL: usize = 64;

/// A database that takes `per_record` longer for each record of a batch.
fn slow(per_record: Duration) -> Arc<SinkFault> {
    Arc::new(SinkFault {
        batch: Some(Arc::new(move |_| {
            std::thread::sleep(per_record);
            false
        })),
        ..SinkFault::default()
    })
}

fn config(
    db: &TestDb,
    spool: &std::path::Path,
    when_full: WhenFull,
    budget: &Arc<Budget>,
) -> SinkConfig {
    SinkConfig {
        buffer_records: SHARE,
        when_full,
        budget: Arc::clone(budget),
        ..db.config(spool)
    }
}

/// What a stream reader does: asks the budget before it sends each record on,
/// and waits while it says no. Returns how many times it waited because the sink
/// was behind.
fn feed_as_a_reader(tx: Sender<Record>, recs: Vec<Record>, budget: Arc<Budget>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut behind = 0;
        for r in recs {
            loop {
                match budget.acquire_timeout(1, Duration::from_millis(100)) {
                    Ok(_permit) => break,
                    Err(Wait::SinkBehind) => behind += 1,
                    Err(_) => {}
                }
            }
            tx.send(r).unwrap();
        }
        behind
    })
}

/// The most records the sink's memory held, sampled until `stop`.
fn watch_buffered(stats: Arc<tweetflow::SinkStats>, stop: Arc<AtomicU64>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut most = 0;
        while stop.load(Ordering::Relaxed) == 0 {
            most = most.max(stats.snapshot().buffered);
            std::thread::sleep(Duration::from_millis(5));
        }
        most
    })
}

fn run_slow(when_full: WhenFull) -> (tweetflow::SinkSummary, u64, u64) {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    let (recs, expect) = workload(5_000_000, 3_000);
    let total = recs.len() as u64;
    let budget = Budget::new(1 << 30);
    let cfg = SinkConfig {
        fault: Some(slow(Duration::from_micros(500))),
        ..config(&db, spool.path(), when_full, &budget)
    };
    let (tx, rx) = bounded(CHANNEL);
    let sink = spawn_sink(cfg, rx).unwrap();
    // Up before the input starts (until the first probe answers, the state is
    // `probing`, and both policies spill).
    let stats = sink.stats();
    wait_for("the sink to be up", Duration::from_secs(30), || {
        stats.snapshot().sink_state == tweetflow::SinkState::Up
    });
    let stop = Arc::new(AtomicU64::new(0));
    let watcher = watch_buffered(sink.stats(), Arc::clone(&stop));
    let behind = feed_as_a_reader(tx, recs, Arc::clone(&budget))
        .join()
        .unwrap();
    let s = sink.join().unwrap();
    stop.store(1, Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert_eq!(s.stats.records_in, total);
    assert_eq!(s.stats.records_committed, total, "{:?}", s.stats);
    assert_eq!(s.stats.rejected_rows, 0);
    assert_eq!(s.left_in_spool, 0);
    check_rows(&db, &expect);
    assert!(!budget.sink_behind(), "ingest was let go at the end");
    (s, behind, most)
}

#[test]
fn block_with_a_slow_database_spills_nothing_and_commits_every_record_once() {
    let (s, behind, most) = run_slow(WhenFull::Block);
    assert_eq!(s.stats.spilled_total, 0, "block spilled: {:?}", s.stats);
    assert_eq!(s.stats.records_replayed, 0);
    assert!(behind > 0, "the reader never waited for the sink");
    // Memory holds its share and what was on its way when the reader was held:
    // the channel and the record in the reader's hand.
    assert!(
        most <= (SHARE + CHANNEL + 2) as u64,
        "{most} records in memory, the share is {SHARE}"
    );
}

#[test]
fn spill_with_a_slow_database_spills_and_commits_every_record_once() {
    let (s, behind, most) = run_slow(WhenFull::Spill);
    assert!(s.stats.spilled_total > 0, "nothing spilled: {:?}", s.stats);
    assert_eq!(s.stats.records_replayed, s.stats.spilled_total);
    assert_eq!(behind, 0, "spill never holds the reader back");
    assert!(
        most <= SHARE as u64,
        "{most} records in memory, the share is {SHARE}"
    );
}

#[test]
fn block_during_an_outage_still_spills_and_replays_exact_rows() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    let (recs, expect) = workload(6_000_000, 2_000);
    let total = recs.len() as u64;
    let budget = Budget::new(1 << 30);
    let (tx, rx) = bounded(CHANNEL);
    let sink = spawn_sink(config(&db, spool.path(), WhenFull::Block, &budget), rx).unwrap();
    let stats = sink.stats();
    // ~11 s of input at ~185 records/s.
    let feeder = feed_slowly(tx, recs, 37, Duration::from_millis(200));
    go_down_after_first_commits(&db, &stats);
    wait_for(
        "records spooled during the outage",
        Duration::from_secs(30),
        || stats.snapshot().spilled > SHARE as u64,
    );
    assert!(!budget.sink_behind(), "down: ingest is not held");
    let on_disk =
        tweetflow::testkit::spool_file_records(&spool.path().join(tweetflow::testkit::SPOOL_FILE))
            .unwrap();
    assert!(!on_disk.is_empty(), "the outage spilled to the spool file");
    let during = stats.snapshot();
    db.come_back();
    feeder.join().unwrap();
    let s = sink.join().unwrap();
    assert!(s.stats.breaker_trips >= 1);
    assert!(s.stats.records_replayed >= during.spilled);
    assert_eq!(s.stats.records_in, total);
    assert_eq!(s.stats.records_committed, total);
    assert_eq!(s.left_in_spool, 0);
    check_rows(&db, &expect);
}
