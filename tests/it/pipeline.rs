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
use tweetflow::sentiment;
use tweetflow::Lexicon;
use tweetflow::Shutdown;
use tweetflow::{run, PipelineConfig};
use tweetflow::{Corpus, EventKind, TweetGen};
use tweetflow::{Emulator, EmulatorConfig, Rate};

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
}

impl Expected {
    fn add_tweet(&mut self, t: &Value) {
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

    let lexicon = Lexicon::afinn_111();
    for r in &rows {
        let id: i64 = r.get(0);
        let text: String = r.get(2);
        assert_eq!(&text, &want.tweets[&id]);
        let s: Option<f64> = r.get(3);
        assert_eq!(
            s,
            Some(sentiment(&text, &lexicon)),
            "sentiment of tweet {id}"
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

    let users: BTreeSet<i64> = db
        .query(&format!("SELECT id FROM {}.users", schema.name), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(users, want.users);
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

/// Reads the number after `label` in the exit summary.
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in:\n{text}"));
    text[..at]
        .split_whitespace()
        .last()
        .and_then(|w| w.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in:\n{text}"))
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweetflow"))
        .args(["--database-url", DB_URL, "--schema", &schema.name])
        .args(["--emulator-rate", "300", "--emulator-seed", "9"])
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

    let records = number_after(&err, "records (");
    let committed = number_after(&err, "committed");
    let incomplete = number_after(&err, "incomplete)");
    let spooled = number_after(&err, "left in the spool");
    assert!(records > 200, "{err}");
    assert_eq!(committed, records, "{err}");
    assert_eq!(incomplete, 0, "{err}");
    assert_eq!(spooled, 0, "{err}");
    // With 50-500 ms of work per message, work was in flight when the signal came.
    assert!(in_flight_before > 0);

    let mut db = schema.client();
    let unscored: i64 = db
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.tweets WHERE sentiment IS NULL",
                schema.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unscored, 0);
    let rows: i64 = db
        .query_one(&format!("SELECT count(*) FROM {}.tweets", schema.name), &[])
        .unwrap()
        .get(0);
    assert!(rows > 0 && rows as u64 <= records);
}
/// The exit summary's CPU line: `(group, µs/tweet)` pairs.
fn cpu_groups(summary: &str) -> Vec<(String, f64)> {
    let line = summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("cpu:"))
        .unwrap_or_else(|| panic!("no cpu line in:\n{summary}"));
    let groups = line
        .trim()
        .strip_prefix("µs/tweet:")
        .unwrap_or_else(|| panic!("no µs/tweet in {line:?}"));
    let groups = groups.split(';').next().unwrap_or("");
    groups
        .split(',')
        .filter_map(|g| {
            let (name, v) = g.trim().rsplit_once(' ')?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect()
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
    let groups = cpu_groups(&err);
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
    assert!(
        groups.iter().all(|(_, v)| v.is_finite() && *v >= 0.0),
        "{err}"
    );
}
