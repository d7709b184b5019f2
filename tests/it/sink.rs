//! The sink on the real PostgreSQL: exact rows, newest version wins, rejected rows
//! isolated, shutdown while the database is down.

use std::time::Duration;

use crate::sink_util::*;
use tweetflow::testkit::{record, Spec};
use tweetflow::Record;
use tweetflow::{SinkConfig, SinkSummary};

/// Runs a sink over `records` (channel closed afterwards) and returns its summary.
fn run(cfg: SinkConfig, records: Vec<Record>) -> SinkSummary {
    run_sink(cfg, records).unwrap()
}

#[test]
fn exact_rows_for_a_known_input() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let original = Spec {
        seq: 100,
        id: 5001,
        user_id: 77,
        text: "The original, happy tweet #Good #Day",
        hashtags: &["Good", "Day"],
        followers: 1000,
        favorite_count: 12,
        retweet_count: 30,
        sentiment: Some(1.5),
        engagement: Some(0.042),
        ..Spec::default()
    };
    let retweet = Spec {
        seq: 101,
        id: 5002,
        user_id: 78,
        text: "RT @user_77: The original, happy tweet #Good #Day",
        hashtags: &["Good", "Day"],
        retweeted_status_id: Some(5001),
        followers: 0,
        sentiment: Some(1.5),
        engagement: None, // 0 followers: undefined
        ..Spec::default()
    };
    let plain = Spec {
        seq: 102,
        id: 5003,
        user_id: 77,
        text: "No tags here",
        hashtags: &[],
        followers: 1001,
        sentiment: None, // the aggregator timed out on it
        engagement: Some(0.0),
        ..Spec::default()
    };
    let cfg = SinkConfig {
        linger: Duration::from_millis(5),
        ..schema.config(spool.path())
    };
    let summary = run(
        cfg,
        vec![record(&original), record(&retweet), record(&plain)],
    );
    assert_eq!(summary.left_in_spool, 0);
    assert_eq!(summary.stats.records_committed, 3);
    assert_eq!(summary.stats.rejected_rows, 0);

    let mut db = admin();
    let s = &schema.name;
    let rows = db
        .query(
            &format!(
                "SELECT id, user_id, text, lang, created_at = '2016-04-18 19:30:47+00', \
                 favorite_count, retweet_count, retweeted_status_id, hashtags, sentiment, \
                 engagement, raw->'user' = to_jsonb(user_id), raw->>'text', ingest_seq, \
                 ingested_at IS NOT NULL, raw ? 'retweeted_status' \
                 FROM \"{s}\".tweets ORDER BY id"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 3);
    let r = &rows[0];
    assert_eq!(r.get::<_, i64>(0), 5001);
    assert_eq!(r.get::<_, i64>(1), 77);
    assert_eq!(r.get::<_, &str>(2), "The original, happy tweet #Good #Day");
    assert_eq!(r.get::<_, Option<&str>>(3), Some("en"));
    assert!(r.get::<_, bool>(4));
    assert_eq!(r.get::<_, i64>(5), 12);
    assert_eq!(r.get::<_, i64>(6), 30);
    assert_eq!(r.get::<_, Option<i64>>(7), None);
    assert_eq!(r.get::<_, Vec<String>>(8), vec!["Good", "Day"]);
    assert_eq!(r.get::<_, Option<f64>>(9), Some(1.5));
    assert_eq!(r.get::<_, Option<f64>>(10), Some(0.042));
    assert!(r.get::<_, bool>(11), "raw.user must be the user id");
    assert_eq!(r.get::<_, &str>(12), "The original, happy tweet #Good #Day");
    assert_eq!(r.get::<_, i64>(13), 100);
    assert!(r.get::<_, bool>(14));
    assert!(!r.get::<_, bool>(15));
    let r = &rows[1];
    assert_eq!(r.get::<_, i64>(0), 5002);
    assert_eq!(r.get::<_, i64>(1), 78);
    assert_eq!(r.get::<_, Option<i64>>(7), Some(5001));
    assert_eq!(r.get::<_, Option<f64>>(10), None);
    assert!(r.get::<_, bool>(11));
    assert!(r.get::<_, bool>(15));
    let r = &rows[2];
    assert_eq!(r.get::<_, i64>(0), 5003);
    assert_eq!(r.get::<_, Vec<String>>(8), Vec::<String>::new());
    assert_eq!(r.get::<_, Option<f64>>(9), None);
    assert_eq!(r.get::<_, Option<f64>>(10), Some(0.0));

    let users = db
        .query(
            &format!(
                "SELECT id, screen_name, name, followers_count, friends_count, statuses_count, \
                 verified, lang, created_at = '2012-07-11 09:12:03+00', raw->>'screen_name', \
                 ingest_seq, updated_at IS NOT NULL FROM \"{s}\".users ORDER BY id"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(users.len(), 2, "users are split out, one row per user");
    let u = &users[0];
    assert_eq!(u.get::<_, i64>(0), 77);
    assert_eq!(u.get::<_, Option<&str>>(1), Some("user_77"));
    assert_eq!(u.get::<_, Option<&str>>(2), Some("User Number 77"));
    // The most recently received version of user 77 (seq 102) wins.
    assert_eq!(u.get::<_, Option<i64>>(3), Some(1001));
    assert_eq!(u.get::<_, Option<i64>>(4), Some(311));
    assert_eq!(u.get::<_, Option<i64>>(5), Some(10456));
    assert_eq!(u.get::<_, Option<bool>>(6), Some(false));
    assert_eq!(u.get::<_, Option<&str>>(7), Some("en"));
    assert!(u.get::<_, bool>(8));
    assert_eq!(u.get::<_, Option<&str>>(9), Some("user_77"));
    assert_eq!(u.get::<_, i64>(10), 102);
    assert!(u.get::<_, bool>(11));
    assert_eq!(users[1].get::<_, i64>(0), 78);
    assert_eq!(users[1].get::<_, Option<i64>>(3), Some(0));
}

#[test]
fn committed_records_are_counted_by_their_stream() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut records = tweetflow::testkit::records(1_000, 70_000, 10);
    for r in records.iter_mut().take(3) {
        std::sync::Arc::make_mut(&mut r.tweet).stream = 2;
    }
    let cfg = SinkConfig {
        linger: Duration::from_millis(5),
        ..schema.config(spool.path())
    };
    let summary = run(cfg, records);
    assert_eq!(summary.stats.records_committed, 10);
    assert_eq!(summary.stats.committed_streams, [7, 3]);
}

fn text_and_seq(schema: &str, id: i64) -> (String, i64) {
    let r = admin()
        .query_one(
            &format!("SELECT text, ingest_seq FROM \"{schema}\".tweets WHERE id = $1"),
            &[&id],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

fn followers(schema: &str, id: i64) -> i64 {
    admin()
        .query_one(
            &format!("SELECT followers_count FROM \"{schema}\".users WHERE id = $1"),
            &[&id],
        )
        .unwrap()
        .get(0)
}

#[test]
fn duplicates_and_out_of_order_versions_resolve_to_the_newest() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let v = |seq: u64, text: &'static str, followers: i64| {
        record(&Spec {
            seq,
            id: 42,
            user_id: 7,
            text,
            followers,
            ..Spec::default()
        })
    };
    // One batch (batch size fixed at 100, long linger): three versions, newest in the middle.
    let cfg = SinkConfig {
        batch_min: 100,
        batch_max: 100,
        batch_initial: 100,
        linger: Duration::from_millis(200),
        ..schema.config(spool.path())
    };
    let s = run(
        cfg.clone(),
        vec![v(5, "v5", 50), v(7, "v7", 70), v(6, "v6", 60)],
    );
    assert_eq!(
        s.stats.batches, 1,
        "the three versions must share one batch"
    );
    assert_eq!(s.stats.written_tweets, 1);
    assert_eq!(text_and_seq(&schema.name, 42), ("v7".into(), 7));
    assert_eq!(followers(&schema.name, 7), 70);

    // A later batch with an older version (committed after the newer one): ignored.
    let s = run(cfg.clone(), vec![v(3, "v3", 30)]);
    assert_eq!(s.stats.tweets_changed, 0);
    assert_eq!(s.stats.users_changed, 0);
    assert_eq!(text_and_seq(&schema.name, 42), ("v7".into(), 7));
    assert_eq!(followers(&schema.name, 7), 70);

    // Batches of one, out of order: 9, 8 → 9 wins; the same version twice is a no-op.
    let one = SinkConfig {
        batch_min: 1,
        batch_max: 1,
        batch_initial: 1,
        ..cfg
    };
    let s = run(one, vec![v(9, "v9", 90), v(8, "v8", 80), v(9, "v9", 90)]);
    assert_eq!(s.stats.batches, 3);
    assert_eq!(s.stats.tweets_changed, 1);
    assert_eq!(text_and_seq(&schema.name, 42), ("v9".into(), 9));
    assert_eq!(followers(&schema.name, 7), 90);
    let n: i64 = admin()
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".tweets", schema.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // A batch mixing a stored id (older version: ignored) and a new one.
    let mut new = v(4, "other", 40);
    let mut t = (*new.tweet).clone();
    t.id = 43;
    new.tweet = t.into();
    let s = run(cfg_mixed(&schema, spool.path()), vec![v(4, "v4", 40), new]);
    assert_eq!(s.stats.batches, 1);
    assert_eq!(s.stats.tweets_changed, 1);
    assert_eq!(text_and_seq(&schema.name, 42), ("v9".into(), 9));
    assert_eq!(text_and_seq(&schema.name, 43), ("other".into(), 4));
}

fn cfg_mixed(schema: &TestSchema, spool: &std::path::Path) -> SinkConfig {
    SinkConfig {
        batch_min: 100,
        batch_max: 100,
        batch_initial: 100,
        linger: Duration::from_millis(200),
        ..schema.config(spool)
    }
}

#[test]
fn rows_the_database_refuses_are_isolated_saved_and_counted() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut recs = tweetflow::testkit::records(1, 1, 60);
    // 20: the tweet's raw JSON is truncated (jsonb refuses it); its user is fine.
    let mut t = (*recs[20].tweet).clone();
    t.raw = t.raw[..100].into();
    recs[20].tweet = t.into();
    // 30: the user's raw holds a lone surrogate escape (jsonb refuses it); own user id.
    let mut t = (*recs[30].tweet).clone();
    t.user.id = 999_999;
    t.user.raw = r#"{"id":999999,"name":"broken \ud800 emoji"}"#.into();
    recs[30].tweet = t.into();
    // 40: NUL in the text and \u0000 in the raw JSON: sanitized and stored.
    let mut t = (*recs[40].tweet).clone();
    t.text = "nul\0here".into();
    t.raw = t
        .raw
        .replacen("\"text\":\"", "\"text\":\"\\u0000", 1)
        .into();
    recs[40].tweet = t.into();
    let cfg = SinkConfig {
        batch_min: 100,
        batch_max: 100,
        batch_initial: 100,
        linger: Duration::from_millis(300),
        ..schema.config(spool.path())
    };
    let s = run(cfg, recs);
    assert_eq!(s.stats.rejected_rows, 2);
    assert!(s.stats.sanitized >= 2, "{:?}", s.stats);
    // Rejected records are counted apart: committed + rejected == records.
    assert_eq!(s.stats.records_rejected, 2);
    assert_eq!(s.stats.records_committed, 58);
    assert_eq!(
        s.stats.records_committed + s.stats.records_rejected,
        s.stats.records_in
    );
    let mut db = admin();
    let n = |sql: &str| -> i64 {
        admin()
            .query_one(&sql.replace("S.", &format!("\"{}\".", schema.name)), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(n("SELECT count(*) FROM S.tweets"), 59);
    assert_eq!(n("SELECT count(*) FROM S.tweets WHERE id = 21"), 0);
    assert_eq!(n("SELECT count(*) FROM S.tweets WHERE id = 31"), 1);
    assert_eq!(n("SELECT count(*) FROM S.users WHERE id = 999999"), 0);
    // The user of the refused tweet 21 was still stored.
    let uid: i64 = 1_000_000 + 21 / 4;
    let row = db
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".users WHERE id = $1",
                schema.name
            ),
            &[&uid],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let row = db
        .query_one(
            &format!(
                "SELECT text, position(chr(65533) in raw::text) > 0 FROM \"{}\".tweets WHERE id = 41",
                schema.name
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "nulhere");
    assert!(row.get::<_, bool>(1), "\\u0000 in raw JSON becomes U+FFFD");
    let rejected = std::fs::read_to_string(spool.path().join("rejected.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["part"], "tweet");
    assert_eq!(lines[0]["record"]["tweet"]["id"], 21);
    assert_eq!(lines[1]["part"], "user");
    assert_eq!(lines[1]["record"]["tweet"]["user"]["id"], 999_999);
}

#[test]
fn shutdown_while_the_database_is_down_spools_and_the_next_start_replays() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    db.go_down();
    let cfg = SinkConfig {
        shutdown_grace: Duration::from_millis(500),
        ..db.config(spool.path())
    };
    // The database is down at start: the sink must start anyway.
    let s = run(cfg.clone(), tweetflow::testkit::records(10, 1, 500));
    assert_eq!(s.left_in_spool, 500);
    assert_eq!(s.stats.records_committed, 0);
    assert_ne!(s.stats.sink_state, "up");
    db.come_back();
    // Next start: replays the spool first, then the new input.
    let s = run(cfg, tweetflow::testkit::records(1_000, 501, 100));
    assert_eq!(s.stats.replayed_at_start, 500);
    assert_eq!(s.left_in_spool, 0);
    assert_eq!(s.stats.records_committed, 600);
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM tweets", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 600);
    assert_eq!(
        std::fs::metadata(spool.path().join(tweetflow::testkit::SPOOL_FILE))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn two_sinks_starting_at_once_create_the_schema_safely() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ca = schema.config(a.path());
    let cb = schema.config(b.path());
    // Both write ids 1..=300 (small batches, so they interleave); b's versions are newer.
    let small = |c: SinkConfig| SinkConfig {
        batch_min: 20,
        batch_max: 20,
        batch_initial: 20,
        ..c
    };
    let (ca, cb) = (small(ca), small(cb));
    let ta = std::thread::spawn(move || run(ca, tweetflow::testkit::records(1, 1, 300)));
    let tb = std::thread::spawn(move || run(cb, tweetflow::testkit::records(1_000, 1, 300)));
    let (sa, sb) = (ta.join().unwrap(), tb.join().unwrap());
    assert_eq!(sa.stats.records_committed + sb.stats.records_committed, 600);
    assert_eq!(sa.stats.rejected_rows + sb.stats.rejected_rows, 0);
    let row = admin()
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE ingest_seq = id + 999) FROM \"{}\".tweets",
                schema.name
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 300);
    assert_eq!(
        row.get::<_, i64>(1),
        300,
        "the newer versions win everywhere"
    );
}
