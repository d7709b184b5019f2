//! Benchmark of the processing core: `cargo bench --bench core`. Target: p99
//! dispatch→result ≤ 600 ms at 10,000 tweets/s with the mandated delay, pools sized
//! to Little's law.
//!
//! Scenarios (environment variables, defaults = the runs in docs/BENCHMARKS.md):
//! * `CORE_BENCH_RATES` (default `2000,10000`): tweets/s fed for
//!   `CORE_BENCH_SECS` (default 60) with the mandated delay
//!   (`CORE_BENCH_DELAY`, default `50..500`), one kill message per
//!   `CORE_BENCH_KILL_EVERY` tweets (default 300, 0 = none). Reports p99
//!   dispatch-to-result latency (whole run and after `CORE_BENCH_WARMUP` s,
//!   default 10), pool sizes against Little's law (rate × 275 ms / 0.8),
//!   threads (/proc/self/task) and memory (VmRSS/VmHWM).
//! * `CORE_BENCH_OFF_TWEETS` (default 500000, 0 = skip): that many tweets as
//!   fast as possible with the delay off: tweets/s and µs per tweet.
//! * `CORE_BENCH_STEPS=1` (default off): 100 → 2,000 → 100 tweets/s (20 s, 30 s,
//!   30 s) on real threads; when the pool got within 20% of Little's law.
//! * `CORE_BENCH_SLACK_US`: the workers' timer slack (default the core's, 0 = the kernel's 50 µs).
//! * `CORE_BENCH_MAX_WORKERS` (default 4096 per pool); `CORE_BENCH_INBOX`
//!   (inbox capacity of the delay-off run, default the core's default, 2).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use tweetflow::testkit::test_tweet;
use tweetflow::Histogram;
use tweetflow::Lexicon;
use tweetflow::{
    cpu_times, spawn_core, CoreConfig, CoreSnapshot, CpuBudget, ThreadGroup, WorkDelay,
};
use tweetflow::{unix_micros, AggMsg, Ingest, ScoreKind, Tweet};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// (VmRSS, VmHWM) in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time of the process (user + system) in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn tweets(n: usize) -> Vec<Arc<Tweet>> {
    let texts = [
        "I love this, what a good day #happy",
        "can't stand the traffic, terrible commute",
        "RT @someone: nothing to see here http://t.co/x",
        "Meh. 🙂 ok I guess",
    ];
    (0..n)
        .map(|i| {
            let mut t = test_tweet(i as u64, texts[i % texts.len()]);
            t.favorite_count = (i % 7) as i64;
            t.retweet_count = (i % 3) as i64;
            t.user.followers_count = (i % 11) as i64;
            Arc::new(t)
        })
        .collect()
}

struct Collected {
    scores: u64,
    tweets: u64,
    e2e: Histogram,
}

/// Stands in for the aggregator: counts, and measures feed-to-result latency.
fn collector(rx: crossbeam_channel::Receiver<AggMsg>) -> thread::JoinHandle<Collected> {
    thread::spawn(move || {
        let mut pending: HashMap<u64, (u64, u8)> = HashMap::new();
        let mut c = Collected {
            scores: 0,
            tweets: 0,
            e2e: Histogram::new(),
        };
        for m in rx {
            match m {
                AggMsg::Tweet(t) => {
                    c.tweets += 1;
                    pending.insert(t.seq, (t.received_unix_us, 0));
                }
                AggMsg::Score { seq, .. } => {
                    c.scores += 1;
                    if let Some(e) = pending.get_mut(&seq) {
                        e.1 += 1;
                        if e.1 == 2 {
                            c.e2e.record(unix_micros().saturating_sub(e.0));
                            pending.remove(&seq);
                        }
                    }
                }
            }
        }
        c
    })
}

fn p(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).map(|v| v as f64 / 1000.0).unwrap_or(f64::NAN)
}

