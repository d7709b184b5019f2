//! The spool's binary frames, pure (no I/O): a [`Record`] as a length-prefixed,
//! checksummed frame, and back, without JSON.
//!
//! A spool file starts with [`FILE_HEADER`] (magic and format version, so the format
//! can evolve), then holds frames back to back. A frame is
//!
//! ```text
//! magic   4 bytes  FRAME_MAGIC
//! len     u32 LE   payload length (at most MAX_PAYLOAD)
//! crc     u32 LE   CRC-32 (IEEE) of the len bytes and the payload
//! payload len bytes
//! ```
//!
//! and the payload (format version 1), little-endian throughout, is the record as
//! received: `seq` u64 first (so the highest waiting seq is read without decoding the
//! rest), then stream u8, received_unix_us u64, id i64, favorite_count i64,
//! retweet_count i64, retweeted_status_id, sentiment, engagement (each an option: a
//! tag byte 0/1, then the value), text, lang, created_at, hashtags (u32 count then
//! strings), raw, then the user: id, followers_count, screen_name, name,
//! friends_count, statuses_count, verified, lang, created_at, raw. A string is a u32
//! length and its UTF-8 bytes: `raw` is the event's JSON text byte for byte.
//!
//! Invariants: [`next_frame`] hands out a payload only when its magic, length and
//! checksum hold, and says how many bytes to skip otherwise (to the next place a
//! whole valid frame starts, or the end): a torn or corrupt frame is never handed
//! out half. [`decode`] refuses a payload that does not hold exactly one record
//! (short, trailing bytes, bad UTF-8, bad tag) with a [`FrameError`]; it never
//! panics on any input.

use std::sync::Arc;

use crate::budget::MemoryPermit;
use crate::model::{Placed, Record, SharedStr, SharedStrs, Tweet, User};

/// The first bytes of a spool file: magic, then the format version (u16 LE).
pub(crate) const FILE_HEADER: &[u8; 16] = b"TWEETFLOWSPOOL\x01\x00";
/// The bytes before the version in [`FILE_HEADER`].
pub(crate) const FILE_MAGIC: &[u8; 14] = b"TWEETFLOWSPOOL";
/// The format version this build writes and reads.
pub(crate) const VERSION: u16 = 1;
/// The first bytes of every frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = [0xF7, b'T', b'F', b'R'];
/// Bytes of a frame's header (magic, length, checksum).
pub(crate) const FRAME_HEADER: usize = 12;
/// The largest payload a frame may claim (a tweet is a few KiB; 64 MiB leaves room
/// and keeps a flipped length from asking for gigabytes).
pub(crate) const MAX_PAYLOAD: u32 = 64 << 20;

/// Why a payload is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// It ended before the record did.
    #[error("payload ends early (at byte {0})")]
    Short(usize),
    /// A string is not UTF-8.
    #[error("a string at byte {0} is not UTF-8")]
    Utf8(usize),
    /// An option's tag is neither 0 nor 1.
    #[error("bad option tag {tag} at byte {at}")]
    Tag {
        /// The tag found.
        tag: u8,
        /// Where.
        at: usize,
    },
    /// Bytes are left after the record.
    #[error("{0} bytes after the record")]
    Trailing(usize),
}

/// What [`next_frame`] found at the start of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// A whole valid frame: its payload is `buf[FRAME_HEADER..len]`.
    Frame {
        /// The whole frame's length, header included.
        len: usize,
    },
    /// The input ends inside what may be a valid frame; `need` bytes would hold it.
    Incomplete {
        /// The length the frame claims, header included (`FRAME_HEADER` when even
        /// the header is incomplete).
        need: usize,
    },
    /// Not a valid frame here: skip `skip` bytes (to where a whole valid frame
    /// starts, or to the end of the input).
    Corrupt {
        /// Bytes to skip, at least 1.
        skip: usize,
    },
}

