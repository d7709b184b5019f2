//! Ingest against the emulator: every valid event exactly once across
//! connections cut mid-event, malformed events counted, kills passed on; and
//! the decoder checked field by field against `serde_json::Value` on the
//! emulator's own events.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use serde_json::Value;
use tweetflow::Shutdown;
use tweetflow::{decode, Decoded};
use tweetflow::{fetch_lexicon, spawn_reader, SourceConfig, SourceStats};
use tweetflow::{Corpus, Emulator, EmulatorConfig, EventKind, Rate, TweetGen};
use tweetflow::{Ingest, SeqGen};

const SEED: u64 = 4242;
const KILL_EVERY: u64 = 40;
const MALFORMED_EVERY: u64 = 9;
const CUT_AFTER: u64 = 37;

/// What the reader must send for one event, from the emulator's generator,
/// read with `serde_json::Value` (independent of our decoder).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Kill,
    /// (tweet id, retweeted_status id)
    Tweet(i64, Option<i64>),
}

/// The expected ingest items of events `0..n` of `stream`, and how many of
/// those events are malformed / kills.
fn expected(stream: u32, n: u64) -> (Vec<Expected>, u64, u64) {
    let mut generator = TweetGen::with_corpus(Arc::new(Corpus::new(SEED)), stream);
    let (mut items, mut malformed, mut kills) = (Vec::new(), 0, 0);
    let mut buf = Vec::new();
    for index in 0..n {
        buf.clear();
        match generator.event_at(index, 1, Some(KILL_EVERY), Some(MALFORMED_EVERY), &mut buf) {
            EventKind::Kill => {
                kills += 1;
                items.push(Expected::Kill);
            }
            EventKind::Malformed(_) => malformed += 1,
            EventKind::Tweet => {
                let v: Value = serde_json::from_slice(&buf).unwrap();
                let t = &v["message"]["tweet"];
                let rs = &t["retweeted_status"];
                if rs.is_object() {
                    items.push(Expected::Tweet(rs["id"].as_i64().unwrap(), None));
                }
                items.push(Expected::Tweet(
                    t["id"].as_i64().unwrap(),
                    rs.is_object().then(|| rs["id"].as_i64().unwrap()),
                ));
            }
        }
    }
    (items, malformed, kills)
}

#[test]
fn every_valid_event_exactly_once_across_cuts() {
    let emu = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: SEED,
        rate: Rate::Max,
        kill_every: Some(KILL_EVERY),
        cut_after: Some(CUT_AFTER),
        malformed_every: Some(MALFORMED_EVERY),
        ids: true,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let cfg = SourceConfig {
        server: emu.url(),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        ..SourceConfig::default()
    };
    let (tx, rx) = bounded(256);
    let seq = Arc::new(SeqGen::starting_at(1_000));
    let shutdown = Shutdown::new();
    let stats = [Arc::new(SourceStats::new()), Arc::new(SourceStats::new())];
    let readers: Vec<_> = [1u8, 2]
        .iter()
        .map(|&s| {
            spawn_reader(
                s,
                cfg.clone(),
                Arc::clone(&seq),
                tx.clone(),
                Arc::clone(&stats[usize::from(s) - 1]),
                tweetflow::Budget::unlimited(),
                shutdown.clone(),
            )
            .unwrap()
        })
        .collect();
    drop(tx);
    let collector = thread::spawn(move || rx.iter().collect::<Vec<Ingest>>());

    // Let each stream go through a good number of cut connections.
    let target = 20 * CUT_AFTER;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.iter().any(|s| s.snapshot().events < target) {
        assert!(
            Instant::now() < deadline,
            "too slow: {:?}",
            stats[0].snapshot()
        );
        thread::sleep(Duration::from_millis(20));
    }
    shutdown.trigger();
    for r in readers {
        r.join().unwrap();
    }
    let items = collector.join().unwrap();
    emu.stop();

    let mut seqs = HashSet::new();
    for (i, st) in stats.iter().enumerate() {
        let stream = i as u8 + 1;
        let snap = st.snapshot();
        // Exactly once and in order: the events received are events 0..E of
        // the stream, each once, so what was sent on is their expected items.
        let (want, malformed, kills) = expected(u32::from(stream), snap.events);
        let got: Vec<Expected> = items
            .iter()
            .filter_map(|it| match it {
                Ingest::Kill { stream: s } if *s == stream => Some(Expected::Kill),
                Ingest::Tweet(t) if t.stream == stream => {
                    assert!(seqs.insert(t.seq), "seq {} used twice", t.seq);
                    Some(Expected::Tweet(t.id, t.retweeted_status_id))
                }
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), want.len(), "stream {stream}: {snap:?}");
        assert!(
            got == want,
            "stream {stream}: the items differ from the events sent"
        );
        assert_eq!(snap.malformed, malformed, "stream {stream}");
        assert!(malformed > 0, "the test must see malformed events");
        assert_eq!(snap.kills, kills);
        assert!(kills > 0);
        let originals = want
            .iter()
            .filter(|e| matches!(e, Expected::Tweet(_, Some(_))))
            .count() as u64;
        assert!(originals > 0, "the test must see retweets");
        assert_eq!(snap.retweets, originals);
        assert_eq!(snap.tweets, (want.len() as u64) - kills);
        assert_eq!(snap.oversized, 0);
        assert_eq!(snap.malformed_originals, 0);
        // One connection per CUT_AFTER events (plus the one in progress).
        assert!(snap.reconnects >= snap.events / CUT_AFTER - 1, "{snap:?}");
        assert_eq!(snap.connects, snap.reconnects + 1 - snap.connect_failures);
    }
}

