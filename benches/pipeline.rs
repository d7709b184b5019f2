//! End-to-end benchmark: built-in emulator → pipeline → PostgreSQL, in one process.
//!
//! A. Delay off: the pipeline's steady-state records/s into PostgreSQL with the
//!    emulator at `--rate max`, beside a raw binary COPY of the same rows into
//!    empty tables of the same definition. The ratio is the figure.
//! B. Mandated delay (50–500 ms, normal): for each input rate, after a warm-up,
//!    the rate is held for a window; reported: tweets/s in and committed,
//!    p99 receipt-to-commit over the window, pool sizes beside Little's law,
//!    threads and memory.
//!
//! Environment: `TF_BENCH_NODELAY_SECS` (20), `TF_BENCH_RATES` (tweets/s in all,
//! `2000,5000,10000`), `TF_BENCH_WARMUP` (20 s), `TF_BENCH_SECS` (60 s),
//! `TF_BENCH_PARTS` (`AB`), `TF_BENCH_WHEN_FULL` (`--when-full` of both parts: `spill`,
//! the default for a tweet server, or `block`), `DATABASE_URL`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

mod common;
use common::{database_url, env_or, proc_status, Schema};

use tweetflow::Rate;
use tweetflow::Shutdown;
use tweetflow::{cpu_times, start, PipelineConfig, StatusMeters};

fn threads() -> u64 {
    proc_status("Threads:")
}

fn rss_mib() -> f64 {
    proc_status("VmRSS:") as f64 / 1024.0
}

fn base_config(schema: &str, spool: &std::path::Path) -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    cfg.emulator.bind = "127.0.0.1:0".parse().unwrap();
    cfg.sink.database_url = database_url();
    cfg.sink.schema = schema.to_string();
    cfg.sink.spool_dir = spool.to_path_buf();
    cfg
}

/// `--when-full` from `TF_BENCH_WHEN_FULL` (`spill`, the default for a tweet server,
/// or `block`), printed.
fn when_full() -> tweetflow::WhenFull {
    let when_full: String = env_or("TF_BENCH_WHEN_FULL", "spill".to_string());
    println!("--when-full {when_full}");
    match when_full.as_str() {
        "block" => tweetflow::WhenFull::Block,
        _ => tweetflow::WhenFull::Spill,
    }
}