fn crc(len: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// Checks the frame at the start of `buf` alone (no resync).
fn check(buf: &[u8]) -> Next {
    if buf.len() < FRAME_HEADER {
        if buf.iter().zip(FRAME_MAGIC).all(|(a, b)| *a == b) {
            return Next::Incomplete { need: FRAME_HEADER };
        }
        return Next::Corrupt { skip: 1 };
    }
    let (Some(len), Some(sum)) = (u32_at(buf, 4), u32_at(buf, 8)) else {
        return Next::Corrupt { skip: 1 };
    };
    if buf.get(..4) != Some(&FRAME_MAGIC[..]) || len > MAX_PAYLOAD {
        return Next::Corrupt { skip: 1 };
    }
    let total = FRAME_HEADER + len as usize;
    let (Some(len_bytes), Some(payload)) = (buf.get(4..8), buf.get(FRAME_HEADER..total)) else {
        return Next::Incomplete { need: total };
    };
    if crc(len_bytes, payload) == sum {
        Next::Frame { len: total }
    } else {
        Next::Corrupt { skip: 1 }
    }
}

/// What is at the start of `buf`: a valid frame, the start of one, or bytes to
/// skip. A skip runs to the next offset where a whole valid frame starts (or could
/// start but the input ends), else to the end of `buf`.
pub(crate) fn next_frame(buf: &[u8]) -> Next {
    match check(buf) {
        Next::Corrupt { .. } => {}
        other => return other,
    }
    let mut at = 1;
    while let Some(rest) = buf.get(at..) {
        let Some(i) = find_magic(rest) else {
            // No magic at all: skip all but a tail that may be a magic's start.
            let keep = rest.len().min(FRAME_MAGIC.len() - 1);
            let tail_start = buf.len() - keep;
            let tail = buf.get(tail_start..).unwrap_or_default();
            let partial = (0..tail.len()).find(|&k| {
                tail.get(k..)
                    .is_some_and(|t| t.iter().zip(FRAME_MAGIC).all(|(a, b)| *a == b))
            });
            let skip = partial.map_or(buf.len(), |k| tail_start + k);
            return Next::Corrupt { skip: skip.max(1) };
        };
        let cand = at + i;
        match buf.get(cand..).map(check) {
            Some(Next::Frame { .. } | Next::Incomplete { .. }) => {
                return Next::Corrupt { skip: cand };
            }
            _ => at = cand + 1,
        }
    }
    Next::Corrupt {
        skip: buf.len().max(1),
    }
}

fn find_magic(b: &[u8]) -> Option<usize> {
    b.windows(FRAME_MAGIC.len()).position(|w| w == FRAME_MAGIC)
}

/// The `seq` of a valid frame (its payload's first 8 bytes).
pub(crate) fn frame_seq(frame: &[u8]) -> Option<u64> {
    let s: [u8; 8] = frame.get(FRAME_HEADER..FRAME_HEADER + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

struct Enc<'a>(&'a mut Vec<u8>);

impl Enc<'_> {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.0.push(0),
            Some(x) => {
                self.0.push(1);
                f(self, x);
            }
        }
    }
    fn opt_str(&mut self, v: &Option<SharedStr>) {
        self.opt(v.as_deref(), Self::str);
    }
}

