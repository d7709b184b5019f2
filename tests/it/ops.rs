//! The operator's endpoint against a running pipeline: /metrics parsed by a
//! real exposition-format parser and checked against the stages' counters,
//! /readyz through a database outage, pause and resume with and without the
//! token, and the sink's pause on its own (every record exactly once).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use serde_json::Value;
use tweetflow::testkit::SpawnFault;
use tweetflow::{
    spawn_sink, start, Emulator, EmulatorConfig, OpsConfig, PauseOutcome, PipelineConfig,
    PipelineError, Probes, Rate, ScoreKind, Shutdown, SinkConfig, SourceSnapshot, Summary,
};

use crate::sink_util::*;

/// One request; the status and the body, whatever the status.
fn http(method: &str, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(15));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// A pipeline reading its own emulator, with the endpoint on a free port.
struct Running {
    addr: SocketAddr,
    probes: Probes,
    shutdown: Shutdown,
    wait: std::thread::JoinHandle<Result<Summary, PipelineError>>,
    _emulator: Emulator,
}

impl Running {
    fn start(sink: SinkConfig, token: Option<&str>) -> Running {
        Running::start_with(sink, token, None)
    }

    fn start_with(
        sink: SinkConfig,
        token: Option<&str>,
        stats_file: Option<std::path::PathBuf>,
    ) -> Running {
        let _ = env_logger::builder().is_test(true).try_init();
        let emulator = Emulator::start(EmulatorConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            seed: 77,
            rate: Rate::Constant(300.0),
            kill_every: Some(50),
            ..EmulatorConfig::default()
        })
        .unwrap();
        let mut cfg = PipelineConfig {
            server: Some(emulator.url()),
            channel_capacity: 512,
            stats_file,
            sink,
            ops: OpsConfig {
                addr: Some("127.0.0.1:0".parse().unwrap()),
                control_token: token.map(str::to_string),
                ..OpsConfig::default()
            },
            ..PipelineConfig::default()
        };
        cfg.core.work_delay = "1..5".parse().unwrap();
        cfg.core.min_workers = 2;
        cfg.core.max_workers = 64;
        let shutdown = Shutdown::new();
        let pipeline = start(cfg, shutdown.clone()).unwrap();
        let addr = pipeline.ops_addr().expect("the endpoint listens");
        let probes = pipeline.probes().clone();
        let wait = std::thread::spawn(move || pipeline.wait());
        Running {
            addr,
            probes,
            shutdown,
            wait,
            _emulator: emulator,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn committed(&self) -> u64 {
        self.probes.sink.snapshot().records_committed
    }

    fn stop(self) -> Summary {
        self.shutdown.trigger();
        self.wait.join().unwrap().unwrap()
    }
}

type Exp = MetricsExposition<PrometheusType, PrometheusValue>;

/// The value of the sample of `family` with exactly `labels`.
fn sample(exp: &Exp, family: &str, labels: &[(&str, &str)]) -> f64 {
    let fam = exp
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    let want: HashMap<&str, &str> = labels.iter().copied().collect();
    for m in fam.iter_samples() {
        let set = m.get_labelset().unwrap();
        let got: HashMap<&str, &str> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if got == want {
            return match &m.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(g) => g.as_f64(),
                PrometheusValue::Histogram(h) => h.count.map_or(f64::NAN, |c| c as f64),
                other => panic!("{family}: unexpected {other:?}"),
            };
        }
    }
    panic!("{family}: no sample with {labels:?}");
}

fn between(what: &str, lo: u64, got: f64, hi: u64) {
    assert!(
        lo as f64 <= got && got <= hi as f64,
        "{what}: {got} not within [{lo}, {hi}]"
    );
}

