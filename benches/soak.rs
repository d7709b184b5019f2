//! Soak: the built-in emulator at a constant rate into a fresh schema for a long
//! time, until the tables hold millions of rows; is a batch's cost flat as they grow?
//!
//! For each mode (`off`: no work delay; `delay`: the lab's 50–500 ms), one row per
//! report period: tweets received/s, records committed/s and their ratio, batch
//! write time p50/p99 and receipt→commit p99 of the period, batch rows, the sink's
//! buffer and spool, RSS, threads, table rows and size, CPU seconds per thread group
//! of tweetflow and of the PostgreSQL backend of the writer. Then the targets:
//! every period commits ≥ 98 % of what it received, and the last period's write
//! p99 is at most 1.5 × the first's.
//!
//! Environment: `TF_SOAK_SECS` (600 per mode), `TF_SOAK_REPORT_SECS` (60),
//! `TF_SOAK_MODES` (`off,delay`), `TF_SOAK_RATE_OFF` (2,000 events/s per stream,
//! ≈ 5,300 tweets/s), `TF_SOAK_RATE_DELAY` (1,500, ≈ 4,000 tweets/s), `TF_BENCH_KEEP`
//! (keep the schema), `DATABASE_URL`. CI never runs benches; a short run for a
//! check: `TF_SOAK_SECS=60 TF_SOAK_REPORT_SECS=10 cargo bench --bench soak`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;
use common::{database_url, env_or, proc_status, Schema};

use tweetflow::Rate;
use tweetflow::Shutdown;
use tweetflow::{start, PipelineConfig, Probes};

/// The groups of the per-period CPU columns, in order.
const GROUPS: [&str; 12] = [
    "readers",
    "dispatcher",
    "workers",
    "supervisor",
    "aggregator",
    "tap",
    "sink",
    "emulator",
    "status",
    "bench",
    "other",
    "exited",
];

/// Thread group of a thread name (the pipeline names every thread).
fn group(comm: &str) -> &'static str {
    const GROUPS: [(&str, &str); 11] = [
        ("source-", "readers"),
        ("dispatcher", "dispatcher"),
        ("sentiment-", "workers"),
        ("engagement-", "workers"),
        ("supervisor", "supervisor"),
        ("aggregate", "aggregator"),
        ("tap", "tap"),
        ("sink-", "sink"),
        ("emulator", "emulator"),
        ("status", "status"),
        ("soak", "bench"),
    ];
    GROUPS
        .iter()
        .find(|(p, _)| comm.starts_with(p))
        .map_or("other", |(_, g)| g)
}

/// CPU seconds of a thread from its `schedstat` (ns on CPU), else `stat` (ticks).
fn thread_cpu(dir: &std::path::Path) -> Option<f64> {
    if let Ok(s) = std::fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            return Some(ns / 1e9);
        }
    }
    stat_cpu(&std::fs::read_to_string(dir.join("stat")).ok()?)
}

/// utime + stime of a `/proc/…/stat` line, in seconds (100 ticks a second).
fn stat_cpu(stat: &str) -> Option<f64> {
    // The name is in parentheses and may itself hold spaces or ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds per thread group of this process; `exited` is what threads that
/// have ended used (process total − live threads).
fn cpu_by_group() -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let mut live = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if let Some(s) = thread_cpu(&e.path()) {
                *out.entry(group(comm.trim())).or_insert(0.0) += s;
                live += s;
            }
        }
    }
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_cpu(&s))
        .unwrap_or(live);
    out.insert("exited", (total - live).max(0.0));
    out
}

/// Soak figures of the schema.
trait SchemaExt {
    fn backend_pids(&mut self) -> Vec<i32>;
    fn size_mb(&mut self) -> f64;
}

impl SchemaExt for Schema {
    /// The pids of this run's backends (the writer's and the health probe's): the
    /// soak names its connections `application_name = <schema>`.
    fn backend_pids(&mut self) -> Vec<i32> {
        self.db
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&self.name],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    fn size_mb(&mut self) -> f64 {
        let q = format!(
            "SELECT (pg_total_relation_size('{s}.tweets') + pg_total_relation_size('{s}.users'))::float8",
            s = self.name
        );
        self.db
            .query_one(&*q, &[])
            .map(|r| r.get::<_, f64>(0) / 1e6)
            .unwrap_or(0.0)
    }
}

/// The counters a period is the difference of.
#[derive(Clone, Default)]
struct Mark {
    t: f64,
    received: u64,
    committed: u64,
    batches: u64,
    cpu: BTreeMap<&'static str, f64>,
    pg_cpu: f64,
}

fn mark(probes: &Probes, started: Instant, pg_cpu: f64) -> Mark {
    let sink = probes.sink.snapshot();
    Mark {
        t: started.elapsed().as_secs_f64(),
        received: probes.sources.iter().map(|s| s.snapshot().tweets).sum(),
        committed: sink.records_committed,
        batches: sink.batches,
        cpu: cpu_by_group(),
        pg_cpu,
    }
}

/// CPU seconds of this run's PostgreSQL backends (/proc/<pid>/stat; the server is local).
fn pg_cpu(pids: &[i32]) -> f64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| stat_cpu(&s))
        .sum()
}

/// One period's figures, for the verdict.
struct Period {
    received: f64,
    committed: f64,
    write_p99: f64,
}

