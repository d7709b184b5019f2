//! End-to-end: emulator → pipeline → PostgreSQL, each test in a schema of its own.
//!
//! The expected tweets are regenerated independently of the pipeline: every
//! emulator connection replays its stream from event 0, so the first `N` events
//! of a stream (N as counted by the reader) are known exactly.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use serde_json::Value;
use tweetflow::Shutdown;
use tweetflow::{run, PipelineConfig};
use tweetflow::{Corpus, EventKind, TweetGen};
use tweetflow::{Emulator, EmulatorConfig, Rate};

use crate::child::number_before;

const DB: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
const DB_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A schema of the test's own, dropped when the test ends (even on failure).
struct Schema {
    name: String,
}

impl Schema {
    fn new(tag: &str) -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("tf_e2e_{tag}_{}_{nanos}", std::process::id());
        let mut c = Client::connect(DB, NoTls).unwrap();
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        Schema { name }
    }

    fn client(&self) -> Client {
        Client::connect(DB, NoTls).unwrap()
    }

    /// A client in a transaction that holds an exclusive lock on `tweets`: writes
    /// into it wait (reads do not) until it commits.
    fn lock_tweets(&self) -> Client {
        let mut locker = self.client();
        locker
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {}.tweets IN EXCLUSIVE MODE",
                self.name
            ))
            .unwrap();
        locker
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(DB, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// What the first `n` events of a stream contain.
#[derive(Default)]
struct Expected {
    tweets: HashMap<i64, String>, // id -> text
    retweets: HashMap<i64, i64>,  // retweet id -> original id
    users: BTreeSet<i64>,
    zero_follower_tweets: BTreeSet<i64>,
    kills: u64,
    malformed: u64,
    /// Tweets sent, extracted originals included (a repeated id counts again).
    sent: u64,
}

impl Expected {
    fn add_tweet(&mut self, t: &Value) {
        self.sent += 1;
        let id = t["id"].as_i64().unwrap();
        self.tweets
            .insert(id, t["text"].as_str().unwrap().to_string());
        self.users.insert(t["user"]["id"].as_i64().unwrap());
        if t["user"]["followers_count"].as_i64() == Some(0) {
            self.zero_follower_tweets.insert(id);
        }
    }

    fn stream(&mut self, emu: &EmulatorConfig, stream: u32, n: u64) {
        let corpus = Arc::new(Corpus::with_users(emu.seed, emu.users));
        let mut generator = TweetGen::with_corpus(corpus, stream);
        generator.set_retweet_share(emu.retweet_share);
        let mut payload = Vec::new();
        for index in 0..n {
            payload.clear();
            match generator.event_at(index, 0, emu.kill_every, emu.malformed_every, &mut payload) {
                EventKind::Kill => self.kills += 1,
                EventKind::Malformed(_) => self.malformed += 1,
                EventKind::Tweet => {
                    let v: Value = serde_json::from_slice(&payload).unwrap();
                    let t = &v["message"]["tweet"];
                    self.add_tweet(t);
                    if let Some(orig) = t.get("retweeted_status") {
                        self.add_tweet(orig);
                        self.retweets
                            .insert(t["id"].as_i64().unwrap(), orig["id"].as_i64().unwrap());
                    }
                }
            }
        }
    }
}

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: 4242,
        rate: Rate::Constant(250.0),
        kill_every: Some(40),
        malformed_every: Some(97),
        ..EmulatorConfig::default()
    }
}

