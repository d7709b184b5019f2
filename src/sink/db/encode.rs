//! Encoding of rows for PostgreSQL, pure (no I/O): the binary COPY format
//! ([`CopyBuf`]) with jsonb's binary form, Twitter's date format
//! ([`parse_twitter_time`]) and the cleaning of values PostgreSQL refuses.
//!
//! Invariants:
//!
//! * A [`CopyBuf`] holds PostgreSQL's binary COPY format exactly: the 11-byte
//!   signature, flags and extension length, then per row a field count and per field
//!   a length (-1 for NULL) and the value in the type's binary send format, then the
//!   `-1` trailer. One buffer sent in large writes costs far less than a round trip
//!   per row.
//! * `text` values never contain NUL (PostgreSQL text cannot hold it): [`strip_nul`]
//!   removes it. jsonb refuses the escape `\u0000`: [`sanitize_json`] replaces it by
//!   `\ufffd`, leaving an escaped backslash followed by `u0000` (text, not a NUL)
//!   alone. Both borrow when nothing changes, so the caller can count the values that
//!   were cleaned.
//! * A date that does not parse, or is not a real date, is `None` (stored as NULL),
//!   never an error: outside data must not stop a batch.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::types::Type;

use super::civil::{days_from_civil, days_in_month};
use super::raw_json::{write_replacing_user, write_with_user_at};
use super::tables::{TWEETS, USERS};
use crate::model::{Record, Tweet, User};

/// Parses Twitter's `Mon Apr 18 19:30:47 +0000 2016`. `None` if it does not parse
/// or is not a real date.
pub fn parse_twitter_time(s: &str) -> Option<SystemTime> {
    let mut it = s.split_ascii_whitespace();
    let _weekday = it.next()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let day = digits(it.next()?, 2)?;
    let mut hms = it.next()?.split(':');
    let h = digits(hms.next()?, 2)?;
    let mi = digits(hms.next()?, 2)?;
    let se = digits(hms.next()?, 2)?;
    if hms.next().is_some() {
        return None;
    }
    let off = it.next()?;
    let year = digits(it.next()?, 4)?;
    if it.next().is_some() {
        return None;
    }
    // The offset is `+hhmm` or `-hhmm`: checked byte by byte, so a multi-byte
    // character anywhere in it is simply not a match (never a cut inside it).
    let (sign, oh, om) = match *off.as_bytes() {
        [s @ (b'+' | b'-'), h1, h2, m1, m2] if [h1, h2, m1, m2].iter().all(u8::is_ascii_digit) => {
            let d = |a: u8, b: u8| i64::from(a - b'0') * 10 + i64::from(b - b'0');
            (if s == b'+' { 1 } else { -1 }, d(h1, h2), d(m1, m2))
        }
        _ => return None,
    };
    if !(1..=9999).contains(&year)
        || day < 1
        || day > days_in_month(year, month)
        || h > 23
        || mi > 59
        || se > 60
        || oh > 23
        || om > 59
        || h < 0
        || mi < 0
        || se < 0
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        Some(UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()))
    }
}

/// A field of 1 to `max` ASCII digits (no sign, no space), as a number.
fn digits(s: &str, max: usize) -> Option<i64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Removes NUL characters (PostgreSQL text cannot hold them).
pub(crate) fn strip_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// Replaces the JSON escape `\u0000` (which jsonb refuses) by `\ufffd`, leaving
/// escaped backslashes (`\\u0000` is text, not a NUL) alone. Raw NUL bytes cannot
/// occur in valid JSON text; they are removed too.
pub(crate) fn sanitize_json(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if memchr::memmem::find(b, b"\\u0000").is_none() && memchr::memchr(0, b).is_none() {
        return Cow::Borrowed(s);
    }
    // Works on bytes: only ASCII bytes are removed or replaced, so the result is
    // still UTF-8, and no index can fall inside a character.
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while let Some(&c) = b.get(i) {
        match c {
            // A backslash escapes the next byte, unless that is a raw NUL: it is removed
            // below like any other (found by the `encode` fuzz target).
            b'\\' if i + 1 < b.len() && b.get(i + 1) != Some(&0) => {
                if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(b"0000") {
                    out.extend_from_slice(b.get(last..i).unwrap_or_default());
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                    last = i;
                } else {
                    i += 2;
                }
            }
            0 => {
                out.extend_from_slice(b.get(last..i).unwrap_or_default());
                i += 1;
                last = i;
            }
            _ => i += 1,
        }
    }
    out.extend_from_slice(b.get(last..).unwrap_or_default());
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// [`strip_nul`], counting into `n` the values it changed.
pub(in crate::sink) fn sanitized<'a>(s: &'a str, n: &mut u64) -> Cow<'a, str> {
    let c = strip_nul(s);
    if matches!(c, Cow::Owned(_)) {
        *n += 1;
    }
    c
}

