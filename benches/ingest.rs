//! Ingest benchmarks: decoding (tweets/s and MB/s per thread) beside
//! `serde_json::from_str::<Value>` on the same bytes, and the SSE parser's MB/s.
//!
//! Run: `cargo bench --bench ingest`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tweetflow::source::decode::{decode, Decoded};
use tweetflow::source::fixture;
use tweetflow::source::sse::SseParser;

/// Event datas shaped like the emulator's.
fn datas() -> Vec<String> {
    fixture::sample_datas(600)
}

fn bench_decode(c: &mut Criterion) {
    let datas = datas();
    let bytes: usize = datas.iter().map(String::len).sum();
    let n = datas.len() as u64;
    eprintln!(
        "decode corpus: {} events, {:.0} bytes/event",
        n,
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
    let stream: Vec<u8> = datas()
        .iter()
        .map(|d| fixture::framed(d))
        .collect::<String>()
        .into_bytes();
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