/// Appends `r` to `out` as one frame. A string longer than 4 GiB cannot occur (the
/// reader bounds an event far below), and a frame beyond [`MAX_PAYLOAD`] is refused
/// by the reader, so the writer refuses it first: `false`, nothing appended.
pub(crate) fn encode(r: &Record, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&[0; 8]);
    let t = &*r.tweet;
    let u = &t.user;
    let mut e = Enc(out);
    e.u64(t.seq);
    e.0.push(t.stream);
    e.u64(t.received_unix_us);
    e.i64(t.id);
    e.i64(t.favorite_count);
    e.i64(t.retweet_count);
    e.opt(t.retweeted_status_id, Enc::i64);
    e.opt(r.sentiment, |e, v| e.u64(v.to_bits()));
    e.opt(r.engagement, |e, v| e.u64(v.to_bits()));
    e.str(&t.text);
    e.opt_str(&t.lang);
    e.opt_str(&t.created_at);
    e.0.extend_from_slice(&(t.hashtags.len() as u32).to_le_bytes());
    for h in &t.hashtags {
        e.str(h);
    }
    e.str(&t.raw);
    e.i64(u.id);
    e.i64(u.followers_count);
    e.opt_str(&u.screen_name);
    e.opt_str(&u.name);
    e.opt(u.friends_count, Enc::i64);
    e.opt(u.statuses_count, Enc::i64);
    e.opt(u.verified, |e, v| e.0.push(u8::from(v)));
    e.opt_str(&u.lang);
    e.opt_str(&u.created_at);
    e.str(&u.raw);
    let len = out.len() - start - FRAME_HEADER;
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return false;
    };
    if len32 > MAX_PAYLOAD {
        out.truncate(start);
        return false;
    }
    let len_bytes = len32.to_le_bytes();
    let sum = crc(
        &len_bytes,
        out.get(start + FRAME_HEADER..).unwrap_or_default(),
    );
    if let Some(h) = out.get_mut(start + 4..start + FRAME_HEADER) {
        h[..4].copy_from_slice(&len_bytes);
        h[4..].copy_from_slice(&sum.to_le_bytes());
    }
    true
}

struct Dec<'a> {
    b: &'a [u8],
    i: usize,
    /// Every string of the record, one after the other in one side buffer
    /// (no base): one buffer shared by the record's [`SharedStr`]s.
    strs: SharedStrs<'static>,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let s = self
            .i
            .checked_add(n)
            .and_then(|end| self.b.get(self.i..end))
            .ok_or(FrameError::Short(self.i))?;
        self.i += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let at = self.i;
        self.take(N)?.try_into().map_err(|_| FrameError::Short(at))
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.arr::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, FrameError> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// A string, placed in `strs`.
    fn str(&mut self) -> Result<Placed, FrameError> {
        let n = self.u32()? as usize;
        let at = self.i;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| FrameError::Utf8(at))?;
        Ok(self.strs.place(s))
    }
    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, FrameError>,
    ) -> Result<Option<T>, FrameError> {
        let at = self.i;
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            tag => Err(FrameError::Tag { tag, at }),
        }
    }
    fn bool(&mut self) -> Result<bool, FrameError> {
        let at = self.i;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(FrameError::Tag { tag, at }),
        }
    }
}

