//! The two clocks of an event: the virtual 2016 clock inside the tweet and
//! the server's real clock beside it.
//!
//! A tweet's `created_at`, `timestamp_ms` and snowflake `id` come from the
//! virtual clock, a pure function of the event index (event `N` of a stream is
//! stamped about `N × MS_PER_EVENT` ms after [`BASE_TIMESTAMP_MS`]), so they
//! are reproducible and increase along a stream whatever the send rate. Only
//! `unix_timestamp_100us`, outside the tweet, reads the real clock, as on the
//! real server.

/// `timestamp_ms` of event 0: Mon Apr 18 19:30:47.658 UTC 2016.
pub(super) const BASE_TIMESTAMP_MS: u64 = 1_461_007_847_658;
/// Virtual time between two events of a stream in `timestamp_ms` (about the
/// pace of the 2016 sample stream).
pub(super) const MS_PER_EVENT: u64 = 20;
/// Twitter's snowflake epoch.
pub(super) const TWEPOCH_MS: u64 = 1_288_834_974_657;

/// A Twitter snowflake id: milliseconds since [`TWEPOCH_MS`], a 10-bit worker
/// and a 12-bit sequence number (`ms` must not be before the epoch).
pub(super) fn snowflake(ms: u64, worker: u64, seq: u64) -> u64 {
    ((ms - TWEPOCH_MS) << 22) | ((worker & 0x3ff) << 12) | (seq & 0xfff)
}

/// The current Unix time in units of 100 µs (the server's `unix_timestamp_100us`).
pub(crate) fn unix_100us() -> u64 {
    crate::model::unix_micros() / 100
}
