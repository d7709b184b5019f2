//! The aggregator through its channels: joins, timeouts, scores before tweets,
//! bounded memory, flush at shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use tweetflow::testkit::StageFault;
use tweetflow::{spawn_aggregator, AggConfig};
use tweetflow::{AggMsg, Record, ScoreKind, Seq, Tweet};

fn tweet(seq: Seq) -> Arc<Tweet> {
    tweetflow::testkit::records(seq, seq as i64, 1)
        .remove(0)
        .tweet
}

fn score(seq: Seq, kind: ScoreKind, value: Option<f64>) -> AggMsg {
    AggMsg::Score { seq, kind, value }
}

const GUARD: Duration = Duration::from_secs(30);

#[test]
fn joins_tweet_and_scores_in_any_order() {
    let (tx, rx) = unbounded();
    let (otx, orx) = unbounded::<Record>();
    let agg = spawn_aggregator(AggConfig::default(), rx, otx).unwrap();
    // 1: tweet first; 2: both scores before the tweet; 3: interleaved, engagement undefined.
    tx.send(AggMsg::Tweet(tweet(1))).unwrap();
    tx.send(score(2, ScoreKind::Engagement, Some(0.2))).unwrap();
    tx.send(score(1, ScoreKind::Sentiment, Some(1.0))).unwrap();
    tx.send(score(2, ScoreKind::Sentiment, Some(-2.0))).unwrap();
    tx.send(score(3, ScoreKind::Engagement, None)).unwrap();
    tx.send(AggMsg::Tweet(tweet(3))).unwrap();
    tx.send(score(1, ScoreKind::Engagement, Some(0.1))).unwrap();
    tx.send(AggMsg::Tweet(tweet(2))).unwrap();
    tx.send(score(3, ScoreKind::Sentiment, Some(0.0))).unwrap();
    let mut got: Vec<Record> = (0..3).map(|_| orx.recv_timeout(GUARD).unwrap()).collect();
    got.sort_by_key(|r| r.tweet.seq);
    let view: Vec<(Seq, Option<f64>, Option<f64>)> = got
        .iter()
        .map(|r| (r.tweet.seq, r.sentiment, r.engagement))
        .collect();
    assert_eq!(
        view,
        vec![
            (1, Some(1.0), Some(0.1)),
            (2, Some(-2.0), Some(0.2)),
            (3, Some(0.0), None)
        ]
    );
    let st = agg.stats();
    assert_eq!(st.snapshot().incomplete, 0);
    assert_eq!(st.snapshot().pending, 0);
    drop(tx);
    agg.join();
    assert!(orx.recv().is_err(), "output closes after the input");
}