/// [`sanitize_json`], counting into `n` the values it changed.
pub(in crate::sink) fn sanitized_json<'a>(s: &'a str, n: &mut u64) -> Cow<'a, str> {
    let c = sanitize_json(s);
    if matches!(c, Cow::Owned(_)) {
        *n += 1;
    }
    c
}

/// A binary COPY payload, encoded by hand in one buffer (PostgreSQL's binary COPY
/// format: signature, flags, extension; per row a field count, then per field a
/// length (-1 for NULL) and the value in the type's binary send format). One
/// buffer sent in 64 KiB writes costs far less than a runtime round trip per row.
#[derive(Debug)]
pub(crate) struct CopyBuf {
    buf: Vec<u8>,
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// PostgreSQL's timestamp range in µs since its epoch: 4713-11-24 BC (inclusive) to
/// 294277-01-01 AD (exclusive), `MIN_TIMESTAMP` and `END_TIMESTAMP` in its sources.
const PG_TIMESTAMP_US: std::ops::Range<i64> = -211_813_488_000_000_000..9_223_371_331_200_000_000;

/// The largest value PostgreSQL accepts in one field (1 GB less one byte).
pub(crate) const MAX_FIELD_BYTES: usize = (1 << 30) - 1;

/// `t` in µs since PostgreSQL's epoch, if PostgreSQL can hold it.
fn pg_micros(t: SystemTime) -> Option<i64> {
    let unix = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).ok()?,
        Err(e) => i64::try_from(e.duration().as_micros())
            .ok()?
            .checked_neg()?,
    };
    let pg = unix.checked_sub(PG_EPOCH_US)?;
    PG_TIMESTAMP_US.contains(&pg).then_some(pg)
}

/// Why a record cannot be encoded. It is then rejected (saved to the rejected file
/// with this reason) and the rest of its batch is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EncodeError {
    /// A value larger than PostgreSQL can hold in one field.
    #[error(
        "{field} is {len} bytes, more than the {MAX_FIELD_BYTES} PostgreSQL holds in one value"
    )]
    TooLarge {
        /// The column.
        field: &'static str,
        /// Its size in bytes.
        len: usize,
    },
    /// A number beyond the column's type.
    #[error("{field} is {value}, beyond bigint's range")]
    OutOfRange {
        /// The column.
        field: &'static str,
        /// The value.
        value: u64,
    },
}

fn fits(field: &'static str, len: usize) -> Result<(), EncodeError> {
    if len > MAX_FIELD_BYTES {
        return Err(EncodeError::TooLarge { field, len });
    }
    Ok(())
}

fn seq_i64(seq: u64) -> Result<i64, EncodeError> {
    i64::try_from(seq).map_err(|_| EncodeError::OutOfRange {
        field: "ingest_seq",
        value: seq,
    })
}

/// Fields of a `users` row in the COPY: the copied columns of the one column list
/// ([`USERS`]).
pub(crate) const USER_FIELDS: i16 = USERS.copied() as i16;
/// Fields of a `tweets` row in the COPY: the copied columns of [`TWEETS`].
pub(crate) const TWEET_FIELDS: i16 = TWEETS.copied() as i16;

