//! The sink against bad input and its own bugs, on the real PostgreSQL: a field
//! that does not parse is stored as NULL, a record that cannot be encoded is
//! rejected on its own, a panicking writer restarts with the batch it held or, if it
//! keeps panicking, stops with everything spooled.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sink_util::*;
use crossbeam_channel::bounded;
use tweetflow::testkit::{records, SinkFault};
use tweetflow::{spawn_sink, Record, SinkConfig, SinkError};

fn count(schema: &str, sql: &str) -> i64 {
    admin()
        .query_one(&sql.replace("S.", &format!("\"{schema}\".")), &[])
        .unwrap()
        .get(0)
}

fn cfg(schema: &TestSchema, spool: &std::path::Path, batch: usize) -> SinkConfig {
    SinkConfig {
        batch_min: batch,
        batch_max: batch,
        batch_initial: batch,
        linger: Duration::from_millis(300),
        ..schema.config(spool)
    }
}

use crate::sink_util::run_sink as send_all;

#[test]
fn a_bad_date_is_stored_as_null_with_the_raw_json_kept() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut recs = records(1, 1, 20);
    // Five-byte offsets holding a multi-byte character: a byte-slicing parser cuts
    // inside it and panics.
    let bad_tweet = "Mon Apr 18 19:30:47 +0é0 2016";
    let bad_user = "Wed Jul 11 09:12:03 é000 2012";
    let mut t = (*recs[7].tweet).clone();
    t.created_at = Some(bad_tweet.into());
    t.raw = t
        .raw
        .replacen(
            "\"created_at\":\"",
            &format!("\"created_at\":\"{bad_tweet}"),
            1,
        )
        .into();
    t.user.id = 4242;
    t.user.created_at = Some(bad_user.into());
    t.user.raw = format!(r#"{{"id":4242,"created_at":"{bad_user}"}}"#).into();
    recs[7].tweet = t.into();
    let s = send_all(cfg(&schema, spool.path(), 20), recs).unwrap();
    assert_eq!(s.stats.records_committed, 20);
    assert_eq!(s.stats.records_rejected, 0);
    assert_eq!(s.left_in_spool, 0);
    let n = |sql: &str| count(&schema.name, sql);
    assert_eq!(n("SELECT count(*) FROM S.tweets"), 20);
    assert_eq!(
        n(
            "SELECT count(*) FROM S.tweets WHERE id = 8 AND created_at IS NULL \
           AND starts_with(raw->>'created_at', 'Mon Apr 18 19:30:47 +0é0 2016')"
        ),
        1
    );
    assert_eq!(
        n(
            "SELECT count(*) FROM S.users WHERE id = 4242 AND created_at IS NULL \
           AND raw->>'created_at' = 'Wed Jul 11 09:12:03 é000 2012'"
        ),
        1
    );
    // The good dates are still parsed.
    assert_eq!(
        n("SELECT count(*) FROM S.tweets WHERE created_at IS NOT NULL"),
        19
    );
}

#[test]
fn a_record_that_cannot_be_encoded_is_rejected_and_the_rest_lands() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let recs = records(1, 1, 50);
    let fault = SinkFault {
        encode: Some(Arc::new(|seq| seq == 17)),
        ..SinkFault::default()
    };
    let c = SinkConfig {
        fault: Some(Arc::new(fault)),
        ..cfg(&schema, spool.path(), 50)
    };
    let s = send_all(c, recs).unwrap();
    assert_eq!(s.stats.records_rejected, 1);
    assert_eq!(s.stats.records_committed, 49);
    assert_eq!(
        s.stats.records_committed + s.stats.records_rejected,
        s.stats.records_in
    );
    assert_eq!(s.left_in_spool, 0);
    let n = |sql: &str| count(&schema.name, sql);
    assert_eq!(n("SELECT count(*) FROM S.tweets"), 49);
    assert_eq!(n("SELECT count(*) FROM S.tweets WHERE id = 17"), 0);
    let rejected = std::fs::read_to_string(spool.path().join("rejected.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{rejected}");
    assert_eq!(lines[0]["record"]["tweet"]["seq"], 17);
    let why = lines[0]["error"].as_str().unwrap();
    assert!(why.contains("encoder panicked"), "{why}");
}