fn soak(mode: &str, per_stream: f64, secs: u64, every: u64) {
    let delay = mode == "delay";
    println!(
        "== soak, {}: {per_stream:.0} events/s per stream for {secs} s, a row every {every} s",
        if delay {
            "mandated delay (50-500 ms)"
        } else {
            "delay off"
        }
    );
    let mut schema = Schema::new(&format!("soak_{mode}"));
    let spool = tempfile::tempdir().expect("spool dir");
    let mut cfg = PipelineConfig::default();
    cfg.emulator.bind = "127.0.0.1:0".parse().expect("addr");
    cfg.emulator.rate = Rate::Constant(per_stream);
    let sep = if database_url().contains('?') {
        '&'
    } else {
        '?'
    };
    cfg.sink.database_url = format!("{}{sep}application_name={}", database_url(), schema.name);
    cfg.sink.schema = schema.name.clone();
    cfg.sink.spool_dir = spool.path().to_path_buf();
    if !delay {
        cfg.core.work_delay = "0".parse().expect("delay");
    }
    // The emulator's kills come far more often at these rates than the default restart
    // intensity is sized for; this measures throughput, kills included.
    cfg.core.restart.max_restarts = 1_000_000;
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap_or_else(|e| panic!("start: {e}"));
    let probes = pipeline.probes().clone();
    let started = Instant::now();
    let mut prev = mark(&probes, started, 0.0);
    let mut periods = Vec::new();
    println!(
        "{:>5} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7} {:>7} {:>6} {:>5} {:>9} {:>7}  cpu s: postgres {}",
        "t s", "recv/s", "comm/s", "comm%", "w p50", "w p99", "lat p99", "rows/b", "batch",
        "buf max", "spool", "RSS", "thr", "rows", "MB", GROUPS.join(" ")
    );
    let mut next = Instant::now() + Duration::from_secs(every);
    while started.elapsed() < Duration::from_secs(secs) {
        let (mut buf_max, mut spool_max) = (0u64, 0u64);
        while Instant::now() < next {
            std::thread::sleep(Duration::from_millis(250));
            let s = probes.sink.snapshot();
            buf_max = buf_max.max(s.buffered);
            spool_max = spool_max.max(s.spilled);
        }
        next += Duration::from_secs(every);
        let pids = schema.backend_pids();
        let now = mark(&probes, started, pg_cpu(&pids));
        let sink = probes.sink.snapshot();
        let ms = |v: Option<u64>| v.map_or(f64::NAN, |us| us as f64 / 1e3);
        let w50 = ms(probes.sink.write_time.quantile(0.5));
        let w99 = ms(probes.sink.write_time.quantile(0.99));
        let l99 = ms(probes.sink.latency.quantile(0.99));
        probes.sink.write_time.reset();
        probes.sink.latency.reset();
        let dt = now.t - prev.t;
        let recv = (now.received - prev.received) as f64;
        let comm = (now.committed - prev.committed) as f64;
        let batches = (now.batches - prev.batches).max(1) as f64;
        let cpu = |g: &str| {
            now.cpu.get(g).copied().unwrap_or(0.0) - prev.cpu.get(g).copied().unwrap_or(0.0)
        };
        let cpus: Vec<String> = GROUPS.iter().map(|g| format!("{:.1}", cpu(g))).collect();
        println!(
            "{:>5.0} {:>8.0} {:>8.0} {:>5.1}% {:>7.1} {:>7.1} {:>7.0} {:>6.0} {:>6} {:>7} {:>7} {:>6.0} {:>5} {:>9} {:>7.0}  {:.1} {}",
            now.t,
            recv / dt,
            comm / dt,
            100.0 * comm / recv.max(1.0),
            w50,
            w99,
            l99,
            comm / batches,
            sink.batch_size,
            buf_max,
            spool_max.max(sink.spilled),
            proc_status("VmRSS:") as f64 / 1024.0,
            proc_status("Threads:"),
            now.committed,
            schema.size_mb(),
            now.pg_cpu - prev.pg_cpu,
            cpus.join(" ")
        );
        periods.push(Period {
            received: recv,
            committed: comm,
            write_p99: w99,
        });
        prev = now;
    }
    shutdown.trigger();
    let summary = pipeline.wait().unwrap_or_else(|e| panic!("drain: {e}"));
    println!(
        "drained: {} records, {} committed, {} left in the spool; receipt->commit p99 of the last period {:?} ms",
        summary.records, summary.committed, summary.spooled_at_exit, summary.latency_p99_ms
    );
    let kept = periods
        .iter()
        .filter(|p| p.committed >= 0.98 * p.received)
        .count();
    println!(
        "target: every period commits >= 98 % of what it received: {} ({kept} of {})",
        if kept == periods.len() { "yes" } else { "NO" },
        periods.len()
    );
    if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
        let ratio = last.write_p99 / first.write_p99;
        println!(
            "target: last period's write p99 <= 1.5 x the first's: {} ({:.1} ms vs {:.1} ms, x{ratio:.2})",
            if ratio <= 1.5 { "yes" } else { "NO" },
            last.write_p99,
            first.write_p99
        );
    }
}

fn main() {
    // `cargo test --benches` runs benches with no arguments we need; `--list` asks for names.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let secs = env_or("TF_SOAK_SECS", 600);
    let every = env_or("TF_SOAK_REPORT_SECS", 60).max(1);
    let modes: String = env_or("TF_SOAK_MODES", "off,delay".to_string());
    for mode in modes.split(',').map(str::trim) {
        match mode {
            "off" => soak("off", env_or("TF_SOAK_RATE_OFF", 2_000.0), secs, every),
            "delay" => soak("delay", env_or("TF_SOAK_RATE_DELAY", 1_500.0), secs, every),
            other => eprintln!("TF_SOAK_MODES: unknown mode {other:?} (off, delay)"),
        }
    }
}
