//! Scale-out benchmark: `tweetflow ingest` into JetStream, and 1, 2, 3 … `tweetflow run
//! --jetstream` instances sharing the stream, each a process of the release binary.
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
//! On one machine the total cannot grow past its cores; what must hold is that the
//! µs per tweet of an instance stays within 10 % as instances are added, and the
//! JetStream hop (2 with N = 1, against 1) costs little.
//!
//! Environment: `TF_SCALE_NATS` (a NATS URL with JetStream; default: a nats-server
//! started here on a free port with a temporary store), `TF_SCALE_RATE` (events/s per
//! stream, 1000), `TF_SCALE_SECS` (30), `TF_SCALE_INSTANCES` (`1,2,3`),
//! `TF_SCALE_DELAY` (`--work-delay`, `50..500`), `DATABASE_URL`.

use std::io::Read;
use std::net::TcpListener;
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

/// The flags every `run` of the bench shares: the delay, the database, no endpoint.
fn run_flags<'a>(delay: &'a str, schema: &'a str, db: &'a str) -> [&'a str; 9] {
    [
        "--work-delay",
        delay,
        "--schema",
        schema,
        "--database-url",
        db,
        "--metrics-addr",
        "off",
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

fn main() {
    let rate: u64 = env_or("TF_SCALE_RATE", 1000);
    let secs: u64 = env_or("TF_SCALE_SECS", 30);
    let delay: String = env_or("TF_SCALE_DELAY", "50..500".to_string());
    let instances: String = env_or("TF_SCALE_INSTANCES", "1,2,3".to_string());
    let nats = Nats::start();
    let (rate_s, secs_s) = (rate.to_string(), secs.to_string());
    println!(
        "scale bench: {rate} events/s per stream for {secs} s, work delay {delay}, NATS {}",
        nats.url
    );

    // 0. Ingest alone.
    let err = run_to_end(&[
        "ingest",
        "--jetstream",
        &nats.url,
        "--stream",
        "scale-ingest",
        "--emulator-rate",
        "max",
        "--duration",
        &secs_s,
        "--quiet",
    ]);
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
    args.extend(run_flags(&delay, &schema.name, &db));
    let err = run_to_end(&args);
    let direct = cpu_per_tweet(&err);
    println!("1. direct SSE, one process: {direct:?} µs/tweet");
    drop(schema);

    // 2. N instances sharing a stream.
    for n in instances
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let stream = format!("scale-{n}-{}", std::process::id());
        run_to_end(&[
            "ingest",
            "--jetstream",
            &nats.url,
            "--stream",
            &stream,
            "--emulator-rate",
            &rate_s,
            "--duration",
            &secs_s,
            "--quiet",
        ]);
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
                args.extend(run_flags(&delay, &schema.name, &db));
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