#[test]
fn a_writer_panic_restarts_it_with_the_batch_it_held() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let recs = records(1, 1, 60);
    let fired = Arc::new(AtomicU64::new(0));
    let f2 = Arc::clone(&fired);
    let fault = SinkFault {
        // The first batch holding seq 25 panics once; it must then land anyway.
        batch: Some(Arc::new(move |seq| {
            seq == 25 && f2.fetch_add(1, Ordering::SeqCst) == 0
        })),
        ..SinkFault::default()
    };
    let c = SinkConfig {
        fault: Some(Arc::new(fault)),
        ..cfg(&schema, spool.path(), 20)
    };
    let s = send_all(c, recs).unwrap();
    assert!(fired.load(Ordering::SeqCst) >= 1, "the fault never fired");
    assert_eq!(s.stats.writer_restarts, 1);
    assert_eq!(s.stats.records_committed, 60);
    assert_eq!(s.left_in_spool, 0);
    assert_eq!(count(&schema.name, "SELECT count(*) FROM S.tweets"), 60);
}

#[test]
fn a_writer_that_keeps_panicking_stops_the_sink_with_its_records_spooled() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let fault = SinkFault {
        batch: Some(Arc::new(|_| true)),
        ..SinkFault::default()
    };
    let mut c = SinkConfig {
        fault: Some(Arc::new(fault)),
        ..cfg(&schema, spool.path(), 20)
    };
    c.restart.max_restarts = 2;
    c.restart.backoff_base = Duration::from_millis(1);
    c.restart.backoff_max = Duration::from_millis(5);
    let (tx, rx) = bounded(64);
    let sink = spawn_sink(c.clone(), rx).unwrap();
    let stats = sink.stats();
    for r in records(1, 1, 40) {
        tx.send(r).unwrap();
    }
    wait_for("the writer to give up", Duration::from_secs(30), || {
        sink.failure().is_some()
    });
    let f = sink.failure().unwrap();
    assert_eq!(f.thread, tweetflow::SinkThread::Writer);
    assert!(f.cause.contains("test fault"), "{}", f.cause);
    // From now on the sink never says "up", however the health probe goes.
    for r in records(41, 41, 20) {
        tx.send(r).unwrap();
    }
    for _ in 0..10 {
        assert_eq!(stats.snapshot().sink_state, "failed");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(tx);
    match sink.join() {
        Err(SinkError::WriterFailed { cause }) => assert!(cause.contains("test fault"), "{cause}"),
        other => panic!("expected WriterFailed, got {other:?}"),
    }
    let snap = stats.snapshot();
    assert_eq!(snap.records_committed, 0);
    assert_eq!(snap.spilled, 60, "every record is in the spool");
    // The next start, without the bug, writes them all.
    let s = send_all(SinkConfig { fault: None, ..c }, Vec::new()).unwrap();
    assert_eq!(s.stats.replayed_at_start, 60);
    assert_eq!(s.stats.records_committed, 60);
    assert_eq!(count(&schema.name, "SELECT count(*) FROM S.tweets"), 60);
}