fn part_a(secs: u64) {
    println!("== A. delay off: pipeline into PostgreSQL vs raw binary COPY of the same rows");
    let mut schema = Schema::new("bench_nodelay");
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&schema.name, spool.path());
    cfg.emulator.rate = Rate::Max;
    cfg.core.work_delay = "0".parse().unwrap();
    cfg.sink.when_full = when_full();
    // At `--rate max` the emulator's 1-in-300 kills come hundreds of times a second,
    // far above the real server's rate that the default restart intensity is sized
    // for; raise the limit so this run measures throughput, kills included.
    cfg.core.restart.max_restarts = 1_000_000;
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap_or_else(|_| panic!("start"));
    let probes = pipeline.probes().clone();
    let committed = || probes.sink.snapshot().records_committed;
    let tweets_in = || -> u64 { probes.sources.iter().map(|s| s.snapshot().tweets).sum() };

    std::thread::sleep(Duration::from_secs(5)); // warm-up
    let (t0, c0, i0) = (Instant::now(), committed(), tweets_in());
    let cpu0 = cpu_times();
    std::thread::sleep(Duration::from_secs(secs));
    let (dt, c1, i1) = (t0.elapsed().as_secs_f64(), committed(), tweets_in());
    let cpu = cpu_times().since(&cpu0).budget(i1 - i0, dt);
    let snap = probes.sink.snapshot();
    shutdown.trigger();
    let summary = pipeline.wait().unwrap();
    let pipeline_rate = (c1 - c0) as f64 / dt;
    println!(
        "pipeline: {:.0} records/s committed ({:.0} tweets/s in) over {secs} s; batch {} rows, last write {:.0} ms; {} records in all",
        pipeline_rate,
        (i1 - i0) as f64 / dt,
        snap.batch_size,
        snap.last_write_ms,
        summary.committed
    );

    // The same rows, read back, then COPYed raw into empty tables of the same definition.
    let s = schema.name.clone();
    let mut dump = |table: &str| -> Vec<u8> {
        let mut out = Vec::new();
        schema
            .db
            .copy_out(&*format!("COPY {s}.{table} TO STDOUT (FORMAT binary)"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let (users, tweets) = (dump("users"), dump("tweets"));
    let rows: i64 = schema
        .db
        .query_one(&*format!("SELECT count(*) FROM {s}.tweets"), &[])
        .unwrap()
        .get(0);
    schema
        .db
        .batch_execute(&format!(
            "CREATE TABLE {s}.raw_users (LIKE {s}.users INCLUDING ALL);
             CREATE TABLE {s}.raw_tweets (LIKE {s}.tweets INCLUDING ALL);"
        ))
        .unwrap();
    let t = Instant::now();
    let mut tx = schema.db.transaction().unwrap();
    for (table, bytes) in [("raw_users", &users), ("raw_tweets", &tweets)] {
        let mut w = tx
            .copy_in(&*format!("COPY {s}.{table} FROM STDIN (FORMAT binary)"))
            .unwrap();
        w.write_all(bytes).unwrap();
        w.finish().unwrap();
    }
    tx.commit().unwrap();
    let raw_rate = rows as f64 / t.elapsed().as_secs_f64();
    println!(
        "raw binary COPY of the same rows: {rows} tweets (+ their users, {:.1} MB) at {raw_rate:.0} tweets/s",
        (users.len() + tweets.len()) as f64 / 1e6
    );
    println!("ratio pipeline / raw COPY: {:.2}", pipeline_rate / raw_rate);
    println!("CPU per thread group over the window: {cpu}");
}

fn part_b(rate: f64, warmup: u64, secs: u64) {
    println!("== B. mandated delay, {rate:.0} tweets/s offered");
    let schema = Schema::new(&format!("bench_delay{}", rate as u64));
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&schema.name, spool.path());
    // An event carries 1 + 1/3 tweets on average (a third are retweets).
    let per_stream = rate / 2.0 / (1.0 + cfg.emulator.retweet_share);
    cfg.emulator.rate = Rate::Constant(per_stream);
    cfg.sink.when_full = when_full();
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap_or_else(|_| panic!("start"));
    let probes = pipeline.probes().clone();
    let mut meters = StatusMeters::default();

    std::thread::sleep(Duration::from_secs(warmup));
    probes.sink.latency.reset();
    let tweets_in = || -> u64 { probes.sources.iter().map(|s| s.snapshot().tweets).sum() };
    let committed = || probes.sink.snapshot().records_committed;
    let (t0, i0, c0) = (Instant::now(), tweets_in(), committed());
    let cpu0 = cpu_times();
    let _ = pipeline.status(&mut meters);
    let (mut max_threads, mut max_rss) = (0u64, 0f64);
    let mut size_err = Vec::new();
    let mut max_buffered = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        max_threads = max_threads.max(threads());
        max_rss = max_rss.max(rss_mib());
        let core = probes.core.snapshot();
        for p in [&core.sentiment, &core.engagement] {
            if p.littles_law_size > 0.0 {
                size_err.push((p.workers as f64 - p.littles_law_size) / p.littles_law_size);
            }
        }
        max_buffered = max_buffered.max(probes.sink.snapshot().buffered);
    }
    let dt = t0.elapsed().as_secs_f64();
    let (i1, c1) = (tweets_in(), committed());
    let cpu = cpu_times().since(&cpu0).budget(i1 - i0, dt);
    let p50 = probes.sink.latency.quantile(0.5).unwrap_or(0) as f64 / 1e3;
    let p99 = probes.sink.latency.quantile(0.99).unwrap_or(0) as f64 / 1e3;
    let status = pipeline.status(&mut meters);
    let core = probes.core.snapshot();
    size_err.sort_by(|a, b| a.total_cmp(b));
    let within_25 =
        size_err.iter().filter(|e| e.abs() <= 0.25).count() as f64 / size_err.len().max(1) as f64;
    println!(
        "in {:.0} tweets/s, committed {:.0} records/s over {secs} s (after {warmup} s warm-up)",
        (i1 - i0) as f64 / dt,
        (c1 - c0) as f64 / dt
    );
    println!("receipt->commit over the window: p50 {p50:.0} ms, p99 {p99:.0} ms");
    println!(
        "pools: sentiment {} (Little {:.0}), engagement {} (Little {:.0}); {:.0}% of samples within 25% of Little's law; in flight {}",
        core.sentiment.workers,
        core.sentiment.littles_law_size,
        core.engagement.workers,
        core.engagement.littles_law_size,
        within_25 * 100.0,
        status.in_flight
    );
    println!(
        "dispatch->result p99: sentiment {:?} ms, engagement {:?} ms; sink batch {} ({:.0} ms), max buffered {max_buffered}",
        core.sentiment.latency_p99_ms, core.engagement.latency_p99_ms, status.batch_size, status.write_ms
    );
    println!("threads max {max_threads}, RSS max {max_rss:.0} MiB");
    println!("CPU per thread group over the window: {cpu}");
    let sustained = p99 < 1500.0 && (c1 - c0) as f64 >= 0.95 * (i1 - i0) as f64;
    println!(
        "sustained with p99 < 1.5 s: {}",
        if sustained { "yes" } else { "NO" }
    );
    shutdown.trigger();
    let summary = pipeline.wait().unwrap();
    println!(
        "drained: {} records in, {} committed, {} incomplete",
        summary.records, summary.committed, summary.incomplete
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let parts: String = env_or("TF_BENCH_PARTS", "AB".to_string());
    if parts.contains('A') {
        part_a(env_or("TF_BENCH_NODELAY_SECS", 20));
    }
    if parts.contains('B') {
        let rates: String = env_or("TF_BENCH_RATES", "2000,5000,10000".to_string());
        let warmup = env_or("TF_BENCH_WARMUP", 20);
        let secs = env_or("TF_BENCH_SECS", 60);
        for r in rates
            .split(',')
            .filter_map(|r| r.trim().parse::<f64>().ok())
        {
            part_b(r, warmup, secs);
        }
    }
}
