//! Names and encodings shared by `ingest` and `run --jetstream` (pure).
//!
//! - The data stream `<stream>` holds one message per SSE event on `<stream>.1` and
//!   `<stream>.2` (the event's data, byte for byte).
//! - The meta stream `<stream>_meta` keeps one message per subject
//!   (`max_msgs_per_subject = 1`): `<stream>_meta.lexicon` (the `/emotion_values` JSON),
//!   `<stream>_meta.offset` (the sequence offset, decimal) and
//!   `<stream>_meta.sketch.<instance>` (an instance's hashtag sketch, see
//!   [`crate::stats::sketch::CountMinSketch::to_bytes`]).
//!
//! `ingest_seq` of a tweet read from the stream is `offset + 2·stream_seq + k`, `k = 0`
//! for a retweet's extracted original and the plain tweet, `k = 1` for the retweet
//! itself: one global order over every instance, two numbers per message.

/// The stream's default name (`--stream`).
pub(crate) const DEFAULT_STREAM: &str = "tweets";
/// The durable consumer's default name (`--consumer`).
pub(crate) const DEFAULT_CONSUMER: &str = "tweetflow";

/// The subject of stream `n` (1 or 2) of the data stream `stream`.
pub(crate) fn data_subject(stream: &str, n: u8) -> String {
    format!("{stream}.{n}")
}

/// Which SSE stream (1 or 2) a data subject belongs to; `None` for any other subject.
pub(crate) fn stream_of_subject(stream: &str, subject: &str) -> Option<u8> {
    match subject.strip_prefix(stream)?.strip_prefix('.')? {
        "1" => Some(1),
        "2" => Some(2),
        _ => None,
    }
}

/// The meta stream's name.
pub(crate) fn meta_stream(stream: &str) -> String {
    format!("{stream}_meta")
}

/// The meta stream's subject of `key` (`lexicon`, `offset`, `sketch.<instance>`).
pub(crate) fn meta_subject(stream: &str, key: &str) -> String {
    format!("{}.{key}", meta_stream(stream))
}

/// A stream or consumer name JetStream accepts: 1 to 200 of `A-Z a-z 0-9 - _`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An instance's name as a subject token: `[A-Za-z0-9_-]` kept, anything else `_`.
pub(crate) fn instance_token(name: &str) -> String {
    let t: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".to_owned()
    } else {
        t
    }
}

/// The `Nats-Msg-Id` of an event of stream `n`: its SSE id when the server sends ids
/// (`<n>:id:<id>`), otherwise a digest of its data (`<n>:d:<fnv64>:<len>`). A replay
/// after a reconnect or a restart carries the same id, and JetStream drops it within
/// the stream's duplicate window.
pub(crate) fn msg_id(n: u8, event_id: &str, data: &str) -> String {
    if !event_id.is_empty() && event_id.len() <= 128 {
        return format!("{n}:id:{event_id}");
    }
    format!("{n}:d:{:016x}:{}", fnv1a64(data.as_bytes()), data.len())
}

/// FNV-1a, 64 bits: stable across versions and platforms (unlike `DefaultHasher`).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The `ingest_seq` of record `k` (0 or 1) of the message at `stream_seq`.
pub(crate) fn ingest_seq(offset: u64, stream_seq: u64, k: u64) -> u64 {
    offset
        .saturating_add(stream_seq.saturating_mul(2))
        .saturating_add(k.min(1))
}

/// The message (stream sequence) and the record (`k`) an `ingest_seq` came from; `None`
/// below the offset.
pub(crate) fn message_of(offset: u64, seq: u64) -> Option<(u64, u64)> {
    let d = seq.checked_sub(offset)?;
    Some((d / 2, d % 2))
}

/// The sequence offset as stored: decimal text.
pub(crate) fn encode_offset(offset: u64) -> Vec<u8> {
    offset.to_string().into_bytes()
}

/// Reads a stored offset back.
pub(crate) fn decode_offset(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_streams() {
        assert_eq!(data_subject("tweets", 2), "tweets.2");
        assert_eq!(stream_of_subject("tweets", "tweets.1"), Some(1));
        assert_eq!(stream_of_subject("tweets", "tweets.2"), Some(2));
        assert_eq!(stream_of_subject("tweets", "tweets.3"), None);
        assert_eq!(stream_of_subject("tweets", "tweetsx.1"), None);
        assert_eq!(meta_subject("t", "lexicon"), "t_meta.lexicon");
        assert!(valid_name("tweets-2_a"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(""));
        assert_eq!(instance_token("host.a:1"), "host_a_1");
    }

    #[test]
    fn ids_from_event_ids_or_data() {
        assert_eq!(msg_id(1, "42", "x"), "1:id:42");
        let a = msg_id(2, "", "{\"a\":1}");
        assert_eq!(a, msg_id(2, "", "{\"a\":1}"));
        assert_ne!(a, msg_id(1, "", "{\"a\":1}"));
        assert_ne!(a, msg_id(2, "", "{\"a\":2}"));
        assert!(a.starts_with("2:d:"));
        // FNV-1a 64 of "a", a published test vector.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn seqs_map_back_to_messages() {
        let off = 1_000_000;
        for (s, k) in [(1, 0), (1, 1), (7, 0), (7, 1)] {
            assert_eq!(message_of(off, ingest_seq(off, s, k)), Some((s, k)));
        }
        assert!(ingest_seq(off, 2, 0) > ingest_seq(off, 1, 1));
        assert_eq!(message_of(off, off - 1), None);
        assert_eq!(decode_offset(&encode_offset(off)), Some(off));
        assert_eq!(decode_offset(b"x"), None);
    }
}