#[test]
fn metrics_parse_as_prometheus_text_and_match_the_stats() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let run = Running::start(schema.config(spool.path()), None);
    wait_for("commits", Duration::from_secs(60), || run.committed() > 300);

    let src = |p: &Probes| -> Vec<_> { p.sources.iter().map(|s| s.snapshot()).collect() };
    let (s0, c0, k0) = (
        src(&run.probes),
        run.probes.sink.snapshot(),
        run.probes.core.snapshot(),
    );
    let (status, text) = http("GET", &run.url("/metrics"), None);
    let (s1, c1, k1) = (
        src(&run.probes),
        run.probes.sink.snapshot(),
        run.probes.core.snapshot(),
    );
    assert_eq!(status, 200);

    let exp = openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("not the exposition format: {e:?}\n{text}"));
    for (name, fam) in &exp.families {
        assert!(
            name.starts_with("tweetflow_") || name.starts_with("process_"),
            "{name}"
        );
        assert!(!fam.help.is_empty(), "{name}: no HELP");
        if fam.family_type == PrometheusType::Counter {
            assert!(name.ends_with("_total"), "counter {name}");
        }
    }
    type Field = fn(&SourceSnapshot) -> u64;
    let per_stream: [(&str, Field); 4] = [
        ("tweetflow_tweets_received_total", |s| s.tweets),
        ("tweetflow_kill_messages_total", |s| s.kills),
        ("tweetflow_malformed_events_total", |s| s.malformed),
        ("tweetflow_reconnects_total", |s| s.reconnects),
    ];
    for (i, stream) in ["1", "2"].into_iter().enumerate() {
        for (name, field) in per_stream {
            let got = sample(&exp, name, &[("stream", stream)]);
            between(name, field(&s0[i]), got, field(&s1[i]));
        }
    }
    assert!(
        s1.iter().map(|s| s.kills).sum::<u64>() > 0,
        "precondition: kills were sent"
    );
    between(
        "restarts",
        k0.sentiment.restarts,
        sample(
            &exp,
            "tweetflow_worker_restarts_total",
            &[("pool", "sentiment")],
        ),
        k1.sentiment.restarts,
    );
    between(
        "committed",
        c0.records_committed,
        sample(&exp, "tweetflow_records_committed_total", &[]),
        c1.records_committed,
    );
    between(
        "tweet rows",
        c0.written_tweets,
        sample(&exp, "tweetflow_rows_written_total", &[("table", "tweets")]),
        c1.written_tweets,
    );
    // One latency per committed record, one write time per batch.
    between(
        "latency count",
        c0.records_committed,
        sample(&exp, "tweetflow_receipt_to_commit_seconds", &[]),
        c1.records_committed,
    );
    between(
        "write count",
        c0.batches,
        sample(&exp, "tweetflow_sink_batch_write_seconds", &[]),
        c1.batches,
    );
    let workers = sample(&exp, "tweetflow_pool_workers", &[("pool", "engagement")]);
    assert!((2.0..=64.0).contains(&workers), "{workers}");
    assert_eq!(
        sample(&exp, "tweetflow_sink_state", &[("state", "up")]),
        1.0
    );
    assert_eq!(
        sample(&exp, "tweetflow_sink_state", &[("state", "paused")]),
        0.0
    );
    assert_eq!(sample(&exp, "tweetflow_ready", &[]), 1.0);

    // The buckets are cumulative and end with the count.
    let Some(PrometheusValue::Histogram(h)) = exp.families["tweetflow_receipt_to_commit_seconds"]
        .iter_samples()
        .next()
        .map(|m| &m.value)
    else {
        panic!("latency is not a histogram")
    };
    let counts: Vec<f64> = h.buckets.iter().map(|b| b.count.as_f64()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(
        counts.last().copied(),
        h.count.map(|c| c as f64),
        "the last bucket is not the count: {counts:?}"
    );
    assert!(h.sum.as_ref().is_some_and(|s| s.as_f64() > 0.0));

    // The other routes, and control without a configured token.
    assert_eq!(http("GET", &run.url("/healthz"), None).0, 200);
    assert_eq!(http("GET", &run.url("/readyz"), None).0, 200);
    assert_eq!(http("GET", &run.url("/nowhere"), None).0, 404);
    assert_eq!(
        http("POST", &run.url("/sink/pause"), Some("anything")).0,
        403
    );
    assert_eq!(http("POST", &run.url("/sink/pause"), None).0, 403);
    assert_eq!(
        run.probes.sink.snapshot().sink_state,
        "up",
        "a refused pause pauses nothing"
    );
    run.stop();
}

/// The cumulative buckets of the `pool` series of histogram `family`, and its sum.
fn buckets(exp: &Exp, family: &str, pool: &str) -> (Vec<(f64, f64)>, f64) {
    for m in exp.families[family].iter_samples() {
        let set = m.get_labelset().unwrap();
        if !set.iter().any(|(k, v)| k == "pool" && v == pool) {
            continue;
        }
        let PrometheusValue::Histogram(h) = &m.value else {
            panic!("{family} is not a histogram")
        };
        let b = h
            .buckets
            .iter()
            .map(|b| (b.upper_bound, b.count.as_f64()))
            .collect();
        return (b, h.sum.as_ref().map_or(f64::NAN, |s| s.as_f64()));
    }
    panic!("{family}: no series of pool {pool}");
}

