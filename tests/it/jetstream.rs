//! `tweetflow ingest` into JetStream and `tweetflow run --jetstream` instances sharing
//! it, against real nats-server processes (`nats_util`) and the local PostgreSQL.
//!
//! The expected rows are regenerated from the emulator's generator, independently of
//! the pipeline: every emulator connection replays its stream from event 0, so the
//! first `N` events of a stream (N as counted by ingest's reader) are known exactly.

use std::collections::BTreeSet;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use serde_json::Value;
use tweetflow::{Corpus, Emulator, EmulatorConfig, EventKind, Rate, TweetGen};

use crate::child::{number_before, Tweetflow};
use crate::nats_util::{NatsServer, Observer};
use crate::pg_proxy::Proxy;
use crate::sink_util::{unique, wait_for, TestSchema, ADMIN_URL};

fn emulator_config(seed: u64, rate: f64) -> EmulatorConfig {
    EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed,
        rate: Rate::Constant(rate),
        kill_every: Some(50),
        ids: true,
        ..EmulatorConfig::default()
    }
}

/// Calls `f` with every tweet the emulator `emu` sends in the first `n[s]` events of
/// each stream, regenerated from its seed: each status, then its extracted original
/// (a tweet of its own, as the pipeline counts it).
pub(crate) fn for_each_sent_tweet(emu: &EmulatorConfig, n: [u64; 2], mut f: impl FnMut(&Value)) {
    let corpus = Arc::new(Corpus::with_users(emu.seed, emu.users));
    for (stream, count) in [1u32, 2].into_iter().zip(n) {
        let mut generator = TweetGen::with_corpus(Arc::clone(&corpus), stream);
        generator.set_retweet_share(emu.retweet_share);
        let mut payload = Vec::new();
        for index in 0..count {
            payload.clear();
            let kind =
                generator.event_at(index, 0, emu.kill_every, emu.malformed_every, &mut payload);
            if let EventKind::Tweet = kind {
                let v: Value = serde_json::from_slice(&payload).unwrap();
                let t = &v["message"]["tweet"];
                f(t);
                if let Some(orig) = t.get("retweeted_status") {
                    f(orig);
                }
            }
        }
    }
}

/// The tweets of the first `n[s]` events of each stream: distinct ids, and how many
/// tweets were sent (extracted originals included, a repeated id counted again).
fn expected(emu: &EmulatorConfig, n: [u64; 2]) -> (BTreeSet<i64>, u64) {
    let (mut ids, mut sent) = (BTreeSet::new(), 0);
    for_each_sent_tweet(emu, n, |t| {
        ids.insert(t["id"].as_i64().unwrap());
        sent += 1;
    });
    (ids, sent)
}

fn tweetflow_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweetflow"));
    c.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// `tweetflow ingest` of `server` into `stream` on `nats`, with `extra` flags.
fn ingest_cmd(server: &str, nats: &str, stream: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        "ingest",
        "--server",
        server,
        "--jetstream",
        nats,
        "--stream",
        stream,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    tweetflow_cmd(&args)
}

/// `tweetflow ingest` for `secs` seconds, to its end.
fn ingest(server: &str, nats: &str, stream: &str, secs: f64, extra: &[&str]) -> Output {
    let secs = secs.to_string();
    let mut args = vec!["--duration", &secs];
    args.extend_from_slice(extra);
    ingest_cmd(server, nats, stream, &args).output().unwrap()
}