#[test]
fn an_idle_spool_tail_is_fsynced_on_a_timer() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // The writer's first batch stops in the fault hook until the test lets it go:
    // meanwhile the writer neither writes nor moves anything to the spool, so
    // nothing of its own (an outage's evacuation fsyncs the spool) can stand in
    // for the timer.
    let (entered_tx, entered) = crossbeam_channel::unbounded::<u64>();
    let (release, released) = bounded::<()>(0);
    let fault = SinkFault {
        batch: Some(Arc::new(move |seq| {
            let _ = entered_tx.send(seq);
            // Returns once `release` is dropped, and at once from then on.
            let _ = released.recv();
            false
        })),
        ..SinkFault::default()
    };
    let cfg = SinkConfig {
        // One record in memory at most: the next one is appended to the spool.
        buffer_records: 1,
        spool_sync: Duration::from_millis(100),
        fault: Some(Arc::new(fault)),
        ..cfg(&schema, spool.path(), 1)
    };
    let (tx, rx) = bounded(16);
    let sink = spawn_sink(cfg, rx).unwrap();
    let stats = sink.stats();
    let mut recs = records(1, 1, 3).into_iter();
    tx.send(recs.next().unwrap()).unwrap();
    assert_eq!(
        entered.recv_timeout(Duration::from_secs(30)),
        Ok(1),
        "the writer never took the first record"
    );
    // The second record fills memory, the third is appended to the spool; then
    // nothing more comes.
    for r in recs {
        tx.send(r).unwrap();
    }
    wait_for("the append", Duration::from_secs(10), || {
        stats.snapshot().spilled == 1
    });
    // No further append comes and the writer is held: the timer alone must fsync it.
    wait_for(
        "the idle tail to be fsynced",
        Duration::from_secs(10),
        || stats.snapshot().spool_unsynced == 0,
    );
    let snap = stats.snapshot();
    assert!(entered.is_empty(), "the writer moved on");
    assert_eq!(snap.records_committed, 0, "the writer was held: {snap:?}");
    assert_eq!(snap.sink_state, "up", "no outage, no evacuation: {snap:?}");
    drop(release);
    drop(tx);
    let s = sink.join().unwrap();
    assert_eq!(s.stats.records_committed, 3);
    assert_eq!(s.left_in_spool, 0);
}

