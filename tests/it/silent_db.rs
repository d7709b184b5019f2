//! A database that goes silent: a TCP proxy of the suite's own (`pg_proxy`) between
//! tweetflow and PostgreSQL stops forwarding both ways without closing anything (a network
//! partition, not a refusal), forwards again, or resets its connections. Each test
//! shows what the user sees (the sink's state and reason, /readyz, the log line)
//! and the exact rows.
//!
//! The deadlines here are short (`--db-timeout 2`); the bounds on waits are failure
//! guards with room for a loaded 2-core machine, not measurements.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{number_before, Tweetflow};
use crate::pg_proxy::Proxy;
use crate::script_server::{serve, tweet_event, ScriptServer, Streams};
use crate::sink_util::{check_rows, wait_for, workload, TestDb};
use tweetflow::{spawn_sink, SinkConfig, SinkState};

const BASE: [i64; 2] = [1_000_000, 2_000_000];

/// An endless tweet server, about 200 events a second per stream: event `n` of
/// stream `s` is the tweet `BASE[s-1] + n + 1`.
fn paced_server() -> ScriptServer {
    serve(Streams::Endless(Arc::new(|stream, n| {
        thread::sleep(Duration::from_millis(5));
        let id = BASE[usize::from(stream == 2)] + n as i64 + 1;
        tweet_event(id, &format!("tweet {id}"), None)
    })))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tweetflow run` on the paced server, its database through `proxy`.
fn run_binary(proxy: &Proxy, db: &TestDb, server: &ScriptServer, ops: u16) -> Tweetflow {
    Tweetflow::start(&[
        "--server",
        &server.url,
        "--database-url",
        &proxy.url(&db.name),
        "--db-timeout",
        "2",
        "--drain-timeout",
        "3",
        "--buffer-records",
        "200",
        "--metrics-addr",
        &format!("127.0.0.1:{ops}"),
    ])
}

fn last_stat(tf: &Tweetflow, key: &str) -> serde_json::Value {
    tf.stats()
        .last()
        .map(|v| v[key].clone())
        .unwrap_or_default()
}

fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// The tweets of the run are exactly a prefix of each stream, each once, and as
/// many as the run read.
fn check_stream_rows(db: &TestDb, records: u64) {
    let rows = db
        .client()
        .query("SELECT id FROM tweets ORDER BY id", &[])
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids.len() as u64, records, "one row per record read");
    for base in BASE {
        let of: BTreeSet<i64> = ids
            .iter()
            .copied()
            .filter(|id| (base..base + 1_000_000).contains(id))
            .collect();
        let want: BTreeSet<i64> = (base + 1..=base + of.len() as i64).collect();
        assert_eq!(of, want, "the stream from {base} without a gap");
    }
}

/// The warning lines that name the silence.
fn silence_lines(tf: &Tweetflow) -> usize {
    tf.stderr()
        .lines()
        .filter(|l| l.contains("is unreachable (no answer for 2 s)"))
        .count()
}

#[test]
fn silence_mid_run_is_named_within_the_timeout_and_every_record_commits_once() {
    let db = TestDb::new();
    let proxy = Proxy::start();
    let server = paced_server();
    let ops = free_port();
    let mut tf = run_binary(&proxy, &db, &server, ops);
    let long = Duration::from_secs(90);
    wait_for("tweets committed", long, || {
        last_stat(&tf, "written_tweets").as_u64().unwrap_or(0) > 200
    });
    assert_eq!(get(&format!("http://127.0.0.1:{ops}/readyz")).0, 200);

    proxy.go_silent();
    wait_for("the sink down for the silence", long, || {
        last_stat(&tf, "sink") == "down" && last_stat(&tf, "sink_reason") == "no answer for 2 s"
    });
    let (code, body) = get(&format!("http://127.0.0.1:{ops}/readyz"));
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("database_down") && body.contains("no answer for 2 s"),
        "{body}"
    );
    let (_, metrics) = get(&format!("http://127.0.0.1:{ops}/metrics"));
    assert!(
        metrics.contains("tweetflow_sink_down_reason{reason=\"no answer for 2 s\"} 1"),
        "{metrics}"
    );
    // Records keep coming in while nothing is written.
    let waiting = |tf: &Tweetflow| {
        last_stat(tf, "buffered").as_u64().unwrap_or(0)
            + last_stat(tf, "spilled").as_u64().unwrap_or(0)
    };
    let before = waiting(&tf);
    wait_for(
        "records to keep flowing into the buffer and the spool",
        long,
        || waiting(&tf) > before + 200,
    );
    assert_eq!(silence_lines(&tf), 1, "said once:\n{}", tf.stderr());

    proxy.forward();
    wait_for("the sink up again", long, || last_stat(&tf, "sink") == "up");
    assert_eq!(silence_lines(&tf), 1, "said once:\n{}", tf.stderr());
    tf.signal("INT");
    let (status, _) = tf.wait_exit(long);
    assert!(status.success(), "{status:?}\n{}", tf.stderr());
    let out = tf.stderr();
    let records = number_before(&out, "records (");
    assert_eq!(number_before(&out, "committed"), records, "{out}");
    assert_eq!(number_before(&out, "left in the spool"), 0, "{out}");
    check_stream_rows(&db, records);
}

#[test]
fn ctrl_c_during_a_silence_exits_in_time_with_everything_in_the_spool() {
    let db = TestDb::new();
    let proxy = Proxy::start();
    let server = paced_server();
    let mut tf = run_binary(&proxy, &db, &server, free_port());
    let long = Duration::from_secs(90);
    wait_for("tweets committed", long, || {
        last_stat(&tf, "written_tweets").as_u64().unwrap_or(0) > 200
    });
    proxy.go_silent();
    wait_for("the sink down for the silence", long, || {
        last_stat(&tf, "sink_reason") == "no answer for 2 s"
    });
    tf.signal("INT");
    // The guarantee is --drain-timeout (3 s) + 1 s; 5 s more of slack for a loaded
    // 2-core machine. A bound, not a measurement.
    let (_, took) = tf.wait_exit(Duration::from_secs(60));
    assert!(took <= Duration::from_secs(3 + 1 + 5), "exit took {took:?}");
    let out = tf.stderr();
    let held = out
        .lines()
        .find_map(|l| l.split("the batch it was writing (").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no held batch moved to the spool:\n{out}"));
    assert!(held > 0, "{out}");
    let records = number_before(&out, "records (");
    let committed = number_before(&out, "committed");
    assert!(committed < records, "{out}");

    // The silent connections die (the server rolls their transactions back);
    // the next start through the healed network replays the spool.
    proxy.reset();
    proxy.forward();
    let cfg = SinkConfig {
        database_url: proxy.url(&db.name),
        schema: "public".into(),
        spool_dir: tf.spool_dir(),
        ..SinkConfig::default()
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    drop(tx);
    let replay = spawn_sink(cfg, rx).unwrap().join().unwrap();
    assert_eq!(replay.left_in_spool, 0);
    assert_eq!(
        committed + replay.stats.records_committed,
        records,
        "each record committed once over the two runs"
    );
    check_stream_rows(&db, records);
}

/// A sink on `db` through `proxy`, with a 2 s silence deadline.
fn sink_config(proxy: &Proxy, db: &TestDb, spool: &std::path::Path) -> SinkConfig {
    SinkConfig {
        database_url: proxy.url(&db.name),
        schema: "public".into(),
        spool_dir: spool.to_path_buf(),
        db_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        health_interval: Duration::from_millis(200),
        buffer_records: 100,
        ..SinkConfig::default()
    }
}

#[test]
fn silence_during_the_start_up_check_does_not_hold_the_start() {
    let db = TestDb::new();
    let proxy = Proxy::start();
    let spool = tempfile::tempdir().unwrap();
    proxy.go_silent();
    let t = Instant::now();
    let (tx, rx) = crossbeam_channel::bounded(64);
    let sink = spawn_sink(sink_config(&proxy, &db, spool.path()), rx).unwrap();
    // connect timeout 1 s + db timeout 2 s, with room to spare.
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let stats = sink.stats();
    wait_for("down for the silence", Duration::from_secs(30), || {
        let s = stats.snapshot();
        s.sink_state == SinkState::Down && s.sink_reason.as_deref() == Some("no answer for 2 s")
    });
    let (recs, expect) = workload(0, 500);
    let n = recs.len() as u64;
    for r in recs {
        tx.send(r).unwrap();
    }
    wait_for("every record taken in", Duration::from_secs(30), || {
        stats.snapshot().records_in == n
    });
    assert_eq!(stats.snapshot().records_committed, 0);
    proxy.forward();
    drop(tx);
    let summary = sink.join().unwrap();
    assert_eq!(summary.left_in_spool, 0);
    assert_eq!(summary.stats.records_committed, n);
    check_rows(&db, &expect);
}

#[test]
fn silence_while_the_health_checker_probes_turns_the_sink_down_and_back() {
    let db = TestDb::new();
    let proxy = Proxy::start();
    let spool = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(64);
    let sink = spawn_sink(sink_config(&proxy, &db, spool.path()), rx).unwrap();
    let stats = sink.stats();
    let long = Duration::from_secs(30);
    wait_for("up", long, || stats.snapshot().sink_state == SinkState::Up);
    // Nothing to write: only the probes meet the silence.
    proxy.go_silent();
    wait_for("down for the silence", long, || {
        let s = stats.snapshot();
        s.sink_state == SinkState::Down && s.sink_reason.as_deref() == Some("no answer for 2 s")
    });
    assert_eq!(
        stats.database_reason().as_deref(),
        Some("no answer for 2 s")
    );
    let (recs, expect) = workload(0, 300);
    let n = recs.len() as u64;
    for r in recs {
        tx.send(r).unwrap();
    }
    wait_for("every record taken in", long, || {
        stats.snapshot().records_in == n
    });
    // Still down, still for the same reason, while the records wait.
    let s = stats.snapshot();
    assert_eq!(s.sink_state, SinkState::Down);
    assert_eq!(s.records_committed, 0);
    proxy.forward();
    wait_for("up again", long, || {
        let s = stats.snapshot();
        s.sink_state == SinkState::Up && s.sink_reason.is_none()
    });
    drop(tx);
    let summary = sink.join().unwrap();
    assert_eq!(summary.left_in_spool, 0);
    assert_eq!(summary.stats.records_committed, n);
    check_rows(&db, &expect);
}
