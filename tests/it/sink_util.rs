//! Helpers shared by the sink's integration tests: private schemas and databases on
//! the local PostgreSQL, dropped at the end.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use postgres::{Client, NoTls};
use tweetflow::testkit::records;
use tweetflow::{spawn_sink, Record, SinkConfig, SinkError, SinkSummary};

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        tweetflow::unix_micros() % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn admin() -> Client {
    Client::connect(ADMIN_URL, NoTls).unwrap()
}

/// A schema of its own in the `postgres` database.
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub fn new() -> TestSchema {
        TestSchema {
            name: unique("tf_sink"),
        }
    }
    pub fn config(&self, spool: &Path) -> SinkConfig {
        SinkConfig {
            database_url: ADMIN_URL.into(),
            schema: self.name.clone(),
            spool_dir: spool.to_path_buf(),
            ..SinkConfig::default()
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(ADMIN_URL, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

/// A database of its own (for outages: connections to it can be forbidden).
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = unique("tf_sinkdb");
        admin()
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        TestDb { name }
    }
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
    pub fn client(&self) -> Client {
        Client::connect(&self.url(), NoTls).unwrap()
    }
    pub fn config(&self, spool: &Path) -> SinkConfig {
        SinkConfig {
            database_url: self.url(),
            schema: "public".into(),
            spool_dir: spool.to_path_buf(),
            ..SinkConfig::default()
        }
    }
    /// Forbids new connections and terminates the existing ones.
    pub fn go_down(&self) {
        let mut a = admin();
        a.batch_execute(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
            self.name
        ))
        .unwrap();
        a.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&self.name],
        )
        .unwrap();
    }
    pub fn come_back(&self) {
        admin()
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
                self.name
            ))
            .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(ADMIN_URL, NoTls) {
            // Two statements: DROP DATABASE cannot run inside the implicit transaction
            // of a multi-statement query.
            let _ = c.batch_execute(&format!(
                "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
                self.name
            ));
            if let Err(e) = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )) {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}

/// Polls `cond` until it holds; panics after `limit` (a failure guard, not a measure).
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a sink over `records` (its input closed afterwards) to its end.
pub fn run_sink(cfg: SinkConfig, records: Vec<Record>) -> Result<SinkSummary, SinkError> {
    let (tx, rx) = crossbeam_channel::bounded(64);
    let sink = spawn_sink(cfg, rx)?;
    for r in records {
        let _ = tx.send(r);
    }
    drop(tx);
    sink.join()
}

/// Ids 1..=n with seq = base + id; every 10th id again later as version 2.
pub fn workload(base: u64, n: usize) -> (Vec<Record>, Vec<(i64, i64, String)>) {
    let mut recs = records(base + 1, 1, n);
    let mut expect: Vec<(i64, i64, String)> = recs
        .iter()
        .map(|r| (r.tweet.id, r.tweet.seq as i64, r.tweet.text.to_string()))
        .collect();
    let later_base = base + 10 * n as u64;
    for id in (10..=n as i64).step_by(10) {
        let mut t = (*recs[(id - 1) as usize].tweet).clone();
        t.seq = later_base + id as u64;
        t.text = format!("version 2 of {id}").into();
        let e = &mut expect[(id - 1) as usize];
        e.1 = t.seq as i64;
        e.2 = t.text.to_string();
        recs.push(Record {
            tweet: Arc::new(t),
            sentiment: Some(0.25),
            engagement: None,
        });
    }
    (recs, expect)
}

pub fn check_rows(db: &TestDb, expect: &[(i64, i64, String)]) {
    let rows = db
        .client()
        .query("SELECT id, ingest_seq, text FROM tweets ORDER BY id", &[])
        .unwrap();
    assert_eq!(rows.len(), expect.len(), "every tweet exactly once");
    for (r, e) in rows.iter().zip(expect) {
        let got: (i64, i64, String) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(&got, e);
    }
}

/// Sends `recs` in chunks of `chunk`, one chunk every `every`, on a thread of its
/// own; the sender drops (closing the sink's input) when all are sent.
pub fn feed_slowly(
    tx: crossbeam_channel::Sender<Record>,
    recs: Vec<Record>,
    chunk: usize,
    every: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for part in recs.chunks(chunk) {
            for r in part {
                tx.send(r.clone()).unwrap();
            }
            std::thread::sleep(every);
        }
    })
}

/// Waits for the sink's first commits, then takes `db` down and waits until the
/// sink says so.
pub fn go_down_after_first_commits(db: &TestDb, stats: &tweetflow::SinkStats) {
    wait_for("first commits", Duration::from_secs(60), || {
        stats.snapshot().records_committed > 100
    });
    db.go_down();
    wait_for("the breaker to open", Duration::from_secs(30), || {
        stats.snapshot().sink_state == tweetflow::SinkState::Down
    });
}
