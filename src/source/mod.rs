//! Ingest: SSE parsing, tweet decoding, stream readers, lexicon fetch (issue 3).
//!
//! - [`sse`]: a pure, incremental WHATWG event-stream parser with a bound on
//!   one event's size;
//! - [`decode`]: one event's data → kill | tweet (+ extracted original) | malformed;
//! - [`spawn_reader`]: one blocking reader thread per stream, reconnecting with
//!   capped exponential backoff and jitter;
//! - [`fetch_lexicon`]: the sentiment lexicon from `<server>/emotion_values`.

pub mod decode;
pub mod sse;