/// The record a frame's payload holds.
pub(crate) fn decode(payload: &[u8]) -> Result<Record, FrameError> {
    let mut d = Dec {
        b: payload,
        i: 0,
        strs: SharedStrs::over(""),
    };
    let seq = d.u64()?;
    let stream = d.u8()?;
    let received_unix_us = d.u64()?;
    let id = d.i64()?;
    let favorite_count = d.i64()?;
    let retweet_count = d.i64()?;
    let retweeted_status_id = d.opt(Dec::i64)?;
    let sentiment = d.opt(|d| d.u64().map(f64::from_bits))?;
    let engagement = d.opt(|d| d.u64().map(f64::from_bits))?;
    let text = d.str()?;
    let lang = d.opt(Dec::str)?;
    let created_at = d.opt(Dec::str)?;
    let n = d.u32()? as usize;
    // Each string takes at least its 4-byte length: a count beyond that is short.
    if n > payload.len().saturating_sub(d.i) / 4 {
        return Err(FrameError::Short(d.i));
    }
    let mut hashtags = Vec::with_capacity(n);
    for _ in 0..n {
        hashtags.push(d.str()?);
    }
    let raw = d.str()?;
    let user_id = d.i64()?;
    let followers_count = d.i64()?;
    let screen_name = d.opt(Dec::str)?;
    let name = d.opt(Dec::str)?;
    let friends_count = d.opt(Dec::i64)?;
    let statuses_count = d.opt(Dec::i64)?;
    let verified = d.opt(Dec::bool)?;
    let user_lang = d.opt(Dec::str)?;
    let user_created_at = d.opt(Dec::str)?;
    let user_raw = d.str()?;
    if d.i != payload.len() {
        return Err(FrameError::Trailing(payload.len() - d.i));
    }
    let buffers = d.strs.finish();
    let get = |p: Placed| p.get(&buffers);
    let opt = |p: Option<Placed>| p.map(get);
    let user = User {
        id: user_id,
        followers_count,
        screen_name: opt(screen_name),
        name: opt(name),
        friends_count,
        statuses_count,
        verified,
        lang: opt(user_lang),
        created_at: opt(user_created_at),
        raw: get(user_raw),
    };
    Ok(Record {
        tweet: Arc::new(Tweet {
            seq,
            stream,
            received_unix_us,
            id,
            text: get(text),
            lang: opt(lang),
            created_at: opt(created_at),
            favorite_count,
            retweet_count,
            retweeted_status_id,
            hashtags: hashtags.into_iter().map(get).collect(),
            user,
            raw: get(raw),
            memory: MemoryPermit::default(),
        }),
        sentiment,
        engagement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of a frame that [`next_frame`] called valid.
    fn payload(frame: &[u8]) -> &[u8] {
        frame.get(FRAME_HEADER..).unwrap_or_default()
    }

    fn full(seq: u64) -> Record {
        Record {
            tweet: Arc::new(Tweet {
                stream: 2,
                received_unix_us: 1_700_000_000_123_456,
                lang: Some("en".into()),
                created_at: Some("Mon Apr 18 19:30:47 +0000 2016".into()),
                favorite_count: -3,
                retweet_count: i64::MAX,
                retweeted_status_id: Some(i64::MIN),
                hashtags: vec!["a".into(), "".into(), "ünï".into()],
                raw: r#"{"id":1,"text":"line\nbreak \"q\" é","user":{"id":9}}"#.into(),
                user: User {
                    screen_name: Some("s".into()),
                    name: Some("N é".into()),
                    friends_count: Some(0),
                    statuses_count: None,
                    verified: Some(true),
                    lang: None,
                    created_at: Some("x".into()),
                    raw: r#"{"id":9}"#.into(),
                    ..User::minimal(9, 12)
                },
                ..Tweet::minimal(seq, "text\n\u{0}é", User::minimal(0, 0))
            }),
            sentiment: Some(-0.23076923076923078),
            engagement: None,
        }
    }

    fn one(r: &Record) -> Vec<u8> {
        let mut b = Vec::new();
        assert!(encode(r, &mut b));
        b
    }

    #[test]
    fn a_record_round_trips_field_for_field_and_bit_for_bit() {
        let r = full(42);
        let b = one(&r);
        assert_eq!(next_frame(&b), Next::Frame { len: b.len() });
        assert_eq!(frame_seq(&b), Some(42));
        let back = decode(payload(&b)).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            back.sentiment.map(f64::to_bits),
            Some((-0.23076923076923078f64).to_bits())
        );
        // The raw event is in the frame byte for byte.
        let raw = r.tweet.raw.as_bytes();
        assert!(b.windows(raw.len()).any(|w| w == raw));
        let m = Record {
            tweet: Arc::new(Tweet::minimal(u64::MAX, "", User::minimal(1, 0))),
            sentiment: None,
            engagement: Some(f64::NAN),
        };
        let back = decode(payload(&one(&m))).unwrap();
        assert_eq!(back.tweet, m.tweet);
        assert!(back.engagement.is_some_and(f64::is_nan));
    }

    /// Two frames written from the layout in the module docs by another program
    /// (a Python script: struct and zlib.crc32), not by `encode`: the fuzz seed.
    const WRITTEN_ELSEWHERE: &[u8] = include_bytes!("../../../fuzz/seeds/spool_frames/two-frames");

    #[test]
    fn frames_written_elsewhere_from_the_layout_decode() {
        let Next::Frame { len } = next_frame(WRITTEN_ELSEWHERE) else {
            panic!("{:?}", next_frame(WRITTEN_ELSEWHERE));
        };
        let a = decode(payload(&WRITTEN_ELSEWHERE[..len])).unwrap();
        let rest = &WRITTEN_ELSEWHERE[len..];
        assert_eq!(next_frame(rest), Next::Frame { len: rest.len() });
        let b = decode(payload(rest)).unwrap();
        let t = &a.tweet;
        assert_eq!((t.seq, t.stream, t.id), (1, 1, 7001));
        assert_eq!(t.received_unix_us, 1_764_755_000_000_001);
        assert_eq!((t.favorite_count, t.retweet_count), (1, 2));
        assert_eq!(t.text, "hello é");
        assert_eq!(t.raw, r#"{"id":7001,"text":"hello é","user":{"id":9}}"#);
        assert_eq!(t.lang.as_deref(), Some("en"));
        assert_eq!(t.hashtags, vec!["rust"]);
        assert_eq!((a.sentiment, a.engagement), (Some(0.5), None));
        assert_eq!((t.user.id, t.user.followers_count), (9, 10));
        assert_eq!(t.user.screen_name.as_deref(), Some("a"));
        assert_eq!(
            (t.user.friends_count, t.user.verified),
            (Some(3), Some(true))
        );
        assert_eq!(t.user.raw, r#"{"id":9}"#);
        assert_eq!((b.tweet.seq, b.tweet.text.as_str()), (2, "two\nlines"));
    }

    #[test]
    fn a_torn_tail_is_incomplete_never_a_frame() {
        let b = one(&full(1));
        for cut in 0..b.len() {
            match next_frame(&b[..cut]) {
                Next::Incomplete { need } => {
                    assert!(need == FRAME_HEADER || need == b.len(), "cut {cut}")
                }
                Next::Corrupt { .. } if cut == 0 => {}
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_bit_flip_is_caught_and_the_next_frame_found() {
        let a = one(&full(1));
        let b = one(&full(2));
        let both = [a.clone(), b.clone()].concat();
        for byte in 0..a.len() {
            for bit in 0..8 {
                let mut x = both.clone();
                x[byte] ^= 1 << bit;
                match next_frame(&x) {
                    Next::Corrupt { skip } => {
                        assert_eq!(skip, a.len(), "byte {byte} bit {bit}");
                        assert_eq!(next_frame(&x[skip..]), Next::Frame { len: b.len() });
                        assert_eq!(decode(payload(&x[skip..])).unwrap().tweet.seq, 2);
                    }
                    // A flipped length that claims more than the input holds.
                    Next::Incomplete { need } => {
                        assert!((4..8).contains(&byte) && need > x.len(), "{byte}")
                    }
                    Next::Frame { .. } => panic!("byte {byte} bit {bit} went unseen"),
                }
            }
        }
    }

    #[test]
    fn garbage_is_skipped_to_the_end_or_to_a_magic_start() {
        assert_eq!(next_frame(b"hello world"), Next::Corrupt { skip: 11 });
        let mut x = b"junk".to_vec();
        x.extend_from_slice(&FRAME_MAGIC[..2]);
        assert_eq!(next_frame(&x), Next::Corrupt { skip: 4 });
        assert_eq!(next_frame(&FRAME_MAGIC[..3]), Next::Incomplete { need: 12 });
    }

    #[test]
    fn a_payload_that_is_not_one_record_is_refused() {
        let b = one(&full(7));
        let p = payload(&b);
        for cut in 0..p.len() {
            assert!(decode(&p[..cut]).is_err(), "cut {cut}");
        }
        let mut long = p.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(FrameError::Trailing(1)));
        // The retweeted_status_id tag (after seq, stream, received, id, two counts).
        let mut bad = p.to_vec();
        bad[8 + 1 + 8 + 8 + 8 + 8] = 7;
        assert!(matches!(decode(&bad), Err(FrameError::Tag { tag: 7, .. })));
    }
}
