//! The floor of a thread-per-message hand-off, with none of tweetflow's engine:
//! `cargo bench --bench handoff`. What OS threads that each sleep the mandated
//! delay per message cost on this machine, so that the engine's own cost (the
//! `core` bench at the same rate, in the same hour) can be told from the cost
//! of that threading model itself.
//!
//! Per tweet, one job to each of two pools of plain threads. A job goes to an
//! idle worker of its pool (one with nothing in flight, the least-connected
//! choice when every worker holds at most one job) through that worker's own
//! bounded channel; the worker sleeps a normal 50–500 ms (`WorkDelay`'s
//! default: mean 275, sd 75), sends the result to one collector thread and
//! puts itself back on its pool's idle list. The pools are spawned at the start
//! with room for Little's law (rate × 275 ms / 0.8) and never grow, shrink or
//! restart; the dispatcher wakes once a millisecond and sends the jobs due; the
//! collector wakes once a millisecond and drains what has arrived. So what is
//! measured is the least each job costs in this model: a wake-up of a parked
//! thread to hand it the job, a timed sleep and the wake-up at its end, and a
//! channel send of the result.
//!
//! Environment: `HANDOFF_RATES` (default `2000,10000`) tweets/s, each for
//! `HANDOFF_SECS` (default 60) after `HANDOFF_WARMUP` s (default 10);
//! `HANDOFF_DELAY_MS` (`MIN..MAX`, default `50..500`; `0` for no delay, with
//! `HANDOFF_WORKERS` threads per pool, default 2). Reports CPU per tweet of
//! each thread group (`cpu_times`, read as the pipeline reads its own: the
//! collector counts as the aggregator it stands in for), cores, the pools
//! against Little's law and the p99 of dispatch→result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Select, Sender};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tweetflow::{cpu_times, Histogram, ThreadGroup, WorkDelay};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A job: when it was dispatched.
struct Job {
    dispatched: Instant,
}

/// One pool: each worker's inbox, and the idle list the workers put themselves on.
struct Pool {
    inboxes: Vec<Sender<Job>>,
    idle: Receiver<usize>,
}

fn spawn_pool(
    name: &str,
    workers: usize,
    delay: WorkDelay,
    results: &Sender<Duration>,
) -> (Pool, Vec<thread::JoinHandle<()>>) {
    let (idle_tx, idle) = unbounded();
    let mut inboxes = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for slot in 0..workers {
        let (tx, rx) = bounded::<Job>(1);
        inboxes.push(tx);
        let _ = idle_tx.send(slot);
        let idle_tx = idle_tx.clone();
        let results = results.clone();
        let h = thread::Builder::new()
            .name(format!("{name}-{slot}"))
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut rng = SmallRng::from_entropy();
                // Tries once and parks, as the engine's workers do (`recv()`
                // spins and yields first).
                let mut waiting = Select::new_biased();
                waiting.recv(&rx);
                while let Ok(job) = waiting.select().recv(&rx) {
                    let pause = delay.sample(&mut rng);
                    if !pause.is_zero() {
                        thread::sleep(pause);
                    }
                    let _ = results.send(job.dispatched.elapsed());
                    let _ = idle_tx.send(slot);
                }
            })
            .expect("spawning a worker");
        handles.push(h);
    }
    (Pool { inboxes, idle }, handles)
}