#[test]
fn every_tweet_lands_once_scored_and_every_kill_is_survived() {
    let schema = Schema::new("all");
    let spool = tempfile::tempdir().unwrap();
    let emu_cfg = emulator_config();
    let emulator = Emulator::start(emu_cfg.clone()).unwrap();

    let mut cfg = PipelineConfig {
        server: Some(emulator.url()),
        duration: Some(Duration::from_secs(4)),
        // Everything is to be committed in the drain, however loaded the machine is.
        drain_timeout: Duration::from_secs(120),
        channel_capacity: 512,
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    cfg.core.min_workers = 2;
    cfg.core.max_workers = 64;
    cfg.sink.database_url = DB_URL.into();
    cfg.sink.schema = schema.name.clone();
    cfg.sink.spool_dir = spool.path().to_path_buf();

    let summary = run(cfg, Shutdown::new()).unwrap();
    emulator.stop();

    assert_eq!(
        summary.reconnects, 0,
        "precondition: one connection per stream"
    );
    let mut want = Expected::default();
    for (i, n) in summary.events_per_stream.iter().enumerate() {
        assert!(*n > 100, "stream {} delivered only {n} events", i + 1);
        want.stream(&emu_cfg, i as u32 + 1, *n);
    }

    // Inputs as the emulator sent them.
    assert!(want.kills > 0 && want.malformed > 0 && !want.retweets.is_empty());
    assert_eq!(summary.kills, want.kills);
    assert_eq!(summary.malformed, want.malformed);
    // Each kill crashes one worker of each pool; each is restarted.
    assert_eq!(summary.restarts, 2 * want.kills);
    // Nothing lost or left behind on the way.
    assert_eq!(summary.incomplete, 0);
    assert_eq!(summary.records, summary.tweets_in);
    assert_eq!(summary.committed, summary.records);
    assert_eq!(summary.spooled_at_exit, 0);
    assert_eq!(summary.rejected_rows, 0);

    let mut db = schema.client();
    let rows = db
        .query(
            &format!(
                "SELECT id, user_id, text, sentiment, engagement, retweeted_status_id FROM {}.tweets",
                schema.name
            ),
            &[],
        )
        .unwrap();
    let got: BTreeSet<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
    let want_ids: BTreeSet<i64> = want.tweets.keys().copied().collect();
    assert_eq!(rows.len(), got.len());
    assert_eq!(
        got, want_ids,
        "tweet ids in the table != distinct tweet ids sent"
    );

    for r in &rows {
        let id: i64 = r.get(0);
        let text: String = r.get(2);
        assert_eq!(&text, &want.tweets[&id]);
        // Scored (the exact values are checked against a hand-computed table in
        // `sentiment_end_to_end_matches_a_hand_computed_table`): AFINN scores are
        // −5..5, so their mean per token is too.
        let s: Option<f64> = r.get(3);
        assert!(
            s.is_some_and(|s| (-5.0..=5.0).contains(&s)),
            "sentiment of tweet {id}: {s:?}"
        );
        let e: Option<f64> = r.get(4);
        assert_eq!(
            e.is_none(),
            want.zero_follower_tweets.contains(&id),
            "engagement of tweet {id}: {e:?}"
        );
        let rt: Option<i64> = r.get(5);
        assert_eq!(
            rt,
            want.retweets.get(&id).copied(),
            "retweeted_status_id of {id}"
        );
    }

    assert_eq!(ids(&mut db, &schema.name, "users"), want.users);
    // Every tweet's user is in the users table.
    let orphans: i64 = db
        .query_one(
            &format!(
                "SELECT count(*) FROM {s}.tweets t LEFT JOIN {s}.users u ON u.id = t.user_id WHERE u.id IS NULL",
                s = schema.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
}

/// Tweets in `schema` without a sentiment score.
fn unscored(db: &mut Client, schema: &str) -> i64 {
    db.query_one(
        &format!("SELECT count(*) FROM {schema}.tweets WHERE sentiment IS NULL"),
        &[],
    )
    .unwrap()
    .get(0)
}

/// The ids in `schema.table`.
fn ids(db: &mut Client, schema: &str, table: &str) -> BTreeSet<i64> {
    db.query(&format!("SELECT id FROM {schema}.{table}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn last_stats(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
}

#[test]
fn sigint_drains_every_stage_and_exits_zero() {
    let schema = Schema::new("sigint");
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.jsonl");
    // The binary as a user runs it: built-in emulator, the mandated work delay.
    let mut child = tweetflow(&schema.name, &dir.path().join("spool"), &stats)
        .args(["--emulator-rate", "300", "--emulator-seed", "9"])
        // Everything is to be committed in the drain, however loaded the machine is.
        .args(["--drain-timeout", "120"])
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // Wait until tweets are being written, then interrupt while work is in flight.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let written = last_stats(&stats)
            .and_then(|v| v["written_tweets"].as_u64())
            .unwrap_or(0);
        if written > 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no tweets written within 90 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "tweetflow exited early"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let in_flight_before = last_stats(&stats).unwrap()["in_flight"].as_u64().unwrap();
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tweetflow did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = reader.join().unwrap();
    assert!(status.success(), "exit status {status:?}\n{err}");

    let records = number_before(&err, "records (");
    let committed = number_before(&err, "committed");
    let incomplete = number_before(&err, "incomplete)");
    let spooled = number_before(&err, "left in the spool");
    assert!(records > 200, "{err}");
    assert_eq!(committed, records, "{err}");
    assert_eq!(incomplete, 0, "{err}");
    assert_eq!(spooled, 0, "{err}");
    // With 50-500 ms of work per message, work was in flight when the signal came.
    assert!(in_flight_before > 0);

    let mut db = schema.client();
    assert_eq!(unscored(&mut db, &schema.name), 0);
    let rows: i64 = db
        .query_one(&format!("SELECT count(*) FROM {}.tweets", schema.name), &[])
        .unwrap()
        .get(0);
    assert!(rows > 0 && rows as u64 <= records);
}

/// The two numbers of `(A + B per stream)` in the exit summary.
fn events_per_stream(text: &str) -> [u64; 2] {
    let at = text
        .find(" per stream)")
        .unwrap_or_else(|| panic!("no events per stream in:\n{text}"));
    let words: Vec<&str> = text[..at].split_whitespace().rev().take(3).collect();
    let n = |w: &str| -> u64 {
        w.trim_start_matches('(')
            .parse()
            .unwrap_or_else(|_| panic!("{w:?} is not a count in:\n{text}"))
    };
    [n(words[2]), n(words[0])]
}

/// The binary with the test's database, schema, spool and stats file.
fn tweetflow(schema: &str, spool: &Path, stats: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweetflow"));
    c.args(["--database-url", DB_URL, "--schema", schema])
        .arg("--spool-dir")
        .arg(spool)
        .arg("--stats-file")
        .arg(stats)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Kills the child if the test fails before it ended.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn into_inner(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `child` to its end after a SIGINT; returns how long it took and its stderr.
fn interrupt(mut child: std::process::Child) -> (Duration, std::process::ExitStatus, String) {
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("tweetflow did not exit within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (sent.elapsed(), status, reader.join().unwrap())
}

/// Polls the stats file until `ok` holds for its last line.
fn wait_stats(path: &Path, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !last_stats(path).is_some_and(|v| ok(&v)) {
        assert!(Instant::now() < deadline, "{what}: not within 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigint_in_a_backlog_exits_within_the_drain_timeout_and_the_next_start_commits_the_rest() {
    let schema = Schema::new("drain");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (stats1, stats2) = (dir.path().join("run1.jsonl"), dir.path().join("run2.jsonl"));
    let mut db = schema.client();
    tweetflow::testkit::create_schema(&mut db, &schema.name).unwrap();

    // Run 1: the built-in emulator, the mandated work delay.
    let child = tweetflow(&schema.name, &spool, &stats1)
        .args(["--emulator-rate", "500", "--emulator-seed", "11"])
        .spawn()
        .unwrap();
    let child = KillOnDrop(Some(child));
    wait_stats(&stats1, "tweets written", |v| {
        v["written_tweets"].as_u64().unwrap_or(0) > 200
    });
    // Writes into `tweets` now wait for this lock (reads do not): the writer sticks in
    // the middle of a batch, as against a database that stalls, and a backlog builds.
    let mut locker = schema.lock_tweets();
    wait_stats(&stats1, "a backlog", |v| {
        v["buffered"].as_u64().unwrap_or(0) + v["spilled"].as_u64().unwrap_or(0) >= 1_000
            && v["in_flight"].as_u64().unwrap_or(0) > 0
    });
    let (took, status, err) = interrupt(child.into_inner());
    assert!(status.success(), "exit status {status:?}\n{err}");
    assert!(
        took <= Duration::from_secs(5),
        "exited {took:?} after SIGINT (default --drain-timeout 5)\n{err}"
    );
    let records = number_before(&err, "records (");
    let committed1 = number_before(&err, " committed\n");
    let left = number_before(&err, "left in the spool");
    assert_eq!(number_before(&err, "incomplete)"), 0, "{err}");
    assert_eq!(
        number_before(&err, "reconnects"),
        0,
        "precondition: one connection per stream\n{err}"
    );
    assert!(left >= 1_000, "{err}");
    assert_eq!(committed1 + left, records, "{err}");
    let events = events_per_stream(&err);
    locker.batch_execute("COMMIT").unwrap();

    // Run 2, a restart as a user does it (another seed, so its tweets are apart): the
    // spool is replayed first, then the run goes on and ends by itself, with time
    // enough to commit everything.
    let out = tweetflow(&schema.name, &spool, &stats2)
        .args([
            "--emulator-rate",
            "200",
            "--emulator-seed",
            "12",
            "--duration",
            "3",
        ])
        .args(["--drain-timeout", "120"])
        .output()
        .unwrap();
    let err2 = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err2}");
    let records2 = number_before(&err2, "records (");
    let committed2 = number_before(&err2, " committed\n");
    assert_eq!(number_before(&err2, "left in the spool"), 0, "{err2}");
    assert_eq!(number_before(&err2, "reconnects"), 0, "{err2}");
    // Every record of both runs committed, none twice.
    assert_eq!(committed1 + committed2, records + records2, "{err}\n{err2}");

    let mut want = Expected::default();
    for (seed, events) in [(11, events), (12, events_per_stream(&err2))] {
        let emu = EmulatorConfig {
            seed,
            ..EmulatorConfig::default()
        };
        for (i, n) in events.iter().enumerate() {
            want.stream(&emu, i as u32 + 1, *n);
        }
    }
    let want_ids: BTreeSet<i64> = want.tweets.keys().copied().collect();
    assert_eq!(
        ids(&mut db, &schema.name, "tweets"),
        want_ids,
        "tweets in the table != tweets received by the two runs"
    );
    assert_eq!(ids(&mut db, &schema.name, "users"), want.users);
    assert_eq!(unscored(&mut db, &schema.name), 0);
}

/// Whole lines of a spool file (a torn last line, cut by an exit in the middle of
/// an append, does not count); each must be a record.
fn spool_records(path: &Path) -> u64 {
    tweetflow::testkit::spool_file_records(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len() as u64
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once_with_130_and_the_spool_stays() {
    let schema = Schema::new("second");
    let mut db = schema.client();
    tweetflow::testkit::create_schema(&mut db, &schema.name).unwrap();
    // The binary as a user runs it; a drain that may take two minutes, and a small
    // memory buffer, so that a backlog goes to the spool.
    let mut tf = crate::child::Tweetflow::start(&[
        "--database-url",
        DB_URL,
        "--schema",
        &schema.name,
        "--emulator-rate",
        "500",
        "--emulator-seed",
        "13",
        "--buffer-records",
        "100",
        "--drain-timeout",
        "120",
    ]);
    let last = |tf: &crate::child::Tweetflow, key: &str| {
        tf.stats().last().and_then(|v| v[key].as_u64()).unwrap_or(0)
    };
    let until = |tf: &crate::child::Tweetflow, what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within 90 s\n{}",
                tf.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until(&tf, "tweets written", &|| last(&tf, "written_tweets") > 200);
    // Writes into `tweets` now wait for this lock: the writer sticks in a batch and
    // the backlog goes to the spool.
    let mut locker = schema.lock_tweets();
    until(&tf, "a spooled backlog", &|| last(&tf, "spilled") >= 500);
    tf.signal("INT");
    // The drain is stuck on the lock (a stuck batch is cancelled only after a
    // quarter of the 120 s): it is still running a second later.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        tf.child.try_wait().unwrap().is_none(),
        "exited on the first signal\n{}",
        tf.stderr()
    );
    let spool = tf.spool_dir().join(tweetflow::testkit::SPOOL_FILE);
    let before = spool_records(&spool);
    assert!(before >= 500, "{before} records in the spool");
    tf.signal("INT");
    let (status, took) = tf.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{status:?}\n{}", tf.stderr());
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    // What was already in the spool stays there, line for line.
    assert!(spool_records(&spool) >= before);
    locker.batch_execute("COMMIT").unwrap();
}

/// Texts and their sentiment under AFINN-111, worked out by hand from the
/// contract (README, `score::sentiment`): sum of the scores of the longest
/// matching entries over the number of whitespace-separated tokens; tokens
/// lower-cased and trimmed of leading and trailing characters that are
/// neither alphanumeric nor `'`; 0 for no token. The AFINN-111 entries used
/// are named on each line.
const SENTIMENT_TABLE: &[(&str, f64)] = &[
    // "can't stand" −3 (a phrase, its apostrophe kept); 4 tokens.
    ("I can't stand Mondays", -3.0 / 4.0),
    // "some kind" 0 is the longest match, so "kind" (+2) does not count; "love" +3.
    ("some kind of love", 3.0 / 4.0),
    // "does not work" −3, the three-word phrase.
    ("this does not work", -3.0 / 4.0),
    // "not good" −2 twice: case and the comma between the phrases do not matter.
    ("not good, NOT GOOD!", -1.0), // −4 / 4
    // "don't" is no entry (AFINN-111 has "dont like"); "like" +2.
    ("don't like it", 2.0 / 3.0),
    // Punctuation-only and emoji tokens count in N and match nothing; "good" +3.
    ("good !!! ... 🙂", 3.0 / 4.0),
    // U+212A KELVIN SIGN lower-cases to an ASCII "k": "kind" +2.
    ("\u{212A}ind people", 1.0), // 2 / 2
    // Non-ASCII upper case folds; "énorme" is no entry, "happy" +3.
    ("ÉNORME HAPPY", 3.0 / 2.0),
    // The apostrophes are kept at the ends: "'good'" is no entry.
    ("'good'", 0.0),
    // No token at all.
    ("", 0.0),
    ("   \t ", 0.0),
    // '#' and '@' are trimmed: "happy" +3, "fine" +2.
    ("#happy @fine", 5.0 / 2.0),
];

#[test]
fn sentiment_end_to_end_matches_a_hand_computed_table() {
    use crate::script_server::{serve, tweet_event, Streams};
    let schema = Schema::new("table");
    let spool = tempfile::tempdir().unwrap();
    let events: Vec<String> = SENTIMENT_TABLE
        .iter()
        .enumerate()
        .map(|(i, (text, _))| tweet_event(i as i64 + 1, text, None))
        .collect();
    let server = serve(Streams::Fixed(Arc::new([events, Vec::new()])));
    let mut cfg = PipelineConfig {
        server: Some(server.url.clone()),
        duration: Some(Duration::from_secs(4)),
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    // The stream goes silent after the table: reconnect (to an empty stream) soon.
    cfg.source.read_timeout = Duration::from_secs(1);
    cfg.sink.database_url = DB_URL.into();
    cfg.sink.schema = schema.name.clone();
    cfg.sink.spool_dir = spool.path().to_path_buf();
    let summary = run(cfg, Shutdown::new()).unwrap();
    assert_eq!(summary.committed, SENTIMENT_TABLE.len() as u64);

    let mut db = schema.client();
    for (i, (text, want)) in SENTIMENT_TABLE.iter().enumerate() {
        let row = db
            .query_one(
                &format!(
                    "SELECT text, sentiment FROM {}.tweets WHERE id = $1",
                    schema.name
                ),
                &[&(i as i64 + 1)],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), *text);
        let got: Option<f64> = row.get(1);
        assert_eq!(got, Some(*want), "sentiment of {text:?}");
    }
}

/// The emulator's streams, cut after every `cut` complete events; the tweet ids
/// in the table, and the summary.
fn run_with_cuts(
    tag: &str,
    ids: bool,
    cut: u64,
) -> (EmulatorConfig, tweetflow::Summary, BTreeSet<i64>) {
    let schema = Schema::new(tag);
    let spool = tempfile::tempdir().unwrap();
    let emu_cfg = EmulatorConfig {
        cut_after: Some(cut),
        ids,
        ..emulator_config()
    };
    let emulator = Emulator::start(emu_cfg.clone()).unwrap();
    let mut cfg = PipelineConfig {
        server: Some(emulator.url()),
        duration: Some(Duration::from_secs(4)),
        channel_capacity: 512,
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    cfg.core.min_workers = 2;
    cfg.core.max_workers = 64;
    cfg.source.backoff_initial = Duration::from_millis(10);
    cfg.source.backoff_max = Duration::from_millis(50);
    cfg.sink.database_url = DB_URL.into();
    cfg.sink.schema = schema.name.clone();
    cfg.sink.spool_dir = spool.path().to_path_buf();
    let summary = run(cfg, Shutdown::new()).unwrap();
    emulator.stop();
    let mut db = schema.client();
    let got: BTreeSet<i64> = db
        .query(&format!("SELECT id FROM {}.tweets", schema.name), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (emu_cfg, summary, got)
}

#[test]
fn every_tweet_lands_once_across_reconnects_with_event_ids() {
    let (emu, summary, got) = run_with_cuts("ids", true, 150);
    assert!(summary.reconnects >= 2, "precondition: reconnects happened");
    // With ids every event comes once: the cut event again after Last-Event-ID.
    let mut want = Expected::default();
    for (i, n) in summary.events_per_stream.iter().enumerate() {
        assert!(*n > 150, "stream {} delivered only {n} events", i + 1);
        want.stream(&emu, i as u32 + 1, *n);
    }
    assert_eq!(got, want.tweets.keys().copied().collect::<BTreeSet<_>>());
    assert_eq!(summary.tweets_in, want.sent, "each tweet exactly once");
    assert_eq!(summary.records, summary.tweets_in);
    assert_eq!(summary.committed, summary.records);
    assert_eq!(summary.incomplete, 0);
}

#[test]
fn without_event_ids_a_reconnect_replays_and_the_rows_stay_one_per_tweet() {
    let cut = 150;
    let (emu, summary, got) = run_with_cuts("noids", false, cut);
    assert!(summary.reconnects >= 2, "precondition: reconnects happened");
    // Without ids the emulator, like a server that keeps no position, starts
    // each connection again from its first event; the event cut in the middle
    // is lost on that connection. Every event completely received is
    // processed, and a replayed tweet updates its row: one row per tweet id.
    let mut distinct = Expected::default();
    let mut sent = 0;
    for (i, n) in summary.events_per_stream.iter().enumerate() {
        let stream = i as u32 + 1;
        assert!(*n > cut, "stream {stream} delivered only {n} events");
        distinct.stream(&emu, stream, (*n).min(cut));
        let mut full = Expected::default();
        full.stream(&emu, stream, cut);
        let mut rest = Expected::default();
        rest.stream(&emu, stream, n % cut);
        sent += (n / cut) * full.sent + rest.sent;
    }
    assert_eq!(
        got,
        distinct.tweets.keys().copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        summary.tweets_in, sent,
        "every completely received tweet, replays included"
    );
    assert_eq!(summary.records, summary.tweets_in);
    assert_eq!(summary.committed, summary.records);
}

/// The exit summary's CPU line: `(group, µs/tweet)` pairs, and the total in
/// µs/tweet.
fn cpu_groups(summary: &str) -> (Vec<(String, f64)>, f64) {
    let line = summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("cpu:"))
        .unwrap_or_else(|| panic!("no cpu line in:\n{summary}"));
    let groups = line
        .trim()
        .strip_prefix("µs/tweet:")
        .unwrap_or_else(|| panic!("no µs/tweet in {line:?}"));
    let (groups, total) = groups
        .split_once(';')
        .unwrap_or_else(|| panic!("no total in {line:?}"));
    let total = total
        .trim()
        .strip_prefix("total ")
        .and_then(|t| t.split_once(' '))
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or_else(|| panic!("no total in {line:?}"));
    let groups = groups
        .split(',')
        .filter_map(|g| {
            let (name, v) = g.trim().rsplit_once(' ')?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect();
    (groups, total)
}

#[test]
fn the_exit_summary_charges_every_threads_cpu_to_its_stage() {
    let schema = Schema::new("cpu");
    let dir = tempfile::tempdir().unwrap();
    // The binary, so no other test's threads share the process.
    let out = Command::new(env!("CARGO_BIN_EXE_tweetflow"))
        .args(["--database-url", DB_URL, "--schema", &schema.name])
        .args([
            "--emulator-rate",
            "300",
            "--work-delay",
            "0",
            "--duration",
            "4",
        ])
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let (groups, total) = cpu_groups(&err);
    let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    for stage in [
        "readers",
        "dispatcher",
        "workers",
        "supervisor",
        "aggregator",
        "tap",
        "sink",
        "emulator",
    ] {
        assert!(names.contains(&stage), "no CPU charged to {stage}: {err}");
    }
    // A thread whose name identifies no stage would be charged to `other`.
    assert!(!names.contains(&"other"), "{err}");
    // The stages that handle every tweet spend measurable CPU on each (parse,
    // score, encode and write, generate): at least 0.1 µs, the line's resolution.
    for stage in ["readers", "workers", "sink", "emulator"] {
        let (_, v) = groups.iter().find(|(n, _)| n == stage).unwrap();
        assert!(*v > 0.0, "{stage} charged nothing: {err}");
    }
    // And the stages' shares add up to the total (each figure rounded to 0.1).
    let sum: f64 = groups.iter().map(|(_, v)| v).sum();
    let rounding = 0.05 * (groups.len() + 1) as f64;
    assert!(
        total > 0.0 && (sum - total).abs() <= rounding,
        "the stages sum to {sum}, the total is {total}: {err}"
    );
}