#[test]
fn a_spool_for_another_target_is_not_replayed_unless_adopted() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // A run against a database that is down leaves its records in the spool.
    let other = SinkConfig {
        database_url: "postgres://postgres:secret@127.0.0.1:1/postgres".into(),
        schema: "elsewhere".into(),
        spool_dir: spool.path().to_path_buf(),
        connect_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_millis(300),
        ..SinkConfig::default()
    };
    let s = send_all(other, records(1, 1, 5)).unwrap();
    assert_eq!(s.left_in_spool, 5);
    let tag = std::fs::read_to_string(spool.path().join("spool.target")).unwrap();
    assert_eq!(
        tag.trim(),
        "postgres://postgres@127.0.0.1:1/postgres schema=elsewhere"
    );
    assert!(!tag.contains("secret"), "no password in the tag");
    // Another target: refused, with what was found and how to replay deliberately.
    let (_tx, rx) = bounded::<Record>(1);
    let e = spawn_sink(schema.config(spool.path()), rx).unwrap_err();
    let m = e.to_string();
    assert!(
        matches!(e, SinkError::SpoolTarget { pending: 5, .. }),
        "{e:?}"
    );
    assert!(m.contains("127.0.0.1:1/postgres schema=elsewhere"), "{m}");
    assert!(m.contains(&format!("schema={}", schema.name)), "{m}");
    assert!(m.contains("--adopt-spool"), "{m}");
    // Deliberately adopted: replayed into this target.
    let s = send_all(
        SinkConfig {
            adopt_spool: true,
            ..schema.config(spool.path())
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!(s.stats.replayed_at_start, 5);
    assert_eq!(s.stats.records_committed, 5);
    assert_eq!(count(&schema.name, "SELECT count(*) FROM S.tweets"), 5);
}

#[test]
fn a_sink_writer_that_fails_for_good_stops_the_pipeline_with_its_records_spooled() {
    use tweetflow::{Emulator, EmulatorConfig, PipelineConfig, PipelineError, Rate, Shutdown};
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let stats_file = spool.path().join("stats.jsonl");
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        rate: Rate::Constant(200.0),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let mut cfg = PipelineConfig {
        server: Some(emulator.url()),
        duration: Some(Duration::from_secs(60)),
        channel_capacity: 256,
        stats_file: Some(stats_file.clone()),
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    cfg.sink = SinkConfig {
        fault: Some(Arc::new(SinkFault {
            batch: Some(Arc::new(|_| true)),
            ..SinkFault::default()
        })),
        ..schema.config(spool.path())
    };
    cfg.sink.restart.max_restarts = 2;
    cfg.sink.restart.backoff_base = Duration::from_millis(1);
    cfg.sink.restart.backoff_max = Duration::from_millis(5);
    let t = std::time::Instant::now();
    let err = tweetflow::run(cfg, Shutdown::new()).unwrap_err();
    emulator.stop();
    // Stopped by the failure, long before --duration.
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    // The whole chain, as main prints it.
    let mut m = err.to_string();
    let mut src = std::error::Error::source(&err);
    while let Some(e) = src {
        m = format!("{m}: {e}");
        src = e.source();
    }
    assert!(
        matches!(err, PipelineError::Sink(SinkError::WriterFailed { .. })),
        "{err:?}"
    );
    assert!(m.contains("writer failed for good"), "{m}");
    assert_eq!(err.exit_code(), 1);
    // Every record of the run is in the spool; none was written.
    assert_eq!(count(&schema.name, "SELECT count(*) FROM S.tweets"), 0);
    let spooled =
        tweetflow::testkit::spool_file_records(&spool.path().join(tweetflow::testkit::SPOOL_FILE))
            .unwrap();
    assert!(!spooled.is_empty());
    // Once failed, the stats file never says "up" again.
    let states: Vec<String> = std::fs::read_to_string(&stats_file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["sink"].as_str().unwrap().to_string()
        })
        .collect();
    let first_failed = states
        .iter()
        .position(|s| s == "failed")
        .unwrap_or_else(|| panic!("the stats file never says failed: {states:?}"));
    assert!(
        states[first_failed..].iter().all(|s| s != "up"),
        "{states:?}"
    );
    assert_ne!(states.last().map(String::as_str), Some("up"), "{states:?}");
}

#[test]
fn the_sequence_starts_above_the_highest_stored_whatever_the_clock() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // An earlier run, ten years "ahead" of this clock (the clock stepped back since).
    let ahead = tweetflow::unix_micros() + 10 * 365 * 86_400 * 1_000_000;
    let mut old = records(ahead, 7, 1);
    let mut t = (*old[0].tweet).clone();
    t.text = "old text".into();
    old[0].tweet = t.into();
    let s = send_all(schema.config(spool.path()), old).unwrap();
    assert_eq!(s.stats.records_committed, 1);
    // This run: its records must win over the stored ones.
    let (tx, rx) = bounded(4);
    let sink = spawn_sink(schema.config(spool.path()), rx).unwrap();
    let seq = sink.seq().next();
    assert!(seq > ahead, "seq {seq} is not above the stored {ahead}");
    let mut new = records(seq, 7, 1);
    let mut t = (*new[0].tweet).clone();
    t.text = "new text".into();
    new[0].tweet = t.into();
    tx.send(new.remove(0)).unwrap();
    drop(tx);
    let s = sink.join().unwrap();
    assert_eq!(s.stats.tweets_changed, 1, "the newer version was applied");
    let row = admin()
        .query_one(
            &format!(
                "SELECT text, ingest_seq FROM \"{}\".tweets WHERE id = 7",
                schema.name
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "new text");
    assert_eq!(row.get::<_, i64>(1) as u64, seq);
}

/// A sink configuration against nothing (the database is never reached), with
/// `sync_dir` standing in for the spool's directory fsync.
fn with_dir_sync(
    dir: &std::path::Path,
    sync_dir: Arc<tweetflow::testkit::DirSyncFn>,
) -> SinkConfig {
    SinkConfig {
        database_url: "postgres://postgres@127.0.0.1:1/postgres".into(),
        spool_dir: dir.to_path_buf(),
        connect_timeout: Duration::from_millis(500),
        fault: Some(Arc::new(SinkFault {
            sync_dir: Some(sync_dir),
            ..SinkFault::default()
        })),
        ..SinkConfig::default()
    }
}

#[test]
fn the_spool_directory_is_fsynced_after_its_files_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    // Each call: the directory, and the names in it at that moment.
    let calls = Arc::new(std::sync::Mutex::new(Vec::<(PathBuf, Vec<String>)>::new()));
    let seen = Arc::clone(&calls);
    let cfg = with_dir_sync(
        &dir,
        Arc::new(move |d: &std::path::Path| {
            let mut names = std::fs::read_dir(d)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<Vec<_>>>()?;
            names.sort();
            seen.lock().unwrap().push((d.to_path_buf(), names));
            std::fs::File::open(d)?.sync_all()
        }),
    );
    send_all(cfg.clone(), Vec::new()).unwrap();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            (dir.clone(), names(&["spool.bin"])),
            (dir.clone(), names(&["spool.bin", "spool.target"])),
        ],
        "once the spool file exists, and once its target tag is in place"
    );
    // A second start creates nothing: no directory fsync is needed.
    send_all(cfg, Vec::new()).unwrap();
    assert_eq!(calls.lock().unwrap().len(), 2);
}