fn run(rate: u64, secs: u64, warmup: u64, delay: WorkDelay, fixed_workers: usize) {
    let mean_s = delay.mean().as_secs_f64();
    let little = (rate as f64 * mean_s / 0.8).ceil() as usize;
    let workers = if delay == WorkDelay::Off {
        fixed_workers.max(1)
    } else {
        little + little / 10 + 16
    };
    let (results_tx, results_rx) = bounded::<Duration>(1 << 20);
    let (sentiment, mut handles) = spawn_pool("sentiment", workers, delay, &results_tx);
    let (engagement, more) = spawn_pool("engagement", workers, delay, &results_tx);
    handles.extend(more);
    drop(results_tx);

    let measuring = Arc::new(AtomicBool::new(false));
    let collector = {
        let measuring = Arc::clone(&measuring);
        thread::Builder::new()
            .name("aggregate".into())
            .spawn(move || {
                let hist = Histogram::new();
                loop {
                    let mut gone = false;
                    loop {
                        match results_rx.try_recv() {
                            Ok(d) => {
                                if measuring.load(Ordering::Relaxed) {
                                    hist.record(d.as_micros() as u64);
                                }
                            }
                            Err(crossbeam_channel::TryRecvError::Empty) => break,
                            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                                gone = true;
                                break;
                            }
                        }
                    }
                    if gone {
                        return hist;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            })
            .expect("spawning the collector")
    };

    let stop = Arc::new(AtomicBool::new(false));
    let dispatcher = {
        let stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || {
                let pools = [sentiment, engagement];
                let start = Instant::now();
                let (mut sent, mut waited) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let due = if delay == WorkDelay::Off {
                        sent + 64
                    } else {
                        (start.elapsed().as_secs_f64() * rate as f64) as u64
                    };
                    while sent < due {
                        let now = Instant::now();
                        for p in &pools {
                            // An idle worker; with the delay off, wait for one.
                            let slot = match p.idle.try_recv() {
                                Ok(s) => s,
                                Err(_) => {
                                    waited += 1;
                                    match p.idle.recv() {
                                        Ok(s) => s,
                                        Err(_) => return (sent, waited),
                                    }
                                }
                            };
                            if p.inboxes[slot].send(Job { dispatched: now }).is_err() {
                                return (sent, waited);
                            }
                        }
                        sent += 1;
                    }
                    if delay != WorkDelay::Off {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                (sent, waited)
            })
            .expect("spawning the dispatcher")
    };

    thread::sleep(Duration::from_secs(warmup));
    let cpu0 = cpu_times();
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_times().since(&cpu0);
    let elapsed = t0.elapsed().as_secs_f64();
    measuring.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let (sent, waited) = dispatcher.join().expect("the dispatcher");
    for h in handles {
        let _ = h.join();
    }
    let hist = collector.join().expect("the collector");
    // The tweets of the measured window: the rate's, or with the delay off the
    // results counted in it (two per tweet).
    let tweets = if delay == WorkDelay::Off {
        hist.count() as f64 / 2.0
    } else {
        rate as f64 * elapsed
    };
    let groups = [
        ThreadGroup::Dispatcher,
        ThreadGroup::Workers,
        ThreadGroup::Aggregator,
    ];
    let us = |g: ThreadGroup| cpu.get(g) as f64 / 1e3 / tweets;
    let total: f64 = groups.into_iter().map(us).sum();
    println!(
        "handoff floor, delay {delay}: {rate_s} for {elapsed:.0} s, 2 pools of {workers} threads \
         (Little's law {little}): {total:.1} µs/tweet (dispatcher {:.1}, workers {:.1}, \
         collector {:.1}), {:.2} cores; dispatch→result p50 {:.1} ms, \
         p99 {:.1} ms; {sent} tweets dispatched, {waited} waits for an idle worker",
        us(ThreadGroup::Dispatcher),
        us(ThreadGroup::Workers),
        us(ThreadGroup::Aggregator),
        total * tweets / elapsed / 1e6,
        hist.quantile(0.5).unwrap_or(0) as f64 / 1e3,
        hist.quantile(0.99).unwrap_or(0) as f64 / 1e3,
        rate_s = if delay == WorkDelay::Off {
            format!("{:.0} tweets/s (as fast as it goes)", tweets / elapsed)
        } else {
            format!("{rate} tweets/s")
        },
    );
}

fn main() {
    let rates: Vec<u64> = std::env::var("HANDOFF_RATES")
        .unwrap_or_else(|_| "2000,10000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let secs = env("HANDOFF_SECS", 60u64);
    let warmup = env("HANDOFF_WARMUP", 10u64);
    let delay: WorkDelay = env("HANDOFF_DELAY_MS", WorkDelay::default());
    let workers = env("HANDOFF_WORKERS", 2usize);
    for rate in rates {
        run(rate, secs, warmup, delay, workers);
    }
}
