//! Scale-out benchmark: `tweetflow ingest` into JetStream, and 1, 2, 3 … `tweetflow run
//! --jetstream` instances sharing the stream, each a process of the release binary.
//!
//! Two modes, `TF_SCALE_MODE=drain` (the default), `steady` or `both`.
//!
//! **drain**, a fixed backlog:
//!
//! 0. Ingest alone: the built-in emulator at `--emulator-rate max` published for
//!    `TF_SCALE_SECS`; messages per second into JetStream.
//! 1. Direct SSE: one embedded `tweetflow run` on the emulator at `TF_SCALE_RATE`
//!    events/s per stream for `TF_SCALE_SECS`; its µs of CPU per tweet (the exit
//!    summary's `cpu:` total).
//! 2. For each N of `TF_SCALE_INSTANCES`: a fresh stream filled by ingest at
//!    `TF_SCALE_RATE` for `TF_SCALE_SECS`, then N instances started together that drain
//!    it; each one's µs per tweet (its exit summary), and the total committed per
//!    second from the first instance's start to the stream drained.
//!
//! A drain mixes start-up (pools grown from the minimum, schema check, lexicon) into
//! the figure, and the smaller each instance's share the more of it each tweet carries.
//!
//! **steady**, a live stream at a fixed rate per instance:
//!
//! 1. Direct SSE: one `tweetflow run` on its embedded emulator at the rate of one
//!    instance, measured as below (its emulator's threads shown apart).
//! 2. For each N: `tweetflow ingest` publishes live at N times the rate of one
//!    instance into a fresh stream, and N instances consume it; after
//!    `TF_SCALE_WARMUP` seconds each instance's `/metrics` is read, again after
//!    `TF_SCALE_WINDOW` seconds, and its µs per tweet is the growth of
//!    `process_cpu_seconds_total` over the growth of
//!    `tweetflow_records_committed_total` in that window (per thread group from
//!    `tweetflow_cpu_seconds_total`). The warm-up lasts until each instance also holds
//!    at most `TF_SCALE_SETTLED` seconds of its rate received and not yet committed, so
//!    the window counts no catching up. The consumer's pending count
//!    (`tweetflow_jetstream_consumer_pending`) at the window's end says whether the
//!    instances kept up. Then each instance gets SIGINT and its exit summary's `cpu:`
//!    line (the whole run, start-up included) is printed too.
//!
//! On one machine the total cannot grow past its cores; what must hold is that the
//! µs per tweet of an instance stays within 10 % as instances are added, and the
//! JetStream hop (2 with N = 1, against 1) costs little.
//!
//! Environment: `TF_SCALE_MODE` (`drain`, `steady` or `both`; `drain`),
//! `TF_SCALE_NATS` (a NATS URL with JetStream; default: a nats-server started here on
//! a free port with a temporary store), `TF_SCALE_INSTANCES` (`1,2,3`),
//! `TF_SCALE_DELAY` (`--work-delay`, `50..500`), `DATABASE_URL`; for `drain`:
//! `TF_SCALE_RATE` (events/s per stream, 1000), `TF_SCALE_SECS` (30); for `steady`:
//! `TF_SCALE_RATE_PER_INSTANCE` (tweets/s each instance gets, 1000: the emulator at
//! 3/8 of it in events/s per stream, an event carrying 1 + 1/3 tweets on average over
//! 2 streams), `TF_SCALE_WARMUP` (s, at least, 20), `TF_SCALE_SETTLED` (s, 2), `TF_SCALE_WINDOW`
//! (s, 60), `TF_SCALE_PERF`
//! (a directory: `perf record -g` of the first instance over each window into
//! `perf-N<n>.data` there, and of the direct run into `perf-direct.data`; leave it
//! unset for the figures, perf costs CPU).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{database_url, env_or, Schema};

const BIN: &str = env!("CARGO_BIN_EXE_tweetflow");

/// The number right before `label` in `text`.
fn number_before(text: &str, label: &str) -> Option<f64> {
    let at = text.find(label)?;
    text[..at]
        .split_whitespace()
        .last()?
        .trim_start_matches('(')
        .parse()
        .ok()
}

/// The exit summary's `cpu:` total, µs per tweet.
fn cpu_per_tweet(summary: &str) -> Option<f64> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("cpu:"))?;
    let at = line.find("total ")? + "total ".len();
    number_before(&line[at..], " µs/tweet")
}

