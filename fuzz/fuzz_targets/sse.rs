//! SSE parser under arbitrary bytes and arbitrary chunking.
//!
//! Input layout: byte 0 picks the event bound (1..=256 bytes, so the
//! oversized path is exercised often), byte 1 seeds the chunk sizes, the rest
//! is the stream. Checks: no panic; the events, last event id, retry and
//! oversized count are the same whole and chunked; the buffered bytes never
//! exceed twice the bound (plus one line's slack for the id buffer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::{SseEvents, SseParser};

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let max = usize::from(input[0]) + 1;
    let mut seed = u32::from(input[1]) | 1;
    let stream = &input[2..];

    let mut whole = SseParser::new(max);
    let expected = whole.feed(stream);

    let mut chunked = SseParser::new(max);
    let mut got = Vec::new();
    let mut reused = SseEvents::new();
    let mut rest = stream;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 9).min(rest.len());
        chunked.feed_into(&rest[..n], &mut reused);
        got.extend_from_slice(reused.as_slice());
        reused.clear();
        rest = &rest[n..];
        assert!(
            chunked.buffered_bytes() <= 3 * max,
            "buffered {} with bound {max}",
            chunked.buffered_bytes()
        );
    }
    assert_eq!(got, expected);
    assert_eq!(chunked.last_event_id(), whole.last_event_id());
    assert_eq!(chunked.retry_ms(), whole.retry_ms());
    assert_eq!(chunked.oversized(), whole.oversized());
    for e in &expected {
        assert!(e.data.len() <= max);
    }
});