#[test]
fn a_failing_directory_fsync_is_reported_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let cfg = with_dir_sync(
        &dir,
        Arc::new(|_: &std::path::Path| Err(std::io::Error::other("injected: EIO on fsync"))),
    );
    let (_tx, rx) = bounded::<Record>(1);
    let e = spawn_sink(cfg, rx).unwrap_err();
    match &e {
        SinkError::Spool { path, source } => {
            assert_eq!(path, &dir);
            assert_eq!(source.to_string(), "injected: EIO on fsync");
        }
        other => panic!("expected SinkError::Spool, got {other:?}"),
    }
    assert_eq!(e.to_string(), format!("spool directory {}", dir.display()));
}

/// How many valid indexes of `schema`.`table` lead with `ingest_seq`.
fn seq_indexes(schema: &str, table: &str) -> i64 {
    admin()
        .query_one(
            "SELECT count(*) FROM pg_index i
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
              WHERE n.nspname = $1 AND c.relname = $2 AND i.indisvalid
                AND a.attname = 'ingest_seq'",
            &[&schema, &table],
        )
        .unwrap()
        .get(0)
}

#[test]
fn the_tables_get_an_ingest_seq_index_and_tables_of_earlier_versions_without_it_are_accepted() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // A first start creates the tables, each with the index the start-up's
    // max(ingest_seq) reads.
    let s = send_all(schema.config(spool.path()), records(1, 1, 3)).unwrap();
    assert_eq!(s.stats.records_committed, 3);
    for table in ["users", "tweets"] {
        assert_eq!(seq_indexes(&schema.name, table), 1, "{table}");
    }
    // Tables as an earlier tweetflow made them: no such index; a stored version
    // ten years "ahead" of this clock.
    let ahead = tweetflow::unix_micros() + 10 * 365 * 86_400 * 1_000_000;
    admin()
        .batch_execute(&format!(
            "DROP INDEX \"{0}\".users_ingest_seq_idx; DROP INDEX \"{0}\".tweets_ingest_seq_idx;
             UPDATE \"{0}\".tweets SET ingest_seq = {ahead} WHERE id = 2",
            schema.name
        ))
        .unwrap();
    // Accepted as they are, the sequence still starts above the stored, and the
    // small tables get their index back.
    let (tx, rx) = bounded::<Record>(1);
    let sink = spawn_sink(schema.config(spool.path()), rx).unwrap();
    let seq = sink.seq().next();
    assert!(seq > ahead, "seq {seq} is not above the stored {ahead}");
    drop(tx);
    sink.join().unwrap();
    for table in ["users", "tweets"] {
        assert_eq!(seq_indexes(&schema.name, table), 1, "{table}");
    }
}