fn delayed_run(rate: f64, secs: f64, warmup: f64, delay: WorkDelay, kill_every: u64) {
    let mean_s = delay.mean().as_secs_f64();
    let little = rate * mean_s / 0.8;
    println!(
        "\n== core, delay {delay} ms, {rate} tweets/s for {secs} s, kill every {kill_every} tweets =="
    );
    let cfg = CoreConfig {
        work_delay: delay,
        max_workers: env("CORE_BENCH_MAX_WORKERS", 4096usize),
        timer_slack: Duration::from_micros(env(
            "CORE_BENCH_SLACK_US",
            CoreConfig::default().timer_slack.as_micros() as u64,
        )),
        ..CoreConfig::default()
    };
    let (in_tx, in_rx) = bounded(20_000);
    let (agg_tx, agg_rx) = bounded(20_000);
    let core = spawn_core(cfg, Arc::new(Lexicon::afinn_111()), in_rx, agg_tx).expect("core");
    let stats = core.stats();
    let coll = collector(agg_rx);
    let pool = tweets(4096);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let feeder = thread::spawn(move || {
        let start = Instant::now();
        let mut sent = 0u64;
        let mut kills = 0u64;
        let mut max_lag = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            max_lag = max_lag.max(due.saturating_sub(sent));
            while sent < due {
                let mut t = (*pool[(sent % pool.len() as u64) as usize]).clone();
                t.seq = sent;
                t.received_unix_us = unix_micros();
                if in_tx.send(Ingest::Tweet(Arc::new(t))).is_err() {
                    return (sent, kills, max_lag);
                }
                sent += 1;
                if kill_every > 0 && sent.is_multiple_of(kill_every) {
                    let _ = in_tx.send(Ingest::Kill { stream: 1 });
                    kills += 1;
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
        (sent, kills, max_lag)
    });
    let start = Instant::now();
    let mut samples: Vec<(f64, CoreSnapshot, usize)> = Vec::new();
    let mut peak_threads = 0;
    let mut warm = false;
    // (CPU per thread group, tweets dispatched, when) at the end of the warm-up.
    let mut window_start = (cpu_times(), 0u64, Instant::now());
    while start.elapsed().as_secs_f64() < secs {
        thread::sleep(Duration::from_secs(1));
        let t = start.elapsed().as_secs_f64();
        if !warm && t >= warmup {
            warm = true;
            for k in ScoreKind::ALL {
                stats.pool(k).latency.reset();
            }
            window_start = (cpu_times(), stats.snapshot().tweets, Instant::now());
        }
        let s = stats.snapshot();
        let th = threads();
        peak_threads = peak_threads.max(th);
        println!(
            "t={t:5.1}s tweets={:8} sent/s={:7.0} workers s/e={:5}/{:5} target={:5} L(meas)={:7.1} \
             S={:5.1}ms util={:.2} queued={:6} p99={:6.1}ms threads={th}",
            s.tweets,
            s.sentiment.arrival_rate,
            s.sentiment.workers,
            s.engagement.workers,
            s.sentiment.target,
            s.sentiment.littles_law_size,
            s.sentiment.service_ms,
            s.sentiment.utilisation,
            s.sentiment.queued + s.engagement.queued,
            s.sentiment.latency_p99_ms.unwrap_or(f64::NAN),
        );
        samples.push((t, s, th));
    }
    let steady = stats.snapshot();
    let (rss, hwm) = memory();
    let window = cpu_times().since(&window_start.0).budget(
        steady.tweets - window_start.1,
        window_start.2.elapsed().as_secs_f64(),
    );
    let cpu_total = cpu_secs();
    stop.store(true, Ordering::Relaxed);
    let (sent, kills, max_lag) = feeder.join().expect("feeder");
    let end_feed = Instant::now();
    core.join().expect("core join");
    let drain = end_feed.elapsed().as_secs_f64();
    let c = coll.join().expect("collector");
    let final_snap = stats.snapshot();
    let steady_samples: Vec<_> = samples.iter().filter(|(t, _, _)| *t >= warmup).collect();
    let avg = |f: &dyn Fn(&CoreSnapshot) -> f64| {
        steady_samples.iter().map(|(_, s, _)| f(s)).sum::<f64>()
            / steady_samples.len().max(1) as f64
    };
    let avg_s = avg(&|s| s.sentiment.workers as f64);
    let avg_e = avg(&|s| s.engagement.workers as f64);
    let avg_rate = avg(&|s| s.sentiment.arrival_rate);
    let min_s = steady_samples
        .iter()
        .map(|(_, s, _)| s.sentiment.workers)
        .min()
        .unwrap_or(0);
    let max_s = steady_samples
        .iter()
        .map(|(_, s, _)| s.sentiment.workers)
        .max()
        .unwrap_or(0);
    println!("-- result: rate {rate}/s, {secs} s, delay {delay}");
    println!(
        "fed {sent} tweets + {kills} kills (max feeder lag {max_lag} tweets); results: {} tweets, {} scores (expected {}); drain after stop {drain:.2} s",
        c.tweets,
        c.scores,
        2 * sent
    );
    for (name, snap_all, snap_steady) in [
        ("sentiment", &final_snap.sentiment, &steady.sentiment),
        ("engagement", &final_snap.engagement, &steady.engagement),
    ] {
        println!(
            "{name}: dispatch-to-result p50 {:.1} ms p99 {:.1} ms (after {warmup} s warm-up); \
             kills {} restarts {} pool restarts {} failed {}",
            snap_steady.latency_p50_ms.unwrap_or(f64::NAN),
            snap_steady.latency_p99_ms.unwrap_or(f64::NAN),
            snap_all.kills,
            snap_all.restarts,
            snap_all.pool_restarts,
            snap_all.failed
        );
    }
    println!(
        "feed-to-result (both scores) p50 {:.1} ms p99 {:.1} ms p999 {:.1} ms (whole run)",
        p(&c.e2e, 0.5),
        p(&c.e2e, 0.99),
        p(&c.e2e, 0.999)
    );
    println!(
        "pool size after warm-up: sentiment avg {avg_s:.0} (min {min_s}, max {max_s}), engagement avg {avg_e:.0}; \
         Little's law rate*{:.0}ms/0.8 = {little:.0} -> sentiment {:+.1}%, engagement {:+.1}%; measured rate {avg_rate:.0}/s",
        mean_s * 1000.0,
        (avg_s / little - 1.0) * 100.0,
        (avg_e / little - 1.0) * 100.0
    );
    println!(
        "threads peak {peak_threads}; memory VmRSS {rss:.0} MiB, VmHWM {hwm:.0} MiB (process, at the end of the feed)"
    );
    println!(
        "worker threads created {} for {} tweets ({:.5} per tweet; bound {} per pool)",
        final_snap.threads_created,
        final_snap.tweets,
        final_snap.threads_created as f64 / final_snap.tweets.max(1) as f64,
        final_snap.thread_bound
    );
    print_budget("after warm-up", &window);
    println!(
        "CPU: whole process {:.1}% of a core (process total since start)",
        cpu_total * 100.0 / secs,
    );
}

/// Rate steps on real threads: `phases` of (seconds, tweets/s); reports, per
/// phase, when the sentiment pool got and stayed within 20% of rate × S / 0.8.
fn step_run(phases: &[(f64, f64)], delay: WorkDelay) {
    println!("\n== core, rate steps {phases:?} (s, tweets/s), delay {delay} ms ==");
    let mean_s = delay.mean().as_secs_f64();
    let cfg = CoreConfig {
        work_delay: delay,
        ..CoreConfig::default()
    };
    let (in_tx, in_rx) = bounded(20_000);
    let (agg_tx, agg_rx) = bounded(20_000);
    let core = spawn_core(cfg, Arc::new(Lexicon::afinn_111()), in_rx, agg_tx).expect("core");
    let stats = core.stats();
    let coll = collector(agg_rx);
    let pool = tweets(4096);
    let plan = phases.to_vec();
    let feeder = thread::spawn(move || {
        let mut sent = 0u64;
        for (secs, rate) in plan {
            let start = Instant::now();
            let base = sent;
            while start.elapsed().as_secs_f64() < secs {
                let due = base + (start.elapsed().as_secs_f64() * rate) as u64;
                while sent < due {
                    let mut t = (*pool[(sent % pool.len() as u64) as usize]).clone();
                    t.seq = sent;
                    t.received_unix_us = unix_micros();
                    if in_tx.send(Ingest::Tweet(Arc::new(t))).is_err() {
                        return sent;
                    }
                    sent += 1;
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    });
    let start = Instant::now();
    let total: f64 = phases.iter().map(|p| p.0).sum();
    let mut trace = Vec::new();
    while start.elapsed().as_secs_f64() < total {
        thread::sleep(Duration::from_millis(250));
        let s = stats.snapshot();
        trace.push((start.elapsed().as_secs_f64(), s.sentiment.workers));
    }
    let sent = feeder.join().expect("feeder");
    core.join().expect("join");
    let c = coll.join().expect("collector");
    let mut t0 = 0.0;
    for (secs, rate) in phases {
        let want = rate * mean_s / 0.8;
        let within = |n: usize| (n as f64 - want).abs() <= 0.2 * want;
        let phase: Vec<_> = trace
            .iter()
            .filter(|(t, _)| *t > t0 && *t <= t0 + secs)
            .collect();
        let settle = match phase.iter().rposition(|(_, n)| !within(*n)) {
            None => phase.first().map(|(t, _)| t - t0),
            Some(i) => phase.get(i + 1).map(|(t, _)| t - t0),
        };
        let sizes: Vec<usize> = phase.iter().map(|(_, n)| *n).collect();
        println!(
            "phase {rate}/s for {secs} s: Little's law {want:.0}; within 20% from {} on; sizes min {} max {} last {}",
            settle.map_or("never".to_string(), |t| format!("{t:.2} s")),
            sizes.iter().min().unwrap_or(&0),
            sizes.iter().max().unwrap_or(&0),
            sizes.last().unwrap_or(&0),
        );
        t0 += secs;
    }
    let changes: Vec<(f64, usize)> = trace
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| ((w[1].0 * 100.0).round() / 100.0, w[1].1))
        .collect();
    println!("size changes (t s, workers): {changes:?}");
    println!(
        "fed {sent} tweets; results {} tweets, {} scores (expected {})",
        c.tweets,
        c.scores,
        2 * sent
    );
}

/// The least-connected choice alone, over `slots` workers.
fn scan_micro(slots: usize) {
    use rand::{Rng, SeedableRng};
    println!("\n== least-connected choice over {slots} slots ==");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    for busy_pct in [80u32, 100] {
        let f = tweetflow::InFlight::new(slots);
        for i in 0..slots {
            if rng.gen_range(0..100) < busy_pct {
                for _ in 0..rng.gen_range(1..=3) {
                    f.start(i);
                }
            }
        }
        let active = vec![true; slots];
        let n = 200_000usize;
        let mut cursor = 0;
        let mut sink = 0usize;
        let start = Instant::now();
        for _ in 0..n {
            let i = f.least_loaded(&active, cursor).unwrap_or(0);
            sink = sink.wrapping_add(i);
            cursor = rng.gen_range(0..slots);
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{busy_pct}% of the workers busy: {ns:.0} ns per choice (checksum {sink})");
    }
}

fn off_run(n: usize) {
    println!("\n== core, delay off, {n} tweets as fast as possible ==");
    let inbox = env("CORE_BENCH_INBOX", CoreConfig::default().inbox_capacity);
    let cfg = CoreConfig {
        work_delay: WorkDelay::Off,
        inbox_capacity: inbox,
        ..CoreConfig::default()
    };
    let (in_tx, in_rx) = bounded(20_000);
    let (agg_tx, agg_rx) = bounded(20_000);
    let pool = tweets(4096);
    let cpu0 = cpu_secs();
    let groups0 = cpu_times();
    let start = Instant::now();
    let core = spawn_core(cfg, Arc::new(Lexicon::afinn_111()), in_rx, agg_tx).expect("core");
    let stats = core.stats();
    let coll = collector(agg_rx);
    for i in 0..n {
        let mut t = (*pool[i % pool.len()]).clone();
        t.seq = i as u64;
        t.received_unix_us = unix_micros();
        in_tx.send(Ingest::Tweet(Arc::new(t))).expect("send");
    }
    // Sample while the dispatcher is still alive (the input is still open).
    while stats.snapshot().tweets < n as u64 {
        thread::sleep(Duration::from_millis(1));
    }
    let window = cpu_times()
        .since(&groups0)
        .budget(n as u64, start.elapsed().as_secs_f64());
    drop(in_tx);
    core.join().expect("join");
    let c = coll.join().expect("collector");
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let s = stats.snapshot();
    assert_eq!(c.scores, 2 * n as u64, "lost results");
    println!(
        "{n} tweets in {wall:.2} s: {:.0} tweets/s; wall {:.2} µs/tweet, CPU {:.2} µs/tweet (all threads, incl. feeder and collector); \
         dispatch-to-result p99 {:.3} ms (inbox capacity {inbox})",
        n as f64 / wall,
        wall * 1e6 / n as f64,
        cpu * 1e6 / n as f64,
        s.sentiment.latency_p99_ms.unwrap_or(f64::NAN),
    );
    print_budget("delay off", &window);
}

/// The CPU budget per thread group (`other` is the bench's feeder, collector and
/// sampling threads); workers also per message (two per tweet).
fn print_budget(what: &str, b: &CpuBudget) {
    println!(
        "CPU per thread group ({what}, {} tweets in {:.1} s): {b}",
        b.tweets, b.wall_seconds
    );
    if let Some(w) = b.group(ThreadGroup::Workers).and_then(|w| w.us_per_tweet) {
        println!("CPU: workers {:.1} µs per message", w / 2.0);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported.
    let secs: f64 = env("CORE_BENCH_SECS", 60.0);
    let warmup: f64 = env("CORE_BENCH_WARMUP", 10.0f64).min(secs / 2.0);
    let delay: WorkDelay = env("CORE_BENCH_DELAY", WorkDelay::default());
    let kill_every: u64 = env("CORE_BENCH_KILL_EVERY", 300);
    let rates: String = env("CORE_BENCH_RATES", "2000,10000".to_string());
    let off: usize = env("CORE_BENCH_OFF_TWEETS", 500_000);
    println!(
        "core bench: pid {}, {} cores, pid_max {}",
        std::process::id(),
        thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap_or_default()
            .trim()
    );
    scan_micro(4096);
    if off > 0 {
        off_run(off);
    }
    for r in rates
        .split(',')
        .filter_map(|r| r.trim().parse::<f64>().ok())
    {
        delayed_run(r, secs, warmup, delay, kill_every);
    }
    if env("CORE_BENCH_STEPS", 0u8) == 1 {
        step_run(&[(20.0, 100.0), (30.0, 2000.0), (30.0, 100.0)], delay);
    }
}
