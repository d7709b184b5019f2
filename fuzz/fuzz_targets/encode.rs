//! Record → binary COPY rows under arbitrary records (typed fields from the
//! fuzzer, or a spool line parsed as JSON).
//!
//! Checks: no panic; a record is either encoded or refused with an
//! `EncodeError`; an encoded payload is well-formed binary COPY, walked here
//! independently of the encoder (signature, flags, per row the field count of
//! its table, every length −1 or within the payload, the trailer exactly at
//! the end); text fields come out as the input minus NULs; jsonb is its
//! version byte and UTF-8 without NUL; and `created_at` is stored exactly when
//! `parse_twitter_time` accepts it (NULL otherwise).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tweetflow::testkit::{tweet_row_copy, user_row_copy, TWEET_FIELDS, USER_FIELDS};
use tweetflow::{parse_twitter_time, Record, Tweet, User};

#[derive(Arbitrary, Debug)]
struct U {
    id: i64,
    followers_count: i64,
    screen_name: Option<String>,
    name: Option<String>,
    friends_count: Option<i64>,
    statuses_count: Option<i64>,
    verified: Option<bool>,
    lang: Option<String>,
    created_at: Option<Date>,
    raw: String,
}

/// A date: often Twitter's shape with fuzzed parts, so the parser's inner
/// branches are reached, else any string.
#[derive(Arbitrary, Debug)]
enum Date {
    Shaped {
        month: String,
        day: String,
        hms: String,
        offset: String,
        year: String,
    },
    Any(String),
}

impl Date {
    fn text(&self) -> String {
        match self {
            Date::Shaped {
                month,
                day,
                hms,
                offset,
                year,
            } => format!("Mon {month} {day} {hms} {offset} {year}"),
            Date::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct T {
    seq: u64,
    stream: u8,
    received_unix_us: u64,
    id: i64,
    text: String,
    lang: Option<String>,
    created_at: Option<Date>,
    favorite_count: i64,
    retweet_count: i64,
    retweeted_status_id: Option<i64>,
    hashtags: Vec<String>,
    user: U,
    /// Either a JSON-ish object built from the parts, or any string.
    raw: Raw,
    sentiment: Option<f64>,
    engagement: Option<f64>,
}

#[derive(Arbitrary, Debug)]
enum Raw {
    Object(Vec<(String, String)>),
    Any(String),
}

impl Raw {
    fn text(&self) -> String {
        match self {
            Raw::Object(members) => {
                let m: Vec<String> = members.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", m.join(","))
            }
            Raw::Any(s) => s.clone(),
        }
    }
}

fn record(t: T) -> Record {
    let u = t.user;
    Record {
        tweet: Arc::new(Tweet {
            seq: t.seq,
            stream: t.stream,
            received_unix_us: t.received_unix_us,
            id: t.id,
            text: t.text.into(),
            lang: t.lang.map(Into::into),
            created_at: t.created_at.map(|d| d.text().into()),
            favorite_count: t.favorite_count,
            retweet_count: t.retweet_count,
            retweeted_status_id: t.retweeted_status_id,
            hashtags: t.hashtags.into_iter().map(Into::into).collect(),
            user: User {
                id: u.id,
                followers_count: u.followers_count,
                screen_name: u.screen_name.map(Into::into),
                name: u.name.map(Into::into),
                friends_count: u.friends_count,
                statuses_count: u.statuses_count,
                verified: u.verified,
                lang: u.lang.map(Into::into),
                created_at: u.created_at.map(|d| d.text().into()),
                raw: u.raw.into(),
            },
            raw: t.raw.text().into(),
            memory: Default::default(),
        }),
        sentiment: t.sentiment,
        engagement: t.engagement,
    }
}

fn be_i16(b: &[u8], i: usize) -> i16 {
    i16::from_be_bytes(b[i..i + 2].try_into().unwrap())
}

fn be_i32(b: &[u8], i: usize) -> i32 {
    i32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}

/// Walks a binary COPY payload; returns each row's fields (`None` for NULL).
fn walk(b: &[u8], fields: i16) -> Vec<Vec<Option<Vec<u8>>>> {
    assert!(b.starts_with(b"PGCOPY\n\xff\r\n\0"), "signature");
    assert_eq!(be_i32(b, 11), 0, "flags");
    assert_eq!(be_i32(b, 15), 0, "header extension");
    let mut i = 19;
    let mut rows = Vec::new();
    loop {
        let n = be_i16(b, i);
        i += 2;
        if n == -1 {
            assert_eq!(i, b.len(), "bytes after the trailer");
            return rows;
        }
        assert_eq!(n, fields, "field count");
        let mut row = Vec::new();
        for _ in 0..n {
            let len = be_i32(b, i);
            i += 4;
            if len == -1 {
                row.push(None);
                continue;
            }
            assert!(len >= 0, "negative length {len}");
            let end = i + len as usize;
            assert!(end <= b.len(), "field beyond the payload");
            row.push(Some(b[i..end].to_vec()));
            i = end;
        }
        rows.push(row);
    }
}

fn check(rec: &Record) {
    let t = &rec.tweet;
    let users = user_row_copy(&t.user, t.seq);
    let tweets = tweet_row_copy(rec);
    // Only a seq beyond bigint (or a >1 GB value, impossible here) is refused.
    assert_eq!(users.is_some(), t.seq <= i64::MAX as u64);
    assert_eq!(tweets.is_some(), t.seq <= i64::MAX as u64);
    let (Some(users), Some(tweets)) = (users, tweets) else {
        return;
    };
    let u = walk(&users, USER_FIELDS);
    assert_eq!(u.len(), 1);
    let strip = |s: &str| s.replace('\0', "").into_bytes();
    assert_eq!(u[0][1], t.user.screen_name.as_deref().map(strip));
    assert_eq!(u[0][2], t.user.name.as_deref().map(strip));
    assert_eq!(u[0][0].as_deref(), Some(&t.user.id.to_be_bytes()[..]));
    let tw = walk(&tweets, TWEET_FIELDS);
    assert_eq!(tw.len(), 1);
    assert_eq!(tw[0][2], Some(strip(&t.text)));
    // jsonb: the version byte, then text without raw NULs.
    let raw = tw[0][11].as_ref().unwrap();
    assert_eq!(raw[0], 1);
    assert!(!raw[1..].contains(&0));
    assert!(std::str::from_utf8(&raw[1..]).is_ok());
    if let Some(d) = t.created_at.as_deref() {
        if parse_twitter_time(d).is_some() {
            assert!(tw[0][4].is_some(), "a parsed date is stored: {d:?}");
        } else {
            assert!(tw[0][4].is_none(), "an unparsed date is NULL: {d:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: 0 → a spool line (JSON), else typed fields.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if let Ok(rec) = serde_json::from_slice::<Record>(rest) {
            check(&rec);
        }
        return;
    }
    let mut u = Unstructured::new(rest);
    if let Ok(t) = T::arbitrary(&mut u) {
        check(&record(t));
    }
});