#[test]
fn a_pool_held_small_and_late_scores_show_in_metrics_as_they_are_in_the_table() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    // No retweets: every record is a row of its own (no upsert of a shared id).
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: 78,
        rate: Rate::Constant(25.0),
        kill_every: None,
        retweet_share: 0.0,
        ..EmulatorConfig::default()
    })
    .unwrap();
    // The hook's own tally of the thread creations it let through and refused:
    // the sentiment pool gets no thread beyond its first two slots.
    let let_through = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let (through, denied) = (Arc::clone(&let_through), Arc::clone(&refused));
    let fault = SpawnFault(Arc::new(move |kind, slot| {
        let fail = kind == ScoreKind::Sentiment && slot >= 2;
        if fail { &denied } else { &through }.fetch_add(1, Ordering::SeqCst);
        fail
    }));
    let mut cfg = PipelineConfig {
        server: Some(emulator.url()),
        channel_capacity: 512,
        sink: schema.config(spool.path()),
        ops: OpsConfig {
            addr: Some("127.0.0.1:0".parse().unwrap()),
            ..OpsConfig::default()
        },
        ..PipelineConfig::default()
    };
    // Two sentiment workers serve 2 / 125 ms = 16 tweets/s of the 50 coming:
    // their inboxes stay full, and results that wait there more than 250 ms
    // miss the aggregator's timeout.
    cfg.core.work_delay = "100..150".parse().unwrap();
    cfg.core.inbox_capacity = 8;
    cfg.core.min_workers = 2;
    cfg.core.max_workers = 64;
    cfg.core.fault = Some(Arc::new(fault));
    cfg.aggregate.timeout = Duration::from_millis(250);
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap();
    let url = format!("http://{}/metrics", pipeline.ops_addr().unwrap());
    let probes = pipeline.probes().clone();
    let wait = std::thread::spawn(move || pipeline.wait());
    let scrape = || {
        let (status, text) = http("GET", &url, None);
        assert_eq!(status, 200);
        openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("not the exposition format: {e:?}\n{text}"))
    };

    wait_for("records missing a score", Duration::from_secs(60), || {
        probes.aggregate.snapshot().incomplete > 20 && refused.load(Ordering::SeqCst) > 0
    });
    let (through0, refused0) = (
        let_through.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    let exp = scrape();
    let (through1, refused1) = (
        let_through.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    let pool = |p| [("pool", p)];
    assert_eq!(
        sample(&exp, "tweetflow_pool_workers", &pool("sentiment")),
        2.0
    );
    assert!(sample(&exp, "tweetflow_pool_target_workers", &pool("sentiment")) > 2.0);
    // The supervisor counts a failure just after the hook refused (one thread
    // creation at a time): the metric is the hook's tally, or one behind.
    between(
        "spawn failures",
        refused0.saturating_sub(1),
        sample(&exp, "tweetflow_spawn_failures_total", &pool("sentiment")),
        refused1,
    );
    assert!(refused0 > 0);
    assert_eq!(
        sample(&exp, "tweetflow_spawn_failures_total", &pool("engagement")),
        0.0
    );
    between(
        "threads created",
        through0.saturating_sub(1),
        sample(&exp, "tweetflow_threads_created_total", &[]),
        through1,
    );
    let bound = sample(&exp, "tweetflow_thread_bound", &[]);
    assert!((2.0..=64.0).contains(&bound), "{bound}");

    // Once the emulator stops and every tweet received is committed, the
    // counts are final: compare them with the table.
    emulator.stop();
    wait_for("every tweet committed", Duration::from_secs(90), || {
        let core = probes.core.snapshot();
        let received: u64 = probes.sources.iter().map(|s| s.snapshot().tweets).sum();
        core.sentiment.in_flight == 0
            && core.engagement.in_flight == 0
            && probes.aggregate.snapshot().pending == 0
            && probes.sink.snapshot().records_committed == received
    });
    let exp = scrape();
    let mut db = admin();
    let count = |db: &mut postgres::Client, filter: &str| -> f64 {
        let n: i64 = db
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\".tweets WHERE {filter}",
                    schema.name
                ),
                &[],
            )
            .unwrap()
            .get(0);
        n as f64
    };
    let rows = count(&mut db, "true");
    let missing = |m| {
        sample(
            &exp,
            "tweetflow_records_incomplete_total",
            &[("missing", m)],
        )
    };
    let (m_sentiment, m_engagement, m_both) =
        (missing("sentiment"), missing("engagement"), missing("both"));
    assert!(
        m_sentiment > 0.0,
        "precondition: sentiment scores came late"
    );
    // A sentiment score is NULL only when it was missing (no worker panicked).
    assert_eq!(
        m_sentiment + m_both,
        count(&mut db, "sentiment IS NULL"),
        "records missing their sentiment score"
    );
    // An engagement is NULL when it was missing, or undefined (no followers).
    assert!(m_engagement + m_both <= count(&mut db, "engagement IS NULL"));
    assert!(m_both <= count(&mut db, "sentiment IS NULL AND engagement IS NULL"));
    assert_eq!(
        sample(&exp, "tweetflow_scores_failed_total", &pool("sentiment")),
        0.0
    );

    // Every tweet got one result of each pool, each after at least the
    // 100 ms of work; the small pool's results waited longer in its inboxes.
    for p in ["sentiment", "engagement"] {
        assert_eq!(
            sample(&exp, "tweetflow_dispatch_result_seconds", &pool(p)),
            rows,
            "{p}: one result per record"
        );
        let (b, _) = buckets(&exp, "tweetflow_dispatch_result_seconds", p);
        let below = b.iter().find(|(le, _)| *le == 0.05).map(|(_, c)| *c);
        assert_eq!(below, Some(0.0), "{p}: {b:?}");
    }
    let mean = |p| buckets(&exp, "tweetflow_dispatch_result_seconds", p).1 / rows;
    assert!(
        mean("sentiment") > mean("engagement"),
        "{} vs {}",
        mean("sentiment"),
        mean("engagement")
    );

    shutdown.trigger();
    let summary = wait.join().unwrap().unwrap();
    assert_eq!(summary.records as f64, rows, "one row per record");
    assert_eq!(
        count(&mut db, "true"),
        rows,
        "nothing written after the scrape"
    );
}