#[test]
fn decoder_agrees_with_serde_json_value_on_emulator_events() {
    let corpus = Arc::new(Corpus::new(7));
    let mut checked = 0;
    for stream in [1, 2] {
        let mut generator = TweetGen::with_corpus(Arc::clone(&corpus), stream);
        let mut buf = Vec::new();
        for index in 0..1500 {
            buf.clear();
            generator.payload_at(index, 16523062290197, &mut buf);
            let data = std::str::from_utf8(&buf).unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            let Decoded::Tweets(d) = decode(data) else {
                panic!("emulator tweet {index} did not decode: {data}")
            };
            let mut pairs = vec![(&v["message"]["tweet"], &d.tweet)];
            if let Some(o) = &d.original {
                pairs.push((
                    &v["message"]["tweet"]["retweeted_status"],
                    o.as_ref().unwrap(),
                ));
            } else {
                assert!(v["message"]["tweet"].get("retweeted_status").is_none());
            }
            for (vt, t) in pairs {
                assert_eq!(t.id, vt["id"].as_i64().unwrap());
                assert_eq!(t.text, vt["text"].as_str().unwrap());
                assert_eq!(t.lang.as_deref(), vt["lang"].as_str());
                assert_eq!(t.created_at.as_deref(), vt["created_at"].as_str());
                assert_eq!(t.favorite_count, vt["favorite_count"].as_i64().unwrap_or(0));
                assert_eq!(t.retweet_count, vt["retweet_count"].as_i64().unwrap_or(0));
                let tags: Vec<&str> = vt["entities"]["hashtags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["text"].as_str().unwrap())
                    .collect();
                assert_eq!(t.hashtags, tags);
                let u = &vt["user"];
                assert_eq!(t.user.id, u["id"].as_i64().unwrap());
                assert_eq!(
                    t.user.followers_count,
                    u["followers_count"].as_i64().unwrap()
                );
                assert_eq!(t.user.screen_name.as_deref(), u["screen_name"].as_str());
                assert_eq!(t.user.name.as_deref(), u["name"].as_str());
                assert_eq!(t.user.verified, u["verified"].as_bool());
                assert_eq!(t.user.friends_count, u["friends_count"].as_i64());
                assert_eq!(t.user.statuses_count, u["statuses_count"].as_i64());
                // raw is the received text: it parses back to the same value
                // and is a verbatim slice of the data.
                assert_eq!(serde_json::from_str::<Value>(&t.raw).unwrap(), *vt);
                assert!(data.contains(t.raw.as_str()));
                assert_eq!(serde_json::from_str::<Value>(&t.user.raw).unwrap(), *u);
                checked += 1;
            }
        }
    }
    assert!(checked > 3000);
}

#[test]
fn lexicon_from_the_emulator() {
    let emu = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let lex = fetch_lexicon(&emu.url(), &SourceConfig::default(), &Shutdown::new()).unwrap();
    emu.stop();
    assert_eq!(lex.len(), 2477);
    assert_eq!(lex.skipped(), 0);
    assert_eq!(lex.get("cool stuff"), Some(3));
    assert!(lex.max_words() >= 3);
}

#[test]
fn cuts_without_ids_never_yield_malformed_or_partial_events() {
    // Like the real server: no ids, so each connection starts over; every
    // connection is cut in the middle of an event.
    let emu = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: SEED,
        rate: Rate::Max,
        kill_every: None,
        cut_after: Some(25),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let cfg = SourceConfig {
        server: emu.url(),
        backoff_initial: Duration::from_millis(5),
        ..SourceConfig::default()
    };
    let (tx, rx) = bounded(64);
    let stats = Arc::new(SourceStats::new());
    let shutdown = Shutdown::new();
    let reader = spawn_reader(
        1,
        cfg,
        Arc::new(SeqGen::starting_at(1)),
        tx,
        Arc::clone(&stats),
        tweetflow::Budget::unlimited(),
        shutdown.clone(),
    )
    .unwrap();
    let collector = thread::spawn(move || rx.iter().collect::<Vec<Ingest>>());
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.snapshot().reconnects < 10 {
        assert!(Instant::now() < deadline, "{:?}", stats.snapshot());
        thread::sleep(Duration::from_millis(10));
    }
    shutdown.trigger();
    reader.join().unwrap();
    let items = collector.join().unwrap();
    emu.stop();
    let snap = stats.snapshot();
    assert_eq!(
        snap.malformed, 0,
        "a cut event must be dropped, not decoded"
    );
    // 25 whole events per connection; shutdown may stop the last one early.
    assert!(snap.events <= snap.connects * 25, "{snap:?}");
    assert!(snap.events >= (snap.connects - 1) * 25, "{snap:?}");
    // Each connection replays events 0..25 of the stream, whole.
    let mut generator = TweetGen::with_corpus(Arc::new(Corpus::new(SEED)), 1);
    let mut per_connection = Vec::new();
    let mut buf = Vec::new();
    for index in 0..25 {
        buf.clear();
        generator.payload_at(index, 1, &mut buf);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        let t = &v["message"]["tweet"];
        if let Some(o) = t.get("retweeted_status") {
            per_connection.push(o["id"].as_i64().unwrap());
        }
        per_connection.push(t["id"].as_i64().unwrap());
    }
    let got: Vec<i64> = items
        .iter()
        .map(|i| match i {
            Ingest::Tweet(t) => t.id,
            Ingest::Kill { .. } => panic!("no kills were configured"),
        })
        .collect();
    let replayed = per_connection.repeat(snap.connects as usize);
    assert!(got.len() >= per_connection.len() * (snap.connects as usize - 1));
    assert!(got.len() <= replayed.len());
    assert!(
        got[..] == replayed[..got.len()],
        "not whole replays of events 0..25"
    );
}
