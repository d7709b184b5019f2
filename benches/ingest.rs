//! Ingest benchmarks: decoding (tweets/s and MB/s per thread) beside
//! `serde_json::from_str::<Value>` on the same bytes, and the SSE parser's MB/s.
//!
//! Throughput "elements" are events (one tweet event = one element, also when
//! it is a retweet that yields two tweets). Run: `cargo bench --bench ingest`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tweetflow::emulator::{frame_event, TweetGen, DEFAULT_SEED};
use tweetflow::source::decode::{decode, Decoded};
use tweetflow::source::sse::SseParser;

/// The datas of 1,000 tweet events of the emulator's stream 1 (default seed;
/// one in three a retweet carrying its original).
fn datas() -> Vec<String> {
    let mut gen = TweetGen::new(DEFAULT_SEED);
    let mut buf = Vec::new();
    (0..1000)
        .map(|_| {
            gen.next_payload(&mut buf);
            String::from_utf8(buf.clone()).expect("the generator writes UTF-8")
        })
        .collect()
}

fn bench_decode(c: &mut Criterion) {
    let datas = datas();
    let bytes: usize = datas.iter().map(String::len).sum();
    let n = datas.len() as u64;
    let tweets: usize = datas
        .iter()
        .map(|d| match decode(d) {
            Decoded::Tweets(t) => 1 + usize::from(t.original.is_some()),
            _ => 0,
        })
        .sum();
    eprintln!(
        "decode corpus: {n} events, {:.0} bytes/event, {tweets} tweets incl. extracted originals",
        bytes as f64 / n as f64
    );
    for (name, thr) in [
        ("tweets", Throughput::Elements(n)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(thr);
        g.bench_function("tweetflow_decode", |b| {
            b.iter(|| {
                let mut tweets = 0usize;
                for d in &datas {
                    if let Decoded::Tweets(t) = decode(black_box(d)) {
                        tweets += 1 + usize::from(t.original.is_some());
                        black_box(&t);
                    }
                }
                tweets
            })
        });
        g.bench_function("serde_json_value", |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for d in &datas {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(black_box(d)) {
                        ok += 1;
                        black_box(&v);
                    }
                }
                ok
            })
        });
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
                let mut out = Vec::new();
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