#[test]
fn incomplete_records_time_out_with_nulls_and_are_counted() {
    let (tx, rx) = unbounded();
    let (otx, orx) = unbounded::<Record>();
    let cfg = AggConfig {
        timeout: Duration::from_millis(200),
        ..AggConfig::default()
    };
    let agg = spawn_aggregator(cfg, rx, otx).unwrap();
    let st = agg.stats();
    tx.send(AggMsg::Tweet(tweet(10))).unwrap();
    tx.send(score(10, ScoreKind::Sentiment, Some(3.0))).unwrap();
    // A score whose tweet never comes.
    tx.send(score(11, ScoreKind::Engagement, Some(1.0)))
        .unwrap();
    // The input stays open: only the timeout can emit it.
    let r = orx.recv_timeout(GUARD).unwrap();
    assert_eq!(r.tweet.seq, 10);
    assert_eq!(r.sentiment, Some(3.0));
    assert_eq!(r.engagement, None);
    assert_eq!(st.snapshot().incomplete, 1);
    // Missing: sentiment only, engagement only, both.
    assert_eq!(st.snapshot().incomplete_by, [0, 1, 0]);
    // The orphan score is dropped after its timeout, counted.
    let t = std::time::Instant::now();
    while st.snapshot().orphan_scores == 0 {
        assert!(t.elapsed() < GUARD);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(st.snapshot().pending, 0);
    drop(tx);
    agg.join();
    assert!(orx.try_recv().is_err());
    assert_eq!(st.snapshot().emitted, 1);
}

#[test]
fn shutdown_flushes_every_pending_record() {
    let (tx, rx) = unbounded();
    let (otx, orx) = unbounded::<Record>();
    let agg = spawn_aggregator(AggConfig::default(), rx, otx).unwrap();
    for seq in 1..=50 {
        tx.send(AggMsg::Tweet(tweet(seq))).unwrap();
        if seq % 2 == 0 {
            tx.send(score(seq, ScoreKind::Sentiment, Some(1.0)))
                .unwrap();
            tx.send(score(seq, ScoreKind::Engagement, Some(1.0)))
                .unwrap();
        }
    }
    drop(tx);
    let st = agg.stats();
    agg.join(); // long before the 30 s timeout
    let got: Vec<Record> = orx.iter().collect();
    assert_eq!(got.len(), 50);
    assert_eq!(st.snapshot().incomplete, 25);
    assert_eq!(
        st.snapshot().incomplete_by,
        [0, 0, 25],
        "both scores missing"
    );
    assert_eq!(
        got.iter().filter(|r| r.sentiment.is_none()).count(),
        25,
        "the odd seqs are flushed with NULL scores"
    );
}

#[test]
fn memory_is_bounded_by_what_is_in_flight() {
    let (tx, rx) = bounded(1024);
    let (otx, orx) = bounded::<Record>(1024);
    let cfg = AggConfig {
        timeout: Duration::from_secs(3600),
        max_pending: 100,
        ..AggConfig::default()
    };
    let agg = spawn_aggregator(cfg, rx, otx).unwrap();
    let st = agg.stats();
    let drain = std::thread::spawn(move || orx.iter().count());
    let t = tweet(1);
    let mut max_pending = 0;
    // 20,000 tweets whose scores arrive 50 tweets later: ~50 in flight at any time.
    for seq in 1..=20_000u64 {
        let mut tw = (*t).clone();
        tw.seq = seq;
        tx.send(AggMsg::Tweet(Arc::new(tw))).unwrap();
        if seq > 50 {
            let s = seq - 50;
            tx.send(score(s, ScoreKind::Sentiment, Some(0.0))).unwrap();
            tx.send(score(s, ScoreKind::Engagement, Some(0.0))).unwrap();
        }
        max_pending = max_pending.max(st.snapshot().pending);
    }
    // Never-answered tweets beyond max_pending are emitted early, not kept.
    for seq in 30_000..30_500u64 {
        let mut tw = (*t).clone();
        tw.seq = seq;
        tx.send(AggMsg::Tweet(Arc::new(tw))).unwrap();
        max_pending = max_pending.max(st.snapshot().pending);
    }
    drop(tx);
    agg.join();
    assert_eq!(drain.join().unwrap(), 20_500);
    assert!(max_pending <= 101, "pending reached {max_pending}");
    // 50 tail tweets of the first run + 500 never-answered ones are incomplete.
    assert_eq!(st.snapshot().incomplete, 550);
    assert_eq!(st.snapshot().emitted, 20_500);
}

/// Receives one record (failure guard: 30 s).
fn next(orx: &crossbeam_channel::Receiver<Record>) -> Record {
    orx.recv_timeout(GUARD).expect("a record within 30 s")
}

#[test]
fn a_blocked_send_longer_than_the_timeout_loses_no_waiting_score() {
    let (tx, rx) = unbounded();
    // The sink does not read: the second record blocks the aggregator in `send`.
    let (otx, orx) = bounded::<Record>(1);
    let cfg = AggConfig {
        timeout: Duration::from_millis(200),
        ..AggConfig::default()
    };
    let agg = spawn_aggregator(cfg, rx, otx).unwrap();
    let st = agg.stats();
    let complete = |seq| {
        tx.send(AggMsg::Tweet(tweet(seq))).unwrap();
        tx.send(score(seq, ScoreKind::Sentiment, Some(1.0)))
            .unwrap();
        tx.send(score(seq, ScoreKind::Engagement, Some(1.0)))
            .unwrap();
    };
    // Seq 3 is pending before the stall; 1 fills the output, 2 blocks the send.
    tx.send(AggMsg::Tweet(tweet(3))).unwrap();
    complete(1);
    complete(2);
    // Seq 3's scores arrive while the aggregator is blocked, and wait in its channel.
    tx.send(score(3, ScoreKind::Sentiment, Some(2.0))).unwrap();
    tx.send(score(3, ScoreKind::Engagement, Some(0.5))).unwrap();
    // Blocked for five times the timeout.
    std::thread::sleep(Duration::from_secs(1));
    let got: Vec<Record> = (0..3).map(|_| next(&orx)).collect();
    let three = got.iter().find(|r| r.tweet.seq == 3).expect("record 3");
    assert_eq!((three.sentiment, three.engagement), (Some(2.0), Some(0.5)));
    assert_eq!(st.snapshot().incomplete, 0);
    assert_eq!(st.snapshot().orphan_scores, 0);
    drop(tx);
    agg.join();
}

#[test]
fn entries_whose_scores_never_come_expire_even_when_the_input_never_empties() {
    let (tx, rx) = bounded(64);
    let (otx, orx) = unbounded::<Record>();
    let cfg = AggConfig {
        timeout: Duration::from_millis(200),
        ..AggConfig::default()
    };
    let agg = spawn_aggregator(cfg, rx, otx).unwrap();
    let st = agg.stats();
    // Seq 1 never gets its scores.
    tx.send(AggMsg::Tweet(tweet(1))).unwrap();
    // A producer that keeps the channel busy with complete records.
    let feeder = std::thread::spawn(move || {
        let t = tweet(2);
        let start = std::time::Instant::now();
        let mut seq = 2u64;
        while start.elapsed() < Duration::from_secs(3) {
            let mut tw = (*t).clone();
            tw.seq = seq;
            for m in [
                AggMsg::Tweet(Arc::new(tw)),
                score(seq, ScoreKind::Sentiment, Some(0.0)),
                score(seq, ScoreKind::Engagement, Some(0.0)),
            ] {
                if tx.send(m).is_err() {
                    return;
                }
            }
            seq += 1;
        }
    });
    let start = std::time::Instant::now();
    let one = loop {
        let r = next(&orx);
        if r.tweet.seq == 1 {
            break r;
        }
    };
    assert!(one.sentiment.is_none() && one.engagement.is_none());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "seq 1 was held until the input stopped"
    );
    assert_eq!(st.snapshot().incomplete, 1);
    feeder.join().unwrap();
    drop(orx);
    agg.join();
}

