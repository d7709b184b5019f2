//! Memory bounded in bytes, against a hostile server that sends ~1 MiB valid
//! tweets as fast as the socket takes them, with the mandated 50–500 ms work
//! delay on: the RSS of `tweetflow` stays within `--memory-limit` plus a fixed
//! overhead, and when the spool is full, ingest waits and nothing is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::child::{number_before, Tweetflow};
use crate::script_server::{serve, tweet_value, Streams};
use crate::sink_util::{TestSchema, ADMIN_URL};

const MIB: u64 = 1 << 20;
/// The limit the RSS test runs with: small, so that ~30 tweets reach it and
/// the budget, not the speed of a debug build, is what holds ingest back.
const LIMIT: u64 = 32 * MIB;
/// What the limit does not cover, for `--max-event-bytes 2MiB` and this
/// limit's 2 MiB batch cap (docs/GUARANTEES.md states the formula):
/// 64 MiB of process baseline (code, allocator, thread stacks), 4 × 2 MiB per
/// reader (read buffer, the event being parsed, the decode transient, one
/// tweet waiting for its permit) and 3 × 2 MiB for the writer (spool lines,
/// their records, the COPY buffer).
const OVERHEAD: u64 = 64 * MIB + 2 * 4 * 2 * MIB + 3 * 2 * MIB;

/// ~1 MiB tweets (the bulk in `source`, so that scoring stays cheap and the
/// test measures memory, not CPU); every third a retweet whose original holds
/// the bulk (so its raw JSON is carried twice).
fn hostile() -> Streams {
    // Spliced in as text, so that the server writes as fast as the socket takes it.
    let big: Arc<str> = "x".repeat(1_000_000).into();
    const BULK: &str = "@@bulk@@";
    Streams::Endless(Arc::new(move |stream, n| {
        let id = i64::from(stream) * 1_000_000_000 + n as i64 * 2;
        let mut t = tweet_value(id, "a good day", None);
        if n % 3 == 2 {
            let mut original = tweet_value(id + 1, "a happy day", None);
            original["source"] = BULK.into();
            t["retweeted_status"] = original;
        } else {
            t["source"] = BULK.into();
        }
        let data = tweetflow::testkit::event_data(&t.to_string());
        tweetflow::testkit::framed(&data).replacen(BULK, &big, 1)
    }))
}

