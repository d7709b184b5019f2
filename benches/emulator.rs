//! `cargo bench --bench emulator`: the emulator's `--rate max` throughput.
//!
//! 1. The generator alone on one thread (events/s, MB/s).
//! 2. Two concurrent clients reading `/tweets/1` and `/tweets/2` from an
//!    emulator at `--rate max` for a few seconds (`EMULATOR_BENCH_SECS`,
//!    default 5): events/s per stream and MB/s. The clients only walk the
//!    chunked framing (they count chunks = events, and bytes), so the figure
//!    is the emulator's, not a JSON parser's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tweetflow::{frame_event, Corpus, Emulator, EmulatorConfig, Rate, TweetGen};

fn generator_alone(secs: f64) {
    let t = Instant::now();
    let corpus = std::sync::Arc::new(Corpus::new(2016));
    println!(
        "corpus of {} users built in {:.1} ms",
        corpus.users(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut generation = TweetGen::with_corpus(corpus, 1);
    let mut payload = Vec::new();
    let mut event = Vec::new();
    let (mut n, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..1_000 {
            generation.next_payload(&mut payload);
            event.clear();
            frame_event(&payload, None, &mut event);
            bytes += event.len() as u64;
            n += 1;
        }
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "generator alone (1 thread): {:>9.0} events/s  {:>6.1} MB/s  mean event {:.0} B",
        n as f64 / el,
        bytes as f64 / el / 1e6,
        bytes as f64 / n as f64
    );
}

/// Reads a chunked SSE response for `secs`, returning (events, body bytes).
fn read_stream(addr: SocketAddr, path: &str, secs: f64) -> (u64, u64) {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect: {e}");
            return (0, 0);
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, 0);
    }
    let mut buf = vec![0u8; 256 * 1024];
    // State: skipping the response head, then chunk size lines and chunk data.
    let mut head_done = false;
    let mut head_tail = [0u8; 4];
    let mut size_line: Vec<u8> = Vec::new();
    let mut remaining: usize = 0; // data + CRLF still to skip
    let (mut events, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut i = 0;
        while i < n {
            if !head_done {
                head_tail.rotate_left(1);
                head_tail[3] = buf[i];
                i += 1;
                head_done = &head_tail == b"\r\n\r\n";
            } else if remaining > 0 {
                let take = remaining.min(n - i);
                remaining -= take;
                i += take;
            } else {
                let b = buf[i];
                i += 1;
                if b == b'\n' {
                    let line = std::str::from_utf8(&size_line).unwrap_or("").trim();
                    let size = usize::from_str_radix(line, 16).unwrap_or(0);
                    size_line.clear();
                    if size == 0 {
                        return (events, bytes);
                    }
                    events += 1;
                    bytes += size as u64;
                    remaining = size + 2;
                } else {
                    size_line.push(b);
                }
            }
        }
    }
    (events, bytes)
}

fn main() {
    let secs: f64 = std::env::var("EMULATOR_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    println!("emulator bench ({secs} s per phase, {} CPUs)", num_cpus());
    generator_alone(secs.min(3.0));

    let emu = match Emulator::start(EmulatorConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rate: Rate::Max,
        ..EmulatorConfig::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the emulator: {e}");
            std::process::exit(1);
        }
    };
    let addr = emu.addr();
    let clients: Vec<_> = ["/tweets/1", "/tweets/2"]
        .into_iter()
        .map(|p| std::thread::spawn(move || (p, read_stream(addr, p, secs))))
        .collect();
    let mut total_bytes = 0u64;
    let mut min_rate = f64::MAX;
    for c in clients {
        let Ok((path, (events, bytes))) = c.join() else {
            eprintln!("a client thread panicked");
            std::process::exit(1);
        };
        let rate = events as f64 / secs;
        min_rate = min_rate.min(rate);
        total_bytes += bytes;
        println!(
            "--rate max, 2 concurrent streams: {path}: {rate:>9.0} events/s  {:>6.1} MB/s",
            bytes as f64 / secs / 1e6
        );
    }
    println!(
        "--rate max, 2 concurrent streams: slowest stream {min_rate:.0} events/s, total {:.1} MB/s (target: >= 30000 events/s per stream)",
        total_bytes as f64 / secs / 1e6
    );
    emu.stop();
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