/// The binary with `args`, logging warnings only, its stderr piped.
fn tweetflow(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The flags every `run` of the bench shares: the delay, the database, the endpoint
/// (`off` for none).
fn run_flags<'a>(delay: &'a str, schema: &'a str, db: &'a str, metrics: &'a str) -> [&'a str; 9] {
    [
        "--work-delay",
        delay,
        "--schema",
        schema,
        "--database-url",
        db,
        "--metrics-addr",
        metrics,
        "--quiet",
    ]
}

/// `tweetflow ingest` publishing `rate` events/s (or `max`) of the emulator to
/// `stream` of `nats` for `secs` s, quietly.
fn ingest_args<'a>(nats: &'a str, stream: &'a str, rate: &'a str, secs: &'a str) -> Vec<&'a str> {
    vec![
        "ingest",
        "--jetstream",
        nats,
        "--stream",
        stream,
        "--emulator-rate",
        rate,
        "--duration",
        secs,
        "--quiet",
    ]
}

fn run_to_end(args: &[&str]) -> String {
    let out = tweetflow(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tweetflow {args:?} failed:\n{err}");
    err
}

struct Nats {
    url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Nats {
    fn start() -> Nats {
        if let Ok(url) = std::env::var("TF_SCALE_NATS") {
            return Nats {
                url,
                child: None,
                _dir: None,
            };
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on the PATH (or TF_SCALE_NATS)");
        std::thread::sleep(Duration::from_millis(500));
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            child: Some(child),
            _dir: Some(dir),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The last stats object's `jetstream` part of an instance's stats file.
fn consumer_drained(stats: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(stats) else {
        return false;
    };
    let Some(last) = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        return false;
    };
    let j = &last["jetstream"];
    j["pending"] == 0 && j["ack_pending"] == 0 && j["delivered"].as_u64().unwrap_or(0) > 0
}

/// The drain mode: a fixed backlog drained by N instances.
fn drain(nats: &Nats, delay: &str, instances: &[usize]) {
    let rate: u64 = env_or("TF_SCALE_RATE", 1000);
    let secs: u64 = env_or("TF_SCALE_SECS", 30);
    let (rate_s, secs_s) = (rate.to_string(), secs.to_string());
    println!(
        "scale bench: {rate} events/s per stream for {secs} s, work delay {delay}, NATS {}",
        nats.url
    );

    // 0. Ingest alone.
    let err = run_to_end(&ingest_args(&nats.url, "scale-ingest", "max", &secs_s));
    let published = number_before(&err, " (duplicates").unwrap_or(0.0);
    println!(
        "0. ingest alone: {published:.0} messages in {secs} s = {:.0} messages/s into JetStream",
        published / secs as f64
    );

    // 1. Direct SSE.
    let schema = Schema::new("bench_scale_direct");
    let spool = tempfile::tempdir().unwrap();
    let (db, spool_s) = (database_url(), spool.path().display().to_string());
    let mut args = vec![
        "--emulator-rate",
        &rate_s,
        "--duration",
        &secs_s,
        "--spool-dir",
        &spool_s,
    ];
    args.extend(run_flags(delay, &schema.name, &db, "off"));
    let err = run_to_end(&args);
    let direct = cpu_per_tweet(&err);
    println!("1. direct SSE, one process: {direct:?} µs/tweet");
    drop(schema);

    // 2. N instances sharing a stream.
    for &n in instances {
        let stream = format!("scale-{n}-{}", std::process::id());
        run_to_end(&ingest_args(&nats.url, &stream, &rate_s, &secs_s));
        let schema = Schema::new(&format!("bench_scale_{n}"));
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let t0 = Instant::now();
        let mut children: Vec<Child> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let instance = format!("i{i}");
                let mut args = vec![
                    "--jetstream",
                    &nats.url,
                    "--stream",
                    &stream,
                    "--instance",
                    &instance,
                ];
                args.extend(run_flags(delay, &schema.name, &db, "off"));
                tweetflow(&args)
                    .arg("--spool-dir")
                    .arg(d.path().join("spool"))
                    .arg("--stats-file")
                    .arg(d.path().join("stats.jsonl"))
                    .spawn()
                    .unwrap()
            })
            .collect();
        let limit = Duration::from_secs(secs * 20 + 120);
        while !dirs
            .iter()
            .any(|d| consumer_drained(&d.path().join("stats.jsonl")))
        {
            assert!(
                t0.elapsed() < limit,
                "the stream was not drained in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let mut total = 0.0;
        let mut costs = Vec::new();
        for c in &mut children {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
        }
        for c in &mut children {
            let _ = c.wait();
            let mut err = String::new();
            if let Some(mut e) = c.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            total += number_before(&err, " committed").unwrap_or(0.0);
            costs.push(cpu_per_tweet(&err));
        }
        println!(
            "2. {n} instance(s): µs/tweet per instance {costs:?}; {total:.0} committed in {elapsed:.1} s = {:.0}/s",
            total / elapsed
        );
    }
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text of `GET /metrics` on `port`, or `None` while the endpoint does not answer.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.contains("process_cpu_seconds_total").then_some(text)
}

/// The samples of the metric `name` in a Prometheus text: each one's labels and value.
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let end = r.find('}')?;
                    (&r[..end], &r[end + 1..])
                }
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            Some((labels, value.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of `name`.
fn total(text: &str, name: &str) -> f64 {
    samples(text, name).iter().map(|(_, v)| v).sum()
}

/// The first sample of `name`, if any.
fn first(text: &str, name: &str) -> Option<f64> {
    samples(text, name).first().map(|s| s.1)
}

/// What one reading of an instance's `/metrics` says.
#[derive(Clone, Default)]
struct Reading {
    at: Option<Instant>,
    cpu: f64,
    groups: Vec<(String, f64)>,
    committed: f64,
    tweets: f64,
    pending: Option<f64>,
    ack_pending: Option<f64>,
}

impl Reading {
    fn of(port: u16) -> Option<Reading> {
        let text = scrape(port)?;
        let groups = samples(&text, "tweetflow_cpu_seconds_total")
            .into_iter()
            .map(|(labels, v)| {
                let group = labels
                    .split("group=\"")
                    .nth(1)
                    .and_then(|g| g.split('"').next())
                    .unwrap_or(labels);
                (group.to_string(), v)
            })
            .collect();
        Some(Reading {
            at: Some(Instant::now()),
            cpu: total(&text, "process_cpu_seconds_total"),
            groups,
            committed: total(&text, "tweetflow_records_committed_total"),
            tweets: total(&text, "tweetflow_tweets_received_total"),
            pending: first(&text, "tweetflow_jetstream_consumer_pending"),
            ack_pending: first(&text, "tweetflow_jetstream_consumer_ack_pending"),
        })
    }

    /// Tweets received and not yet committed.
    fn in_flight(&self) -> f64 {
        self.tweets - self.committed
    }

    /// The window from `start` to this reading: µs per committed record, the same per
    /// thread group (those over 0.5 µs), and records committed per second.
    fn since(&self, start: &Reading) -> Window {
        let committed = self.committed - start.committed;
        let secs = match (self.at, start.at) {
            (Some(b), Some(a)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let per = |cpu: f64| {
            if committed > 0.0 {
                cpu * 1e6 / committed
            } else {
                f64::NAN
            }
        };
        let groups = self
            .groups
            .iter()
            .filter_map(|(g, v)| {
                let was = start
                    .groups
                    .iter()
                    .find(|(h, _)| h == g)
                    .map_or(0.0, |x| x.1);
                let us = per(v - was);
                (us >= 0.5).then(|| format!("{g} {us:.1}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        Window {
            us_per_tweet: per(self.cpu - start.cpu),
            groups,
            committed_per_s: committed / secs.max(1e-9),
            received_per_s: (self.tweets - start.tweets) / secs.max(1e-9),
            in_flight: (start.in_flight(), self.in_flight()),
            pending: self.pending,
            ack_pending: self.ack_pending,
        }
    }
}

/// One instance's figures over the window.
struct Window {
    us_per_tweet: f64,
    groups: String,
    committed_per_s: f64,
    received_per_s: f64,
    /// Tweets received and not yet committed at the window's start and end.
    in_flight: (f64, f64),
    /// The consumer's pending and ack-pending counts at the window's end (JetStream).
    pending: Option<f64>,
    ack_pending: Option<f64>,
}

impl Window {
    /// The window's rates, what was in flight, the consumer, and µs/tweet per group.
    fn describe(&self) -> String {
        let consumer = match (self.pending, self.ack_pending) {
            (Some(p), Some(a)) => format!(", consumer pending {p:.0} (ack pending {a:.0})"),
            _ => String::new(),
        };
        format!(
            "{:.0} tweets/s committed, {:.0} received, in flight {:.0} → {:.0}{consumer}; \
             window µs/tweet: {}",
            self.committed_per_s,
            self.received_per_s,
            self.in_flight.0,
            self.in_flight.1,
            self.groups
        )
    }
}

/// A child of the bench with its endpoint port and its stderr in a file.
struct Proc {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, port: u16, dir: &std::path::Path) -> Proc {
        let stderr = dir.join("stderr.txt");
        let file = std::fs::File::create(&stderr).unwrap();
        let child = cmd.stderr(file).spawn().unwrap();
        Proc {
            child,
            port,
            stderr,
        }
    }

    /// The first reading of its endpoint, waiting for it to answer.
    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        while Reading::of(self.port).is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!("tweetflow exited with {status} before its endpoint answered:\n{err}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no /metrics on port {} after 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGINT, the exit, and the exit summary's `cpu:` line.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        err.lines()
            .find(|l| l.trim_start().starts_with("cpu:"))
            .map_or_else(
                || format!("(no cpu: line; stderr ends {:?})", tail(&err)),
                |l| l.trim().to_string(),
            )
    }
}

fn tail(text: &str) -> &str {
    let mut at = text.len().saturating_sub(400);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// `perf record -g` of `pid` for `secs` into `dir/name`, when `TF_SCALE_PERF` names a
/// directory.
fn perf(pid: u32, secs: u64, name: &str) -> Option<Child> {
    let dir = std::env::var("TF_SCALE_PERF").ok()?;
    std::fs::create_dir_all(&dir).ok()?;
    let out = std::path::Path::new(&dir).join(name);
    Command::new("perf")
        .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
        .arg(&out)
        .args(["--", "sleep", &secs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Readings of every process once warm, again after `window` (perf on the first one
/// over the window when asked); each one's window figures, and the warm-up it took.
///
/// Warm is at least `warmup` seconds and every process holding at most `settled`
/// tweets received and not yet committed (up to 120 s more): a window that starts
/// with a backlog in flight counts its catching up as this window's commits.
fn measure_window(
    procs: &[Proc],
    warmup: u64,
    settled: f64,
    window: u64,
    perf_name: &str,
) -> (Vec<Window>, f64) {
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(warmup));
    let read = |p: &Proc| {
        (0..20)
            .find_map(|_| {
                Reading::of(p.port).or_else(|| {
                    std::thread::sleep(Duration::from_millis(250));
                    None
                })
            })
            .unwrap_or_default()
    };
    let limit = Duration::from_secs(warmup + 120);
    let start: Vec<Reading> = loop {
        let r: Vec<Reading> = procs.iter().map(read).collect();
        if r.iter().all(|r| r.in_flight() <= settled) || t0.elapsed() >= limit {
            break r;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let warmed = t0.elapsed().as_secs_f64();
    let recorder = procs
        .first()
        .and_then(|p| perf(p.child.id(), window, perf_name));
    std::thread::sleep(Duration::from_secs(window));
    let end: Vec<Reading> = procs.iter().map(read).collect();
    if let Some(mut r) = recorder {
        let _ = r.wait();
    }
    let figures = end.iter().zip(&start).map(|(e, s)| e.since(s)).collect();
    (figures, warmed)
}

/// The steady mode: a live stream at a fixed rate per instance.
fn steady(nats: &Nats, delay: &str, instances: &[usize]) {
    let per_instance: f64 = env_or("TF_SCALE_RATE_PER_INSTANCE", 1000.0);
    let warmup: u64 = env_or("TF_SCALE_WARMUP", 20);
    let window: u64 = env_or("TF_SCALE_WINDOW", 60);
    let settled = per_instance * env_or("TF_SCALE_SETTLED", 2.0);
    // Events/s per stream: 2 streams, 1 + 1/3 tweets an event.
    let events = |n: usize| ((per_instance * n as f64 * 3.0 / 8.0).round() as u64).max(1);
    let db = database_url();
    println!(
        "scale bench, steady: {per_instance} tweets/s per instance (emulator {} events/s per \
         stream per instance), warm-up {warmup} s and until at most {settled:.0} tweets in \
         flight, window {window} s, work delay {delay}, NATS {}",
        events(1),
        nats.url
    );

    // 1. Direct SSE at the rate of one instance.
    let schema = Schema::new("bench_scale_steady_direct");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (rate_s, addr) = (events(1).to_string(), format!("127.0.0.1:{port}"));
    let spool = dir.path().join("spool").display().to_string();
    let mut args = vec!["--emulator-rate", &rate_s, "--spool-dir", &spool];
    args.extend(run_flags(delay, &schema.name, &db, &addr));
    let mut direct = Proc::spawn(tweetflow(&args), port, dir.path());
    direct.wait_ready();
    let (figures, warmed) = measure_window(
        std::slice::from_ref(&direct),
        warmup,
        settled,
        window,
        "perf-direct.data",
    );
    let w = &figures[0];
    let emulator = direct_emulator_us(&w.groups);
    let cpu = direct.stop();
    println!(
        "1. direct SSE, one process: {:.1} µs/tweet ({:.1} without its emulator's threads); \
         warm-up {warmed:.0} s; {}\n   exit {cpu}",
        w.us_per_tweet,
        w.us_per_tweet - emulator,
        w.describe()
    );
    drop(schema);

    // 2. N instances on a live stream at N times the rate.
    let mut base: Option<f64> = None;
    for &n in instances {
        let stream = format!("steady-{n}-{}", std::process::id());
        let rate_s = events(n).to_string();
        let ingest_dir = tempfile::tempdir().unwrap();
        let secs = (warmup + window + 300).to_string();
        let mut args = ingest_args(&nats.url, &stream, &rate_s, &secs);
        args.extend(["--metrics-addr", "off"]);
        let ingest = Proc::spawn(tweetflow(&args), 0, ingest_dir.path());
        // The stream exists once ingest has started publishing.
        std::thread::sleep(Duration::from_secs(2));
        let schema = Schema::new(&format!("bench_scale_steady_{n}"));
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut procs: Vec<Proc> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let port = free_port();
                let (instance, addr) = (format!("i{i}"), format!("127.0.0.1:{port}"));
                let spool = d.path().join("spool").display().to_string();
                let mut args = vec![
                    "--jetstream",
                    &nats.url,
                    "--stream",
                    &stream,
                    "--instance",
                    &instance,
                    "--spool-dir",
                    &spool,
                ];
                args.extend(run_flags(delay, &schema.name, &db, &addr));
                Proc::spawn(tweetflow(&args), port, d.path())
            })
            .collect();
        for p in &mut procs {
            p.wait_ready();
        }
        let (figures, warmed) =
            measure_window(&procs, warmup, settled, window, &format!("perf-N{n}.data"));
        let exits: Vec<String> = procs.into_iter().map(Proc::stop).collect();
        ingest.stop();
        let costs: Vec<f64> = figures.iter().map(|w| w.us_per_tweet).collect();
        let mean = costs.iter().sum::<f64>() / costs.len().max(1) as f64;
        let base = *base.get_or_insert(mean);
        let worst = costs.iter().fold(0.0f64, |a, &b| a.max(b));
        let pending = figures
            .iter()
            .fold(0.0f64, |a, w| a.max(w.pending.unwrap_or(f64::NAN)));
        let committed: f64 = figures.iter().map(|w| w.committed_per_s).sum();
        println!(
            "2. {n} instance(s): µs/tweet per instance [{}]; mean {mean:.1} = {:.2} × N = 1 \
             (highest {:.2} ×); warm-up {warmed:.0} s; {committed:.0} tweets/s committed of \
             {:.0} offered; consumer pending at the window's end {pending:.0}",
            costs
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            mean / base,
            worst / base,
            per_instance * n as f64
        );
        for (i, (w, exit)) in figures.iter().zip(&exits).enumerate() {
            println!("   i{i}: {}\n       exit {exit}", w.describe());
        }
    }
}

/// The emulator group's µs/tweet in a window's groups text.
fn direct_emulator_us(groups: &str) -> f64 {
    groups
        .split(", ")
        .find_map(|g| g.strip_prefix("emulator "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let mode: String = env_or("TF_SCALE_MODE", "drain".to_string());
    let delay: String = env_or("TF_SCALE_DELAY", "50..500".to_string());
    let instances: Vec<usize> = env_or("TF_SCALE_INSTANCES", "1,2,3".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let nats = Nats::start();
    match mode.as_str() {
        "drain" => drain(&nats, &delay, &instances),
        "steady" => steady(&nats, &delay, &instances),
        "both" => {
            drain(&nats, &delay, &instances);
            steady(&nats, &delay, &instances);
        }
        other => panic!("TF_SCALE_MODE={other}: drain, steady or both"),
    }
}