/// Joined (seq, sentiment, engagement) in seq order.
type Joined = Vec<(Seq, Option<f64>, Option<f64>)>;

/// Runs an aggregator with `fault` (and quick restarts) over ten tweets, seqs
/// 1..=10, each followed by both its scores (sentiment = seq, engagement 0.5);
/// returns what came out, sorted by seq, and the final counters.
fn ten_through(fault: StageFault) -> (Joined, tweetflow::AggSnapshot, Option<String>) {
    let mut cfg = AggConfig {
        fault: Some(Arc::new(fault)),
        ..AggConfig::default()
    };
    cfg.restart.backoff_base = Duration::from_millis(1);
    cfg.restart.backoff_max = Duration::from_millis(5);
    let (tx, rx) = unbounded();
    let (otx, orx) = unbounded::<Record>();
    let agg = spawn_aggregator(cfg, rx, otx).unwrap();
    let st = agg.stats();
    for seq in 1..=10 {
        tx.send(AggMsg::Tweet(tweet(seq))).unwrap();
        tx.send(score(seq, ScoreKind::Sentiment, Some(seq as f64)))
            .unwrap();
        tx.send(score(seq, ScoreKind::Engagement, Some(0.5)))
            .unwrap();
    }
    drop(tx);
    agg.join();
    let mut got: Joined = orx
        .iter()
        .map(|r| (r.tweet.seq, r.sentiment, r.engagement))
        .collect();
    got.sort_by_key(|g| g.0);
    (got, st.snapshot(), st.failure())
}

fn joined(s: Seq) -> (Seq, Option<f64>, Option<f64>) {
    (s, Some(s as f64), Some(0.5))
}

#[test]
fn the_message_a_panic_happened_on_is_joined_after_the_restart() {
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = Arc::clone(&fired);
    // The tweet of seq 5 makes the join loop panic once (a bug that a restart cures).
    let (got, s, failure) = ten_through(StageFault(Arc::new(move |seq| {
        seq == 5 && !f.swap(true, Ordering::SeqCst)
    })));
    assert!(fired.load(Ordering::SeqCst), "the fault never fired");
    let want: Joined = (1..=10).map(joined).collect();
    assert_eq!(got, want, "every record once, joined");
    assert_eq!((s.tweets_in, s.scores_in, s.emitted), (10, 20, 10));
    assert_eq!((s.incomplete, s.orphan_scores, s.duplicates), (0, 0, 0));
    assert_eq!(failure, None);
}

#[test]
fn a_message_that_panics_again_on_its_retry_goes_on_unjoined_and_the_loop_goes_on() {
    // Every message of seq 5 (its tweet and both scores) makes the loop panic, each
    // time: a poison message must neither be lost nor wedge the stage.
    let (got, s, failure) = ten_through(StageFault(Arc::new(|seq| seq == 5)));
    let want: Joined = (1..=10)
        .map(|s| if s == 5 { (5, None, None) } else { joined(s) })
        .collect();
    assert_eq!(got, want, "seq 5 with NULL scores, the rest joined");
    assert_eq!((s.tweets_in, s.scores_in, s.emitted), (10, 20, 10));
    assert_eq!((s.incomplete, s.orphan_scores, s.lost), (1, 2, 0));
    assert_eq!(failure, None, "six panics are within the restart intensity");
}