/// Encodes one `users` row (the copied columns of [`USERS`], in order) with
/// `seq` as its `ingest_seq`; counts cleaned values into `sanitized`. An error
/// leaves bytes of a partial row behind: the caller truncates to its mark.
pub(crate) fn encode_user_row(
    c: &mut CopyBuf,
    u: &User,
    seq: u64,
    n: &mut u64,
) -> Result<(), EncodeError> {
    let seq = seq_i64(seq)?;
    let screen_name = u.screen_name.as_deref().map(|s| sanitized(s, n));
    let name = u.name.as_deref().map(|s| sanitized(s, n));
    let lang = u.lang.as_deref().map(|s| sanitized(s, n));
    let raw = sanitized_json(&u.raw, n);
    for (field, v) in [
        ("users.screen_name", &screen_name),
        ("users.name", &name),
        ("users.lang", &lang),
    ] {
        fits(field, v.as_deref().map_or(0, str::len))?;
    }
    fits("users.raw", raw.len() + 1)?;
    // A date that does not parse is NULL; the raw JSON keeps it.
    let created = u.created_at.as_deref().and_then(parse_twitter_time);
    c.row(USER_FIELDS);
    c.int8(Some(u.id));
    c.text(screen_name.as_deref());
    c.text(name.as_deref());
    c.int8(Some(u.followers_count));
    c.int8(u.friends_count);
    c.int8(u.statuses_count);
    c.bool(u.verified);
    c.text(lang.as_deref());
    c.timestamptz(created);
    c.jsonb(&raw);
    c.int8(Some(seq));
    Ok(())
}

/// Encodes one `tweets` row (the copied columns of [`TWEETS`], in order): the
/// raw tweet with its `user` replaced by the user id; counts cleaned values into
/// `sanitized`. An error leaves bytes of a partial row behind: the caller truncates
/// to its mark.
pub(crate) fn encode_tweet_row(
    c: &mut CopyBuf,
    r: &Record,
    n: &mut u64,
) -> Result<(), EncodeError> {
    let t: &Tweet = &r.tweet;
    let seq = seq_i64(t.seq)?;
    let text = sanitized(&t.text, n);
    let lang = t.lang.as_deref().map(|s| sanitized(s, n));
    let raw = sanitized_json(&t.raw, n);
    let hashtags: Vec<Cow<'_, str>> = t.hashtags.iter().map(|h| sanitized(h, n)).collect();
    fits("tweets.text", text.len())?;
    fits("tweets.lang", lang.as_deref().map_or(0, str::len))?;
    // Header, then per element a length and the bytes (see `text_array`).
    let array = 20 + hashtags.iter().map(|h| 4 + h.len()).sum::<usize>();
    fits("tweets.hashtags", array)?;
    // A date that does not parse is NULL; the raw JSON keeps it.
    let created = t.created_at.as_deref().and_then(parse_twitter_time);
    let received = UNIX_EPOCH.checked_add(Duration::from_micros(t.received_unix_us));
    c.row(TWEET_FIELDS);
    c.int8(Some(t.id));
    c.int8(Some(t.user.id));
    c.text(Some(&text));
    c.text(lang.as_deref());
    c.timestamptz(created);
    c.int8(Some(t.favorite_count));
    c.int8(Some(t.retweet_count));
    c.int8(t.retweeted_status_id);
    c.text_array(hashtags.iter());
    c.float8(r.sentiment);
    c.float8(r.engagement);
    // With its `user` replaced, written straight into the buffer; the size is
    // checked once it is known. A decoded tweet's user object is a range of its
    // text (see `Tweet::raw`), so where that text goes unchanged the span is known;
    // otherwise (read back from the spool, built by hand, sanitized) it is found by
    // a scan.
    let user_span = match raw {
        Cow::Borrowed(_) => t.user.raw.range_in(&t.raw),
        Cow::Owned(_) => None,
    };
    let len = c.jsonb_with(|out| match user_span {
        Some(span) => write_with_user_at(&raw, span, t.user.id, out),
        None => write_replacing_user(&raw, t.user.id, out),
    });
    fits("tweets.raw", len)?;
    c.int8(Some(seq));
    c.timestamptz(received);
    Ok(())
}