/// [`ingest`], which must succeed: its stderr and the events it read per stream.
fn ingest_ok(server: &str, nats: &str, stream: &str, secs: f64) -> (String, [u64; 2]) {
    let out = ingest(server, nats, stream, secs, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let n = events_per_stream(&err);
    (err, n)
}

/// A NATS server, an emulator at 150 events/s per stream with ids and kills, and a
/// stream name of the test's own.
fn setup(seed: u64, tag: &str) -> (NatsServer, EmulatorConfig, Emulator, String) {
    let emu_cfg = emulator_config(seed, 150.0);
    let emu = Emulator::start(emu_cfg.clone()).unwrap();
    (NatsServer::start(), emu_cfg, emu, stream_name(tag))
}

fn spawn_ingest(server: &str, nats: &str, stream: &str) -> Child {
    ingest_cmd(server, nats, stream, &[]).spawn().unwrap()
}

/// The events per stream in an ingest summary (`events N (a + b per stream)`).
fn events_per_stream(stderr: &str) -> [u64; 2] {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ingest summary"))
        .unwrap_or_else(|| panic!("no ingest summary in:\n{stderr}"));
    let a = number_before(line, " + ");
    let b = number_before(line, " per stream");
    [a, b]
}

/// An instance of `run --jetstream` writing into `schema`; without `/metrics` unless
/// `extra` names `--metrics-addr`.
pub(crate) fn run_instance(nats: &str, stream: &str, schema: &str, extra: &[&str]) -> Tweetflow {
    run_instance_on(ADMIN_URL, nats, stream, schema, extra)
}

/// [`run_instance`] with the database at `db_url`.
fn run_instance_on(
    db_url: &str,
    nats: &str,
    stream: &str,
    schema: &str,
    extra: &[&str],
) -> Tweetflow {
    let mut args = vec![
        "--jetstream",
        nats,
        "--stream",
        stream,
        "--schema",
        schema,
        "--database-url",
        db_url,
        "--quiet",
    ];
    if !extra.contains(&"--metrics-addr") {
        args.extend_from_slice(&["--metrics-addr", "off"]);
    }
    args.extend_from_slice(extra);
    Tweetflow::start(&args)
}

fn db() -> Client {
    Client::connect(ADMIN_URL, NoTls).unwrap()
}

fn tweet_ids(schema: &str) -> BTreeSet<i64> {
    db().query(&format!("SELECT id FROM \"{schema}\".tweets"), &[])
        .map(|rows| rows.iter().map(|r| r.get::<_, i64>(0)).collect())
        .unwrap_or_default()
}

/// Waits until `schema.tweets` holds `want` rows; panics after `limit`.
fn wait_rows(schema: &str, want: usize, limit: Duration, instances: &[&Tweetflow]) {
    let t = Instant::now();
    loop {
        let n = tweet_ids(schema).len();
        if n >= want {
            return;
        }
        if t.elapsed() > limit {
            let logs: Vec<String> = instances.iter().map(|i| i.stderr()).collect();
            panic!(
                "{n} of {want} rows after {limit:?}; stderr:\n{}",
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The last stats object's `jetstream` part.
fn js_stats(t: &Tweetflow) -> Value {
    t.stats()
        .last()
        .map(|v| v["jetstream"].clone())
        .unwrap_or(Value::Null)
}

/// SIGINT, then the exit summary (stderr); the exit must be 0.
fn stop(mut t: Tweetflow) -> String {
    t.signal("INT");
    let (status, _) = t.wait_exit(Duration::from_secs(20));
    let err = t.stderr();
    assert!(status.success(), "exit {status:?}; stderr:\n{err}");
    err
}

/// The stream's name for one test.
fn stream_name(tag: &str) -> String {
    unique(&format!("tf_{tag}")).replace('_', "-")
}

#[test]
fn three_instances_share_the_stream_and_every_tweet_lands_once() {
    let (nats, emu_cfg, emu, stream) = setup(7001, "share");
    // The instances first: they wait for ingest to create the stream, then share it live.
    let schema = TestSchema::new();
    let runs: Vec<Tweetflow> = (0..3)
        .map(|i| {
            let name = format!("inst{i}");
            run_instance(&nats.url, &stream, &schema.name, &["--instance", &name])
        })
        .collect();
    wait_attached(&runs.iter().collect::<Vec<_>>());
    let (_, n) = ingest_ok(&emu.url(), &nats.url, &stream, 5.0);
    assert!(n[0] > 100 && n[1] > 100, "{n:?}");
    let (ids, sent) = expected(&emu_cfg, n);
    wait_rows(
        &schema.name,
        ids.len(),
        Duration::from_secs(120),
        &runs.iter().collect::<Vec<_>>(),
    );
    // Every message acked: nothing pending, nothing awaiting an ack.
    let t = Instant::now();
    loop {
        let j = js_stats(&runs[0]);
        if j["pending"] == 0 && j["ack_pending"] == 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "consumer: {j}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Each instance merged the sketches of all three.
    let merged = runs[0].stats().last().cloned().unwrap_or(Value::Null);
    let summaries: Vec<String> = runs.into_iter().map(stop).collect();
    assert_eq!(
        tweet_ids(&schema.name),
        ids,
        "exactly the tweets of the stream"
    );
    let mut tweets_in = 0;
    for s in &summaries {
        let committed = number_before(s, " committed");
        assert!(committed > 0, "an instance committed nothing:\n{s}");
        tweets_in += number_before(s, " tweets from");
    }
    assert_eq!(tweets_in, sent, "every tweet read once over the instances");
    assert!(
        merged["jetstream"]["instances"].as_u64().unwrap_or(0) >= 2,
        "{merged}"
    );
    assert!(
        merged["merged_top_hashtags"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{merged}"
    );
}

#[test]
fn a_run_instance_killed_loses_nothing_its_messages_are_redelivered() {
    let (nats, emu_cfg, emu, stream) = setup(7002, "kill");
    let (_, n) = ingest_ok(&emu.url(), &nats.url, &stream, 4.0);
    let (ids, _) = expected(&emu_cfg, n);

    let schema = TestSchema::new();
    let ack_wait = ["--ack-wait", "2"];
    let victim = run_instance(&nats.url, &stream, &schema.name, &ack_wait);
    // Kill it while it holds messages not yet committed.
    let t = Instant::now();
    loop {
        if js_stats(&victim)["held"].as_u64().unwrap_or(0) >= 50 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{}", victim.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    victim.signal("KILL");
    let survivor = run_instance(&nats.url, &stream, &schema.name, &ack_wait);
    wait_rows(
        &schema.name,
        ids.len(),
        Duration::from_secs(120),
        &[&survivor],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let j = js_stats(&survivor);
    let summary = stop(survivor);
    assert_eq!(
        tweet_ids(&schema.name),
        ids,
        "exactly the tweets of the stream"
    );
    assert!(
        j["delivered_again"].as_u64().unwrap_or(0) > 0,
        "the killed instance's messages came again: {j}\n{summary}"
    );
}

#[test]
fn ingest_killed_and_started_again_publishes_nothing_twice() {
    let (nats, emu_cfg, emu, stream) = setup(7003, "ingestkill");
    let mut first = spawn_ingest(&emu.url(), &nats.url, &stream);
    std::thread::sleep(Duration::from_secs(3));
    first.kill().unwrap();
    first.wait().unwrap();
    // Started again: the emulator replays from event 0; the duplicate window drops it.
    let (err, n) = ingest_ok(&emu.url(), &nats.url, &stream, 5.0);
    let dropped = {
        let at = err.find("duplicates dropped ").unwrap() + "duplicates dropped ".len();
        err[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(dropped > 0, "the replay was published again: {err}");
    let (ids, sent) = expected(&emu_cfg, n);

    let schema = TestSchema::new();
    let run = run_instance(&nats.url, &stream, &schema.name, &[]);
    wait_rows(&schema.name, ids.len(), Duration::from_secs(120), &[&run]);
    std::thread::sleep(Duration::from_millis(1000));
    let summary = stop(run);
    assert_eq!(tweet_ids(&schema.name), ids);
    assert_eq!(
        number_before(&summary, " tweets from"),
        sent,
        "each event of the stream once:\n{summary}"
    );
}

#[test]
fn an_existing_stream_with_another_config_stops_ingest_with_exit_2() {
    let nats = NatsServer::start();
    let stream = stream_name("mismatch");
    // A stream of that name with other subjects.
    let client =
        tweetflow::JetStreamClient::connect(&nats.url, "test", 1, &tweetflow::Shutdown::new())
            .unwrap();
    let mut spec = tweetflow::stream_specs(&stream, 1, Duration::from_secs(60))[0].clone();
    spec.subjects = vec![format!("{stream}.other")];
    client.ensure_stream(&spec).unwrap();
    let emu = Emulator::start(emulator_config(7004, 50.0)).unwrap();
    let out = ingest(&emu.url(), &nats.url, &stream, 3.0, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("exists with another configuration") && err.contains("subjects"),
        "{err}"
    );
}

#[test]
fn ingest_names_a_server_without_jetstream() {
    let port = crate::nats_util::free_port();
    let mut plain = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("nats://127.0.0.1:{port}");
    let emu = Emulator::start(emulator_config(7005, 50.0)).unwrap();
    let out = ingest(&emu.url(), &url, "plain", 3.0, &[]);
    let _ = plain.kill();
    let _ = plain.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("JetStream disabled"), "{err}");
}

/// Waits until every instance logs that it waits for ingest to create the stream.
fn wait_attached(runs: &[&Tweetflow]) {
    let t = Instant::now();
    while !runs
        .iter()
        .all(|r| r.line_with("waiting for `tweetflow ingest`").is_some())
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{}",
            runs[0].stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `ingest` for `secs` seconds on a thread of its own; joined for its stderr and
/// the events it read per stream.
fn ingest_in_background(
    server: String,
    nats: String,
    stream: String,
    secs: f64,
    extra: Vec<String>,
) -> thread::JoinHandle<(String, [u64; 2])> {
    thread::spawn(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = ingest(&server, &nats, &stream, secs, &extra);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        let n = events_per_stream(&err);
        (err, n)
    })
}

/// Waits, on the server's own view, until the consumer has nothing pending or unacked.
fn wait_all_acked(obs: &Observer, stream: &str, last: u64) {
    let t = Instant::now();
    loop {
        let c = obs.consumer(stream, "tweetflow");
        if c.is_some_and(|c| c.pending == 0 && c.ack_pending == 0 && c.delivered_seq >= last) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "consumer: {c:?}");
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_database_outage_acks_nothing_uncommitted_and_every_tweet_lands_once() {
    // No kills: every message carries tweets, so none may be acked while nothing commits.
    let emu_cfg = EmulatorConfig {
        kill_every: None,
        ..emulator_config(7006, 150.0)
    };
    let emu = Emulator::start(emu_cfg.clone()).unwrap();
    let nats = NatsServer::start();
    let stream = stream_name("dbdown");
    let schema = TestSchema::new();
    let proxy = Proxy::start();
    let db_url = proxy.url("postgres");
    let runs: Vec<Tweetflow> = (0..2)
        .map(|i| {
            let name = format!("inst{i}");
            run_instance_on(
                &db_url,
                &nats.url,
                &stream,
                &schema.name,
                &["--instance", &name],
            )
        })
        .collect();
    let all: Vec<&Tweetflow> = runs.iter().collect();
    wait_attached(&all);
    let ingest = ingest_in_background(
        emu.url(),
        nats.url.clone(),
        stream.clone(),
        22.0,
        Vec::new(),
    );
    let obs = Observer::new(&nats.url);
    let long = Duration::from_secs(60);
    wait_for("tweets committed before the outage", long, || {
        tweet_ids(&schema.name).len() > 200
    });

    // PostgreSQL away for 10 s, for the instances only: connections reset, new ones closed.
    proxy.refuse();
    let down = Instant::now();
    // What was committed before the reset is acked within the first moments.
    thread::sleep(Duration::from_secs(3));
    let rows_at = tweet_ids(&schema.name).len();
    let at = obs.consumer(&stream, "tweetflow").unwrap();
    let mut last = at;
    while down.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(500));
        let Some(c) = obs.consumer(&stream, "tweetflow") else {
            continue;
        };
        assert_eq!(
            tweet_ids(&schema.name).len(),
            rows_at,
            "nothing commits while the database is away"
        );
        assert_eq!(
            c.acked(),
            at.acked(),
            "a message was acked while nothing committed: {at:?} then {c:?}"
        );
        assert_eq!(c.ack_floor, at.ack_floor, "{at:?} then {c:?}");
        last = c;
    }
    // Delivered on, held unacked: JetStream keeps them.
    assert!(
        last.delivered_seq > at.delivered_seq && last.ack_pending > at.ack_pending,
        "messages kept flowing to the instances, unacked: {at:?} then {last:?}"
    );
    proxy.accept();

    let (_, n) = ingest.join().unwrap();
    let (ids, sent) = expected(&emu_cfg, n);
    wait_rows(&schema.name, ids.len(), Duration::from_secs(120), &all);
    wait_all_acked(&obs, &stream, n[0] + n[1]);
    let summaries: Vec<String> = runs.into_iter().map(stop).collect();
    assert_eq!(
        tweet_ids(&schema.name),
        ids,
        "exactly the tweets of the stream"
    );
    let tweets_in: u64 = summaries
        .iter()
        .map(|s| number_before(s, " tweets from"))
        .sum();
    assert_eq!(tweets_in, sent, "every tweet read once over the instances");
}

#[test]
fn a_cluster_node_lost_mid_run_loses_nothing() {
    let emu_cfg = emulator_config(7007, 150.0);
    let emu = Emulator::start(emu_cfg.clone()).unwrap();
    let mut nodes = NatsServer::cluster(3);
    let urls = nodes
        .iter()
        .map(|n| n.url.clone())
        .collect::<Vec<_>>()
        .join(",");
    let stream = stream_name("cluster");
    let schema = TestSchema::new();
    let runs: Vec<Tweetflow> = (0..2)
        .map(|i| {
            let name = format!("inst{i}");
            run_instance(&urls, &stream, &schema.name, &["--instance", &name])
        })
        .collect();
    let all: Vec<&Tweetflow> = runs.iter().collect();
    wait_attached(&all);
    let ingest = ingest_in_background(
        emu.url(),
        urls.clone(),
        stream.clone(),
        14.0,
        vec!["--replicas".into(), "3".into()],
    );
    wait_for("tweets committed", Duration::from_secs(60), || {
        tweet_ids(&schema.name).len() > 200
    });
    // One node lost mid-run: the stream and its consumer keep a quorum of two; every
    // client connected to it moves to another.
    nodes[0].kill();
    let (_, n) = ingest.join().unwrap();
    let (ids, _) = expected(&emu_cfg, n);
    wait_rows(&schema.name, ids.len(), Duration::from_secs(120), &all);
    let obs = Observer::new(&format!("{},{}", nodes[1].url, nodes[2].url));
    let t = Instant::now();
    loop {
        let c = obs.consumer(&stream, "tweetflow");
        if c.is_some_and(|c| c.pending == 0 && c.ack_pending == 0) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "consumer: {c:?}");
        thread::sleep(Duration::from_millis(250));
    }
    for r in runs {
        stop(r);
    }
    assert_eq!(
        tweet_ids(&schema.name),
        ids,
        "exactly the tweets of the stream"
    );
}

/// GET `url`: the status (0 when nothing answered) and the body.
fn http_get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// The value of the sample `name` (labels included, as written) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn ingest_answers_metrics_and_readyz_and_says_when_nats_is_away() {
    let (mut nats, _, emu, stream) = setup(7008, "ingestops");
    let port = crate::nats_util::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = ingest_cmd(
        &emu.url(),
        &nats.url,
        &stream,
        &[
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "25",
        ],
    )
    .spawn()
    .unwrap();
    let long = Duration::from_secs(30);
    let published = |m: &str| {
        sample(m, "tweetflow_ingest_published_total{stream=\"1\"}").unwrap_or(0.0)
            + sample(m, "tweetflow_ingest_published_total{stream=\"2\"}").unwrap_or(0.0)
            - sample(m, "tweetflow_ingest_duplicates_total").unwrap_or(0.0)
    };
    wait_for("ingest ready and publishing", long, || {
        let (code, _) = http_get(&format!("{base}/readyz"));
        code == 200 && published(&http_get(&format!("{base}/metrics")).1) > 100.0
    });
    // What /metrics says is published against what the stream holds (read in between).
    let before = http_get(&format!("{base}/metrics")).1;
    let obs = Observer::new(&nats.url);
    let held = obs.stream_messages(&stream).unwrap() as f64;
    let after = http_get(&format!("{base}/metrics")).1;
    assert!(
        published(&before) <= held && held <= published(&after),
        "{} <= {held} <= {}",
        published(&before),
        published(&after)
    );
    assert_eq!(sample(&after, "tweetflow_ingest_nats_up"), Some(1.0));
    assert_eq!(sample(&after, "tweetflow_ingest_ready"), Some(1.0));
    // Each family is documented in METRICS.md's ingest section, and only those.
    let families: BTreeSet<String> = after
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/METRICS.md")).unwrap();
    let section = doc
        .split("\n## `tweetflow ingest`")
        .nth(1)
        .unwrap_or_default();
    let documented: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(['`', '{']).next())
        .map(str::to_owned)
        .collect();
    assert_eq!(families, documented, "docs/METRICS.md, section ingest");

    // NATS away: not ready, with the reason; back: ready again.
    drop(obs);
    nats.kill();
    wait_for("readyz 503 for NATS", long, || {
        let (code, body) = http_get(&format!("{base}/readyz"));
        code == 503 && body.contains("nats_down")
    });
    let m = http_get(&format!("{base}/metrics")).1;
    assert_eq!(sample(&m, "tweetflow_ingest_nats_up"), Some(0.0), "{m}");
    assert_eq!(sample(&m, "tweetflow_ingest_ready"), Some(0.0), "{m}");
    nats.restart();
    wait_for("ready again", long, || {
        http_get(&format!("{base}/readyz")).0 == 200
    });
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Nothing lost or doubled over the outage: the stream holds every event once.
    let n = events_per_stream(&err);
    let obs = Observer::new(&nats.url);
    assert_eq!(obs.stream_messages(&stream), Some(n[0] + n[1]), "{err}");
}