/// `utime + stime` of process `pid`, seconds, and its resident bytes and threads.
fn kernel_figures(pid: u32) -> (f64, f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = 100.0; // USER_HZ, what /proc reports ticks in on Linux
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // 4 KiB pages (x86-64, aarch64 with 4K pages).
    (ticks / hz, pages * 4096.0, threads)
}

/// `tweetflow run` with its built-in emulator at `rate` events/s per stream
/// for `seconds`, in `schema`, its endpoint on a free port, its stderr collected.
pub(crate) struct Binary {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>/metrics`.
    pub(crate) metrics_url: String,
    log: std::thread::JoinHandle<Vec<String>>,
}

impl Binary {
    pub(crate) fn start(
        schema: &str,
        spool: &std::path::Path,
        seconds: &str,
        rate: &str,
    ) -> Binary {
        use std::io::{BufRead, BufReader};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = crate::check::tweetflow()
            .args(["run", "--schema", schema, "--duration", seconds, "--quiet"])
            .args(["--emulator-rate", rate])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .arg("--spool-dir")
            .arg(spool)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            BufReader::new(err)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        Binary {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/metrics`, if it answers.
    pub(crate) fn metrics(&self) -> Option<String> {
        ureq::get(&self.metrics_url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
    }

    /// Stops it with SIGINT; asserts a clean exit.
    pub(crate) fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let log = self.log.join().unwrap();
        assert!(status.success(), "{status}: {log:?}");
    }
}