impl CopyBuf {
    /// An empty payload (header only).
    pub(crate) fn new(capacity: usize) -> CopyBuf {
        let mut buf = Vec::with_capacity(capacity + 32);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuf { buf }
    }

    fn len_prefixed(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Starts a row of `fields` fields.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// An `int8` field (NULL for `None`).
    pub(crate) fn int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.len_prefixed(&v.to_be_bytes()),
            None => self.null(),
        }
    }

    /// A `float8` field (NULL for `None`).
    pub(crate) fn float8(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.len_prefixed(&v.to_bits().to_be_bytes()),
            None => self.null(),
        }
    }

    /// A `bool` field (NULL for `None`).
    pub(crate) fn bool(&mut self, v: Option<bool>) {
        match v {
            Some(v) => self.len_prefixed(&[v as u8]),
            None => self.null(),
        }
    }

    /// A `text` field, the UTF-8 bytes as they are (NULL for `None`).
    pub(crate) fn text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.len_prefixed(v.as_bytes()),
            None => self.null(),
        }
    }

    /// jsonb: version byte 1, then the JSON text (parsed by the server).
    pub(crate) fn jsonb(&mut self, v: &str) {
        self.buf
            .extend_from_slice(&(v.len() as i32 + 1).to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(v.as_bytes());
    }

    /// jsonb written by `write` (which appends the JSON text); returns the
    /// field's length (version byte included), patched in afterwards.
    pub(crate) fn jsonb_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        self.buf.push(1);
        write(&mut self.buf);
        let len = self.buf.len() - at - 4;
        // A length beyond i32 fails the caller's size check and the row is
        // truncated away, so the patched value never reaches the server.
        let prefix = (len.min(i32::MAX as usize) as i32).to_be_bytes();
        self.buf[at..at + 4].copy_from_slice(&prefix);
        len
    }

    /// A `timestamptz` field: microseconds since 2000-01-01 UTC (NULL for `None`).
    /// A time beyond PostgreSQL's range (4713 BC to 294276 AD) is NULL.
    pub(crate) fn timestamptz(&mut self, v: Option<SystemTime>) {
        self.int8(v.and_then(pg_micros));
    }

    /// A one-dimensional `text[]` without NULLs (empty: zero dimensions).
    pub(crate) fn text_array<S: AsRef<str>>(&mut self, items: impl Iterator<Item = S>) {
        let items: Vec<S> = items.collect();
        let mut a = Vec::with_capacity(20 + items.len() * 16);
        let ndim: i32 = if items.is_empty() { 0 } else { 1 };
        a.extend_from_slice(&ndim.to_be_bytes());
        a.extend_from_slice(&0i32.to_be_bytes()); // no NULLs
        a.extend_from_slice(&(Type::TEXT.oid() as i32).to_be_bytes());
        if ndim == 1 {
            a.extend_from_slice(&(items.len() as i32).to_be_bytes());
            a.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            for it in &items {
                let b = it.as_ref().as_bytes();
                a.extend_from_slice(&(b.len() as i32).to_be_bytes());
                a.extend_from_slice(b);
            }
        }
        self.len_prefixed(&a);
    }

    /// The length so far, to undo a row that failed half-way ([`CopyBuf::truncate`]).
    pub(crate) fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything after `mark` (a row that could not be encoded).
    pub(crate) fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }

    /// The bytes encoded so far.
    pub(in crate::sink) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the bytes encoded so far (they were sent); the header is not repeated.
    pub(in crate::sink) fn clear(&mut self) {
        self.buf.clear();
    }

    /// The payload with its trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SharedStr;

    fn secs(t: SystemTime) -> i64 {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    #[test]
    fn parses_twitter_times() {
        let t = parse_twitter_time("Mon Apr 18 19:30:47 +0000 2016").unwrap();
        assert_eq!(secs(t), 1_461_007_847);
        let t = parse_twitter_time("Thu Jan 01 00:00:00 +0100 1970").unwrap();
        assert_eq!(secs(t), -3600);
        let t = parse_twitter_time("Tue Feb 29 12:00:00 -0230 2000").unwrap();
        assert_eq!(secs(t), 951_825_600 + 9000);
        for bad in [
            "",
            "Mon Apr 18 19:30:47 +0000",
            "Mon Foo 18 19:30:47 +0000 2016",
            "Mon Feb 30 19:30:47 +0000 2016",
            "Mon Apr 18 24:30:47 +0000 2016",
            "Mon Apr 18 19:30 +0000 2016",
            "Mon Apr 18 19:30:47 0000 2016",
            "Mon Apr 18 19:30:47 +0000 2016 x",
            "2016-04-18T19:30:47Z",
            // Multi-byte characters where the offset's digits go: no cut inside them.
            "Mon Apr 18 19:30:47 +0é0 2016",
            "Mon Apr 18 19:30:47 é000 2016",
            "Mon Apr 18 19:30:47 +00é 2016",
            // Signs and spaces are not digits.
            "Mon Apr +1 19:30:47 +0000 2016",
            "Mon Apr 18 19:+3:47 +0000 2016",
            "Mon Apr 18 19:30:47 +0000 +2016",
            "Mon Apr 18 19:30:47 +-100 2016",
        ] {
            assert_eq!(parse_twitter_time(bad), None, "{bad:?}");
        }
    }

    /// One field of a binary COPY row, read as the type the column list gives.
    #[derive(Debug, PartialEq)]
    enum Val {
        Null,
        Int(i64),
        Bool(bool),
        Float(f64),
        Text(String),
        Json(serde_json::Value),
        Texts(Vec<String>),
        /// µs since 2000-01-01 UTC.
        Time(i64),
    }

    fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        b[at..at + N].try_into().unwrap()
    }

    fn read_as(ty: &str, b: &[u8]) -> Val {
        let eight = |b: &[u8]| {
            assert_eq!(b.len(), 8, "{ty} is 8 bytes");
            be::<8>(b, 0)
        };
        match ty {
            "bigint" => Val::Int(i64::from_be_bytes(eight(b))),
            "timestamp with time zone" => Val::Time(i64::from_be_bytes(eight(b))),
            "double precision" => Val::Float(f64::from_bits(u64::from_be_bytes(eight(b)))),
            "boolean" => {
                assert_eq!(b.len(), 1, "boolean is 1 byte");
                Val::Bool(b[0] != 0)
            }
            "text" => Val::Text(String::from_utf8(b.to_vec()).unwrap()),
            "jsonb" => {
                assert_eq!(b[0], 1, "jsonb starts with its version");
                Val::Json(serde_json::from_slice(&b[1..]).unwrap())
            }
            "text[]" => {
                let ndim = i32::from_be_bytes(be(b, 0));
                assert_eq!(i32::from_be_bytes(be(b, 8)), 25, "elements are text");
                let mut out = Vec::new();
                if ndim == 1 {
                    let n = i32::from_be_bytes(be(b, 12));
                    let mut at = 20;
                    for _ in 0..n {
                        let len = i32::from_be_bytes(be(b, at)) as usize;
                        out.push(String::from_utf8(b[at + 4..at + 4 + len].to_vec()).unwrap());
                        at += 4 + len;
                    }
                    assert_eq!(at, b.len());
                }
                Val::Texts(out)
            }
            other => panic!("no reader for the column type {other}"),
        }
    }

    /// The one row of a COPY payload, its fields as sent (`None`: NULL); checks
    /// the header and that the trailer follows the row's announced fields.
    fn one_row(p: &[u8]) -> Vec<Option<Vec<u8>>> {
        assert_eq!(&p[..11], b"PGCOPY\n\xff\r\n\0");
        let mut at = 19;
        let n = i16::from_be_bytes(be(p, at));
        at += 2;
        let mut fields = Vec::new();
        for i in 0..n {
            assert!(
                at + 4 <= p.len(),
                "the row announces {n} fields but holds {i}: a column the encoder does not write"
            );
            let len = i32::from_be_bytes(be(p, at));
            at += 4;
            if len < 0 {
                fields.push(None);
            } else {
                fields.push(Some(p[at..at + len as usize].to_vec()));
                at += len as usize;
            }
        }
        assert_eq!(
            i16::from_be_bytes(be(p, at)),
            -1,
            "the trailer follows the row"
        );
        assert_eq!(at + 2, p.len());
        fields
    }

    /// µs since PostgreSQL's epoch of a Twitter date.
    fn pg_time(s: &str) -> Val {
        let unix = parse_twitter_time(s)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap();
        Val::Time(unix.as_micros() as i64 - 946_684_800_000_000)
    }

    /// What a row of `table` must hold in `column`, from the record's own fields.
    fn expected(table: &str, column: &str, r: &Record) -> Val {
        let t = &r.tweet;
        let u = &t.user;
        let text =
            |s: &Option<SharedStr>| s.as_ref().map_or(Val::Null, |s| Val::Text(s.to_string()));
        let int = |v: Option<i64>| v.map_or(Val::Null, Val::Int);
        let float = |v: Option<f64>| v.map_or(Val::Null, Val::Float);
        match (table, column) {
            ("users", "id") => Val::Int(u.id),
            ("users", "screen_name") => text(&u.screen_name),
            ("users", "name") => text(&u.name),
            ("users", "followers_count") => Val::Int(u.followers_count),
            ("users", "friends_count") => int(u.friends_count),
            ("users", "statuses_count") => int(u.statuses_count),
            ("users", "verified") => u.verified.map_or(Val::Null, Val::Bool),
            ("users", "lang") => text(&u.lang),
            ("users", "created_at") => pg_time(u.created_at.as_deref().unwrap()),
            ("users", "raw") => Val::Json(serde_json::from_str(&u.raw).unwrap()),
            ("users" | "tweets", "ingest_seq") => Val::Int(t.seq as i64),
            ("tweets", "id") => Val::Int(t.id),
            ("tweets", "user_id") => Val::Int(u.id),
            ("tweets", "text") => Val::Text(t.text.to_string()),
            ("tweets", "lang") => text(&t.lang),
            ("tweets", "created_at") => pg_time(t.created_at.as_deref().unwrap()),
            ("tweets", "favorite_count") => Val::Int(t.favorite_count),
            ("tweets", "retweet_count") => Val::Int(t.retweet_count),
            ("tweets", "retweeted_status_id") => int(t.retweeted_status_id),
            ("tweets", "hashtags") => {
                Val::Texts(t.hashtags.iter().map(|h| h.to_string()).collect())
            }
            ("tweets", "sentiment") => float(r.sentiment),
            ("tweets", "engagement") => float(r.engagement),
            ("tweets", "raw") => {
                // The raw tweet with its user object replaced by the user id.
                let mut v: serde_json::Value = serde_json::from_str(&t.raw).unwrap();
                v["user"] = serde_json::json!(u.id);
                Val::Json(v)
            }
            ("tweets", "received_at") => Val::Time(t.received_unix_us as i64 - 946_684_800_000_000),
            _ => panic!("{table}.{column} is in the column list, but nothing says what it holds"),
        }
    }

    /// The encoder against the one column list: each row has one field per
    /// copied column, in the list's order, each readable as the list's type and
    /// holding that column's value. A column added to the list alone, or a field
    /// added to the encoder alone, fails here.
    #[test]
    fn the_encoders_fields_follow_the_column_list() {
        let r = crate::testkit::record(&crate::testkit::Spec {
            seq: 7007,
            id: 1001,
            user_id: 2002,
            text: "a tweet with #two #tags",
            hashtags: &["two", "tags"],
            retweeted_status_id: Some(6006),
            followers: 3003,
            favorite_count: 4004,
            retweet_count: 5005,
            sentiment: Some(0.25),
            engagement: Some(0.75),
        });
        let mut n = 0;
        let mut users = CopyBuf::new(0);
        encode_user_row(&mut users, &r.tweet.user, r.tweet.seq, &mut n).unwrap();
        let mut tweets = CopyBuf::new(0);
        encode_tweet_row(&mut tweets, &r, &mut n).unwrap();
        for (table, payload) in [(USERS, users.finish()), (TWEETS, tweets.finish())] {
            let fields = one_row(&payload);
            let columns: Vec<_> = table.copied_columns().collect();
            assert_eq!(
                fields.len(),
                columns.len(),
                "{}: fields vs columns",
                table.name
            );
            for (c, f) in columns.iter().zip(&fields) {
                let got = f.as_deref().map_or(Val::Null, |b| read_as(c.ty, b));
                let want = expected(table.name, c.name, &r);
                assert_eq!(got, want, "{}.{}", table.name, c.name);
            }
        }
        assert_eq!(USER_FIELDS as usize, USERS.copied());
        assert_eq!(TWEET_FIELDS as usize, TWEETS.copied());
    }

    /// The `raw` field of one encoded tweet row, as JSON.
    fn encoded_raw(r: &Record) -> serde_json::Value {
        let mut c = CopyBuf::new(0);
        encode_tweet_row(&mut c, r, &mut 0).unwrap();
        let fields = one_row(&c.finish());
        let at = TWEETS
            .copied_columns()
            .position(|c| c.name == "raw")
            .unwrap();
        match read_as("jsonb", fields[at].as_deref().unwrap()) {
            Val::Json(v) => v,
            other => panic!("raw read as {other:?}"),
        }
    }

    /// A retweet whose user object is a range of its text, as the decoder leaves
    /// it: the user is replaced at that span, with the same result as the scan
    /// that a tweet whose user is held apart takes, and the same as replacing the
    /// member of a parsed tree. The original's user, equal in text, stays.
    #[test]
    fn a_user_within_the_raw_text_is_replaced_at_its_span() {
        let user = crate::testkit::user_json(7, 10);
        let original = crate::testkit::tweet_json(1, 7, 10, None);
        let text: std::sync::Arc<str> =
            crate::testkit::tweet_json(2, 7, 10, Some(&original)).into();
        let at = text.find(&user).unwrap();
        let mut r = crate::testkit::record(&crate::testkit::Spec::default());
        let t = std::sync::Arc::make_mut(&mut r.tweet);
        t.raw = SharedStr::whole(text.clone());
        t.user.id = 7;
        t.user.raw = SharedStr::range_of(&text, at..at + user.len()).unwrap();
        assert_eq!(
            r.tweet.user.raw.range_in(&r.tweet.raw),
            Some(at..at + user.len())
        );
        let mut want: serde_json::Value = serde_json::from_str(&text).unwrap();
        want["user"] = serde_json::json!(7);
        assert_eq!(want["retweeted_status"]["user"]["id"], 7);
        let at_span = encoded_raw(&r);
        assert_eq!(at_span, want);
        // The same user held in a buffer of its own: found by the scan.
        std::sync::Arc::make_mut(&mut r.tweet).user.raw = SharedStr::from(user.as_str());
        assert_eq!(r.tweet.user.raw.range_in(&r.tweet.raw), None);
        assert_eq!(encoded_raw(&r), at_span);
    }

    #[test]
    fn sanitizes_nul() {
        assert_eq!(strip_nul("a\0b"), "ab");
        assert!(matches!(strip_nul("ab"), Cow::Borrowed(_)));
        assert_eq!(sanitize_json(r#"{"t":"a\u0000b"}"#), r#"{"t":"a\ufffdb"}"#);
        assert_eq!(
            sanitize_json(r#"{"t":"a\\u0000b"}"#),
            r#"{"t":"a\\u0000b"}"#
        );
        assert_eq!(sanitize_json(r#"{"t":"\\\u0000"}"#), r#"{"t":"\\\ufffd"}"#);
        assert!(matches!(sanitize_json(r#"{"t":1}"#), Cow::Borrowed(_)));
        // A raw NUL right after a backslash is removed too.
        assert!(!sanitize_json("{\"t\":\"a\\\0b\"}").contains('\0'));
    }
}
