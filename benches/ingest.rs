//! Ingest benchmarks: decoding (tweets/s and MB/s per thread) beside
//! `serde_json::from_str::<Value>` on the same bytes, and the SSE parser's MB/s.
//!
//! Throughput "elements" are events (one tweet event = one element, also when
//! it is a retweet that yields two tweets). Run: `cargo bench --bench ingest`.

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tweetflow::SseParser;
use tweetflow::{decode, Decoded};
use tweetflow::{frame_event, TweetGen, DEFAULT_SEED};

/// The datas of 1,000 tweet events of the emulator's stream 1 (default seed;
/// one in three a retweet carrying its original).
fn datas() -> Vec<String> {
    let mut generator = TweetGen::new(DEFAULT_SEED);
    let mut buf = Vec::new();
    (0..1000)
        .map(|_| {
            generator.next_payload(&mut buf);
            String::from_utf8(buf.clone()).expect("the generator writes UTF-8")
        })
        .collect()
}

fn decode_all(datas: &[String]) -> usize {
    let mut tweets = 0usize;
    for d in datas {
        if let Decoded::Tweets(t) = decode(black_box(d)) {
            tweets += 1 + usize::from(t.original.is_some());
            black_box(&t);
        }
    }
    tweets
}

fn value_all(datas: &[String]) -> usize {
    let mut ok = 0usize;
    for d in datas {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(black_box(d)) {
            ok += 1;
            black_box(&v);
        }
    }
    ok
}

/// Interleaved A/B: decode and `Value` alternate over the same corpus, so a
/// machine shared with other work loads both alike; the ratio is the median
/// of the per-round ratios, the throughputs come from each side's best round.
fn ab_report(datas: &[String], tweets: usize) {
    const ROUNDS: usize = 41;
    let bytes: usize = datas.iter().map(String::len).sum();
    let (mut best_dec, mut best_val) = (f64::MAX, f64::MAX);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        black_box(decode_all(datas));
        let dec = t.elapsed().as_secs_f64();
        let t = Instant::now();
        black_box(value_all(datas));
        let val = t.elapsed().as_secs_f64();
        best_dec = best_dec.min(dec);
        best_val = best_val.min(val);
        ratios.push(val / dec);
    }
    ratios.sort_by(f64::total_cmp);
    let n = datas.len() as f64;
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "A/B interleaved, {ROUNDS} rounds, one thread, best round:\n  \
         tweetflow decode: {:.0} events/s, {:.0} tweets/s (incl. originals), {:.0} MB/s\n  \
         serde_json Value: {:.0} events/s, {:.0} MB/s\n  \
         speed-up (median of rounds): {:.2}x (min {:.2}x, max {:.2}x)",
        n / best_dec,
        tweets as f64 / best_dec,
        mb / best_dec,
        n / best_val,
        mb / best_val,
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1],
    );
}

fn bench_decode(c: &mut Criterion) {
    let datas = datas();
    let bytes: usize = datas.iter().map(String::len).sum();
    let n = datas.len() as u64;
    let tweets = decode_all(&datas);
    eprintln!(
        "decode corpus: {n} events, {:.0} bytes/event, {tweets} tweets incl. extracted originals",
        bytes as f64 / n as f64
    );
    ab_report(&datas, tweets);
    for (name, thr) in [
        ("events", Throughput::Elements(n)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(thr);
        g.bench_function("tweetflow_decode", |b| b.iter(|| decode_all(&datas)));
        g.bench_function("serde_json_value", |b| b.iter(|| value_all(&datas)));
        g.finish();
    }
}

fn bench_sse(c: &mut Criterion) {
    let mut stream = Vec::new();
    for (i, d) in datas().iter().enumerate() {
        frame_event(d.as_bytes(), Some(i as u64 + 1), &mut stream);
    }
    let mut g = c.benchmark_group("sse_parse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for chunk in [1460usize, 16 * 1024, 64 * 1024] {
        g.bench_function(format!("chunks_of_{chunk}"), |b| {
            b.iter(|| {
                let mut p = SseParser::default();
                let mut out = tweetflow::SseEvents::new();
                let mut n = 0;
                for c in stream.chunks(chunk) {
                    p.feed_into(black_box(c), &mut out);
                    n += out.len();
                    out.clear();
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_sse);
criterion_main!(benches);