#[test]
fn process_metrics_agree_with_what_the_kernel_says_of_the_process() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let run = Binary::start(&schema.name, spool.path(), "60", "100");
    // A few seconds of work, so that every group has used some CPU.
    wait_for("tweets committed", Duration::from_secs(60), || {
        run.metrics().is_some_and(|b| {
            b.lines()
                .find_map(|l| l.strip_prefix("tweetflow_records_committed_total "))
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > 500)
        })
    });
    let before = kernel_figures(run.pid());
    let text = run.metrics().unwrap();
    let after = kernel_figures(run.pid());
    run.stop();
    let exp = openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("not the exposition format: {e:?}\n{text}"));

    let version = env!("CARGO_PKG_VERSION");
    let build = text
        .lines()
        .find(|l| l.starts_with("tweetflow_build_info{"))
        .unwrap_or_else(|| panic!("no build info:\n{text}"));
    assert!(
        build.starts_with(&format!("tweetflow_build_info{{version=\"{version}\"")),
        "{build}"
    );
    assert!(build.ends_with("} 1"), "{build}");

    // The kernel's figures are in whole ticks: up to two short of the exact time.
    let cpu = sample(&exp, "process_cpu_seconds_total", &[]);
    assert!(
        before.0 - 0.001 <= cpu && cpu <= after.0 + 0.021,
        "process CPU {cpu} s; the kernel said {} s then {} s",
        before.0,
        after.0
    );
    let group = |g| sample(&exp, "tweetflow_cpu_seconds_total", &[("group", g)]);
    let groups: f64 = tweetflow::ThreadGroup::ALL
        .into_iter()
        .map(|g| group(g.name()))
        .sum();
    for g in [
        "readers",
        "dispatcher",
        "workers",
        "aggregator",
        "sink",
        "emulator",
    ] {
        assert!(group(g) > 0.0, "{g}: no CPU");
    }
    // The groups are the process's threads: together at most its CPU, and
    // most of it (a library's thread that ended is in the process's alone).
    assert!(
        groups <= cpu * 1.01 + 0.01 && groups >= cpu * 0.5,
        "groups {groups} s, process {cpu} s"
    );
    let rss = sample(&exp, "process_resident_memory_bytes", &[]);
    let (lo, hi) = (before.1.min(after.1), before.1.max(after.1));
    assert!(lo * 0.8 <= rss && rss <= hi * 1.25, "{rss} vs {lo}..{hi}");
    // Threads come and go between the reads (the ops endpoint's, the pools'):
    // a few either side.
    let threads = sample(&exp, "tweetflow_threads", &[]);
    let (lo, hi) = (before.2.min(after.2), before.2.max(after.2));
    assert!(
        lo - 8.0 <= threads && threads <= hi + 8.0,
        "{threads} vs {lo}..{hi}"
    );
}

