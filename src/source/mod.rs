//! Ingest: SSE parsing, stream readers, tweet decoding, lexicon fetch (issue 3).