/// RSS of `pid` in bytes, from /proc.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples the child's RSS every 100 ms until it exits or `run` passes; kills
/// it (and fails) as soon as it passes twice the bound, to spare the machine.
fn watch(tf: &mut Tweetflow, run: Duration, bound: u64) -> u64 {
    let mut peak = 0;
    let t = Instant::now();
    while t.elapsed() < run {
        if tf.child.try_wait().unwrap().is_some() {
            break;
        }
        if let Some(r) = rss(tf.child.id()) {
            peak = peak.max(r);
            if r > 2 * bound {
                let _ = tf.child.kill();
                panic!(
                    "RSS {} MiB, beyond twice the bound {} MiB",
                    r / MIB,
                    bound / MIB
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    peak
}

fn ingest_states(tf: &Tweetflow) -> Vec<String> {
    tf.stats()
        .iter()
        .filter_map(|s| s["ingest"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn rss_stays_within_the_limit_against_a_hostile_server() {
    let server = serve(hostile());
    let schema = TestSchema::new();
    let mut tf = Tweetflow::start(&[
        "--server",
        &server.url,
        "--database-url",
        ADMIN_URL,
        "--schema",
        &schema.name,
        "--memory-limit",
        "32MiB",
        "--max-event-bytes",
        "2097152",
        "--spool-max-bytes",
        "256MiB",
        // Few workers, so that the work delay holds tweets upstream and the
        // budget, not the pools, is what stops ingest.
        "--min-workers",
        "2",
        "--max-workers",
        "2",
        "--duration",
        "20",
        "--quiet",
    ]);
    let bound = LIMIT + OVERHEAD;
    let peak = watch(&mut tf, Duration::from_secs(120), bound);
    let (status, _) = tf.wait_exit(Duration::from_secs(120));
    let err = tf.stderr();
    eprintln!(
        "peak RSS {} MiB (limit {} MiB + overhead {} MiB = {} MiB)",
        peak / MIB,
        LIMIT / MIB,
        OVERHEAD / MIB,
        bound / MIB
    );
    assert!(status.success(), "{status:?}\n{err}");
    assert!(
        peak <= bound,
        "peak RSS {} MiB > {} MiB",
        peak / MIB,
        bound / MIB
    );
    // The budget was what held ingest back: the test is not passing idly.
    let waits = tf
        .stats()
        .last()
        .and_then(|s| s["ingest_waits"].as_u64())
        .unwrap_or(0);
    let most = tf
        .stats()
        .iter()
        .filter_map(|s| s["memory_used"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        waits > 0,
        "ingest never waited (at most {} MiB held): {:?}",
        most / MIB,
        ingest_states(&tf)
    );
    // Nothing vanished: every record is committed, rejected or in the spool.
    let records = number_before(&err, "records (");
    let committed = number_before(&err, "committed");
    let spooled = number_before(&err, "left in the spool");
    assert!(records > 20, "{err}");
    assert_eq!(committed + spooled, records, "{err}");
}

#[test]
fn a_full_spool_makes_ingest_wait_and_drops_nothing() {
    let server = serve(hostile());
    // Nobody listens there: every record goes to the spool.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let db = format!(
        "postgres://postgres@{}/postgres",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let max = 64 * MIB;
    let mut tf = Tweetflow::start(&[
        "--server",
        &server.url,
        "--database-url",
        &db,
        // Small, so that the drain after Ctrl-C (every tweet in memory still
        // passes the 50–500 ms work delay) stays short on a busy machine.
        "--memory-limit",
        "64MiB",
        "--max-event-bytes",
        "2097152",
        "--spool-max-bytes",
        "64MiB",
        "--quiet",
    ]);
    // Wait until the spool is reported full and ingest waits.
    let t = Instant::now();
    loop {
        let last = tf.stats().last().cloned();
        let waiting = last
            .as_ref()
            .is_some_and(|s| s["ingest"] == "waiting: spool full");
        if waiting {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "ingest never waited for the spool: {:?}\n{}",
            last,
            tf.stderr()
        );
        assert!(tf.child.try_wait().unwrap().is_none(), "{}", tf.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    // It stays held: the spool stops growing. Beyond the max it holds at most the
    // record whose append crossed it (the spool is found full after an append) and
    // what was in memory (--memory-limit).
    std::thread::sleep(Duration::from_secs(3));
    let last = tf.stats().last().cloned().unwrap();
    assert_eq!(last["ingest"], "waiting: spool full", "{last}");
    let spool_bytes = last["spool_bytes"].as_u64().unwrap();
    let crossing_record = 2 * MIB + 4096;
    assert!(
        spool_bytes >= max && spool_bytes <= max + crossing_record + 64 * MIB,
        "{last}"
    );
    assert!(
        tf.line_with("--spool-max-bytes").is_some(),
        "not logged:\n{}",
        tf.stderr()
    );
    // Ctrl-C: every record in memory goes to the spool too; none is dropped.
    tf.signal("INT");
    let (status, _) = tf.wait_exit(Duration::from_secs(180));
    let err = tf.stderr();
    assert!(status.success(), "{status:?}\n{err}");
    let records = number_before(&err, "records (");
    let spooled = number_before(&err, "left in the spool");
    assert!(records > 10, "{err}");
    assert_eq!(spooled, records, "{err}");
    let lines = tweetflow::testkit::spool_file_records(
        &tf.spool_dir().join(tweetflow::testkit::SPOOL_FILE),
    )
    .unwrap()
    .len() as u64;
    assert_eq!(lines, records);
}