fn reasons(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["reason"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn readyz_turns_503_while_the_database_is_away_and_200_when_it_returns() {
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    let run = Running::start(db.config(spool.path()), None);
    let ready = || http("GET", &run.url("/readyz"), None);
    wait_for("ready", Duration::from_secs(60), || ready().0 == 200);

    db.go_down();
    let t = Instant::now();
    wait_for(
        "503 after the database went away",
        Duration::from_secs(10),
        || {
            let (status, body) = ready();
            status == 503 && reasons(&body).iter().any(|r| r.starts_with("database_"))
        },
    );
    eprintln!(
        "not ready {:.1} s after the outage began",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        http("GET", &run.url("/healthz"), None).0,
        200,
        "alive all along"
    );

    db.come_back();
    wait_for(
        "200 after the database returned",
        Duration::from_secs(10),
        || ready().0 == 200,
    );
    let summary = run.stop();
    assert_eq!(summary.spooled_at_exit, 0);
}

#[test]
fn pause_and_resume_over_http_need_the_token_and_write_nothing_while_paused() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let stats_file = spool.path().join("stats.jsonl");
    let run = Running::start_with(
        schema.config(spool.path()),
        Some("t0ken"),
        Some(stats_file.clone()),
    );
    wait_for("commits", Duration::from_secs(60), || run.committed() > 100);
    let pause = run.url("/sink/pause");
    let resume = run.url("/sink/resume");

    assert_eq!(http("POST", &pause, None).0, 401);
    assert_eq!(http("POST", &pause, Some("t0ken2")).0, 401);
    assert_eq!(http("GET", &pause, Some("t0ken")).0, 405);
    assert_eq!(run.probes.sink.snapshot().sink_state, "up");

    let (status, body) = http("POST", &pause, Some("t0ken"));
    assert_eq!((status, body.trim()), (200, r#"{"sink":"paused"}"#));
    let committed = run.committed();
    let received: u64 = run.probes.sources.iter().map(|s| s.snapshot().tweets).sum();
    let (status, body) = http("GET", &run.url("/readyz"), None);
    assert_eq!(status, 503);
    assert_eq!(reasons(&body), ["paused"]);
    let (_, text) = http("GET", &run.url("/metrics"), None);
    assert!(
        text.contains("tweetflow_sink_state{state=\"paused\"} 1\n"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(run.committed(), committed, "nothing written while paused");
    let later: u64 = run.probes.sources.iter().map(|s| s.snapshot().tweets).sum();
    assert!(later > received, "ingest keeps running");
    assert!(
        run.probes.sink.snapshot().spilled > 0,
        "records go to the spool"
    );
    let stats = std::fs::read_to_string(&stats_file).unwrap();
    let last: Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    assert_eq!(last["sink"], "paused", "the stats file shows the pause");

    assert_eq!(http("POST", &resume, Some("wrong")).0, 401);
    assert_eq!(run.committed(), committed);
    assert_eq!(http("POST", &resume, Some("t0ken")).0, 200);
    wait_for("the backlog drains", Duration::from_secs(20), || {
        run.committed() > committed
    });
    let summary = run.stop();
    assert_eq!(summary.spooled_at_exit, 0);
    assert_eq!(
        summary.committed, summary.records,
        "every record committed once"
    );
}

#[test]
fn a_paused_sink_writes_nothing_and_after_resume_every_record_lands_once() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    let (recs, expect) = workload(3_000_000, 2_000);
    let cfg = SinkConfig {
        buffer_records: 500,
        ..db.config(spool.path())
    };
    let (tx, rx) = bounded(256);
    let sink = spawn_sink(cfg, rx).unwrap();
    let stats = sink.stats();
    let control = sink.control();
    // ~5 s of input.
    let feeder = feed_slowly(tx, recs, 45, Duration::from_millis(100));
    wait_for("first commits", Duration::from_secs(60), || {
        stats.snapshot().records_committed > 100
    });
    assert_eq!(control.pause(Duration::from_secs(10)), PauseOutcome::Paused);
    let count = || -> i64 {
        db.client()
            .query_one("SELECT count(*) FROM tweets", &[])
            .unwrap()
            .get(0)
    };
    let (rows, committed) = (count(), stats.snapshot().records_committed);
    let records_in = stats.snapshot().records_in;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count(), rows, "no row written while paused");
    assert_eq!(stats.snapshot().records_committed, committed);
    assert!(stats.snapshot().records_in > records_in, "ingest goes on");
    let snap = stats.snapshot();
    assert_eq!(snap.sink_state, "paused");
    assert!(
        snap.spilled > 0 && snap.buffered == 0,
        "records wait in the spool"
    );

    control.resume();
    feeder.join().unwrap();
    let summary = sink.join().unwrap();
    assert_eq!(summary.left_in_spool, 0);
    assert!(
        summary.stats.records_replayed > 0,
        "the backlog came from the spool"
    );
    check_rows(&db, &expect);
}

fn hello(_: &(), r: &tweetflow::Request<'_>) -> tweetflow::Response {
    tweetflow::Response::text(200, format!("hello {}", r.query))
}

fn boom(_: &(), _: &tweetflow::Request<'_>) -> tweetflow::Response {
    panic!("a handler that fails");
}

#[test]
fn the_listener_takes_a_free_port_when_its_own_is_taken_and_survives_bad_requests() {
    use std::io::{Read, Write};
    let _ = env_logger::builder().is_test(true).try_init();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let routes = tweetflow::Routes::new()
        .get("/hello", hello)
        .get("/boom", boom);
    let want: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Asked for exactly: a taken port is an error that names the address.
    let Err(e) = tweetflow::OpsServer::start(
        want,
        tweetflow::Routes::<()>::new(),
        std::sync::Arc::new(()),
    ) else {
        panic!("a taken port must not be listened on");
    };
    assert_eq!(
        e.to_string(),
        format!("{want} is in use by another process")
    );
    let server =
        tweetflow::OpsServer::start_or_free_port(want, routes, std::sync::Arc::new(())).unwrap();
    assert_ne!(
        server.addr().port(),
        port,
        "a free port instead of the taken one"
    );
    let url = |p: &str| format!("{}{}", server.url().trim_end_matches('/'), p);

    assert_eq!(
        http("GET", &url("/hello?x=1"), None),
        (200, "hello x=1".into())
    );
    assert_eq!(http("GET", &url("/boom"), None).0, 500);
    assert_eq!(http("PUT", &url("/hello"), None).0, 405);
    assert_eq!(http("POST", &url("/hello"), None).0, 405);
    assert_eq!(http("HEAD", &url("/hello"), None), (200, String::new()));
    let mut raw = std::net::TcpStream::connect(server.addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"\x00\x01 not http at all\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(http("GET", &url("/hello"), None).0, 200, "still serving");

    let addr = server.addr();
    drop(server);
    // tiny_http closes its listening socket from its own accept thread, just after.
    wait_for("the socket to close", Duration::from_secs(5), || {
        std::net::TcpStream::connect(addr).is_err()
    });
}
