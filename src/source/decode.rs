//! Decoding one event's data: a kill message, a tweet (and the original it
//! retweets), or malformed. Pure: no I/O, no clock, no logging.
//!
//! Contract:
//! - data exactly `{"message": panic}` (string equality, nothing trimmed) is
//!   [`Decoded::Kill`];
//! - JSON `{"message": {"tweet": {...}, ...}}` is a tweet. The tweet needs
//!   `id` (integer), `text` (string), `user` (object) with `user.id`
//!   (integer) and `user.followers_count` (integer). `favorite_count` and
//!   `retweet_count` are 0 when absent or `null`, and must be integers
//!   otherwise. Descriptive fields (`lang`, `created_at`, the user's
//!   `screen_name`, `name`, `friends_count`, `statuses_count`, `verified`,
//!   `lang`, `created_at`) are `None` when absent, `null` or of another type.
//!   Hashtags are `entities.hashtags[].text`; entries without a string
//!   `text` are left out, and a missing or odd `entities` means no hashtags.
//!   Every other key is skipped unread (`IgnoredAny`).
//! - a non-null `retweeted_status` is decoded by the same rules as a tweet of
//!   its own; the retweet keeps its id as `retweeted_status_id`. If the
//!   original is malformed the retweet still goes on (with
//!   `retweeted_status_id` taken from the original's `id` when that is an
//!   integer) and the error is reported in [`DecodedTweets::original`].
//!   Only one level is extracted (an original's own `retweeted_status` only
//!   sets its `retweeted_status_id`).
//! - anything else — not JSON, no `message.tweet`, a required field missing or
//!   of the wrong type — is [`Decoded::Malformed`].
//!
//! `raw` is the tweet object's JSON text exactly as received, captured with
//! `&RawValue` while the envelope is parsed (no re-serialisation); typed fields
//! are then read from that text with borrowed strings, so no `serde_json::Value`
//! is ever built. The text is copied once, and every string field that JSON
//! escapes did not change (the user object and a retweet's original included)
//! becomes a range of that copy ([`SharedStrs`]); the escaped ones share a
//! second buffer. A tweet is two or three allocations, not one per string.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::budget::MemoryPermit;
use crate::model::{Buffers, Placed, Seq, SharedStrs, Tweet, User};

/// Visitor methods mapping every scalar to a default value.
macro_rules! scalar_to_default {
    ($default:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

/// Visitor methods skipping maps and sequences and mapping `null` to a default.
macro_rules! containers_to_default {
    ($default:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($default)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

/// The kill message, compared byte for byte.
pub(crate) const KILL_MESSAGE: &str = r#"{"message": panic}"#;

/// Why an event's data is not a tweet.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON without `message.tweet`, or a tweet without the
    /// required fields (serde's message says which).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// The outcome of decoding one event's data.
// Returned by value and consumed at once: boxing the big variant would cost an
// allocation per tweet for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decoded {
    /// `{"message": panic}`.
    Kill,
    /// A tweet, and the original when it is a retweet.
    Tweets(DecodedTweets),
    /// Skipped: the reason.
    Malformed(DecodeError),
}

/// A decoded tweet before it gets its ingest stamp (seq, stream, receipt time).
#[derive(Debug)]
pub struct DecodedTweets {
    /// The tweet itself (a retweet keeps `retweeted_status_id`).
    pub tweet: Tweet,
    /// `None`: not a retweet. `Some(Ok(_))`: the extracted original.
    /// `Some(Err(_))`: a retweet whose `retweeted_status` is malformed.
    pub original: Option<Result<Tweet, DecodeError>>,
}

impl DecodedTweets {
    /// Stamps the tweets and returns them in emission order: the extracted
    /// original first, then the tweet itself, each with its own `seq` (so the
    /// original's seq is lower than that of the retweet that carried it).
    pub fn stamp(
        self,
        stream: u8,
        received_unix_us: u64,
        mut next_seq: impl FnMut() -> Seq,
    ) -> (Option<Tweet>, Tweet) {
        let original = match self.original {
            Some(Ok(mut o)) => {
                o.seq = next_seq();
                o.stream = stream;
                o.received_unix_us = received_unix_us;
                Some(o)
            }
            _ => None,
        };
        let mut t = self.tweet;
        t.seq = next_seq();
        t.stream = stream;
        t.received_unix_us = received_unix_us;
        (original, t)
    }
}

/// Decodes one event's data. `seq`, `stream` and `received_unix_us` of the
/// tweets are 0 until [`DecodedTweets::stamp`].
pub fn decode(data: &str) -> Decoded {
    if data == KILL_MESSAGE {
        return Decoded::Kill;
    }
    // Fast path: the lab server's exact wrapper around the tweet object. The
    // typed parse of the middle then validates the whole event (prefix and
    // suffix are fixed valid JSON), which saves a scan of the whole data.
    // Anything else, or any failure, takes the general path, which decides.
    let fast = lab_wrapped_tweet(data)
        .and_then(|raw| Some((raw, parse_object::<TweetFields<'_>>(raw).ok()?)));
    let (raw, fields) = match fast {
        Some(found) => found,
        None => {
            let envelope: Envelope<'_> = match serde_json::from_str(data) {
                Ok(e) => e,
                Err(e) => return Decoded::Malformed(e.into()),
            };
            let raw = envelope.message.tweet.get();
            match parse_object::<TweetFields<'_>>(raw) {
                Ok(f) => (raw, f),
                Err(e) => return Decoded::Malformed(e.into()),
            }
        }
    };
    let retweeted = fields.retweeted_status;
    // One copy of the tweet's text holds every string of it and of its original
    // that JSON escapes did not change (see `SharedStrs`).
    let mut strs = SharedStrs::over(raw);
    let tweet = match place_tweet(&mut strs, raw, fields) {
        Ok(t) => t,
        Err(e) => return Decoded::Malformed(e.into()),
    };
    let original = retweeted.map(|orig| {
        let orig_raw = orig.get();
        parse_object::<TweetFields<'_>>(orig_raw)
            .and_then(|f| place_tweet(&mut strs, orig_raw, f))
            .map_err(|e| (e, parse_object::<IdOnly>(orig_raw).ok().map(|i| i.id)))
    });
    let buffers = strs.finish();
    let mut tweet = tweet.build(&buffers);
    let original = original.map(|o| match o {
        Ok(placed) => {
            let o = placed.build(&buffers);
            tweet.retweeted_status_id = Some(o.id);
            Ok(o)
        }
        Err((e, id)) => {
            tweet.retweeted_status_id = id;
            Err(e.into())
        }
    });
    Decoded::Tweets(DecodedTweets { tweet, original })
}

/// Parses a typed struct from `raw`, which must be a JSON object (serde would
/// also accept the array form of a struct).
fn parse_object<'a, T: Deserialize<'a>>(raw: &'a str) -> Result<T, serde_json::Error> {
    if !raw.starts_with('{') {
        return Err(de::Error::custom("expected a JSON object"));
    }
    serde_json::from_str(raw)
}

/// The tweet object's text when `data` is exactly
/// `{"message": {"tweet": <object>, "unix_timestamp_100us": <integer>}}` with
/// the lab server's spacing; `None` otherwise (nothing is validated here).
fn lab_wrapped_tweet(data: &str) -> Option<&str> {
    const PREFIX: &str = r#"{"message": {"tweet": "#;
    const KEY: &str = r#", "unix_timestamp_100us": "#;
    let rest = data.strip_prefix(PREFIX)?.strip_suffix("}}")?;
    let digits_at = rest.len() - rest.bytes().rev().take_while(u8::is_ascii_digit).count();
    let digits = &rest[digits_at..];
    // A JSON integer: no leading zero unless it is 0 itself.
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let tweet = rest[..digits_at].strip_suffix(KEY)?;
    (tweet.starts_with('{') && tweet.ends_with('}')).then_some(tweet)
}

/// A tweet whose strings are placed in its [`SharedStrs`], waiting for the buffers.
struct PlacedTweet {
    id: i64,
    text: Placed,
    lang: Option<Placed>,
    created_at: Option<Placed>,
    favorite_count: i64,
    retweet_count: i64,
    hashtags: Vec<Placed>,
    user: PlacedUser,
    raw: Placed,
}

struct PlacedUser {
    id: i64,
    followers_count: i64,
    screen_name: Option<Placed>,
    name: Option<Placed>,
    friends_count: Option<i64>,
    statuses_count: Option<i64>,
    verified: Option<bool>,
    lang: Option<Placed>,
    created_at: Option<Placed>,
    raw: Placed,
}

/// Reads the user's fields and places the tweet's strings in `strs`.
fn place_tweet(
    strs: &mut SharedStrs<'_>,
    raw: &str,
    f: TweetFields<'_>,
) -> Result<PlacedTweet, serde_json::Error> {
    let u: UserFields<'_> = parse_object(f.user.get())?;
    let mut place_opt = |s: Option<Cow<'_, str>>| s.map(|s| strs.place(&s));
    let lang = place_opt(f.lang.0);
    let created_at = place_opt(f.created_at.0);
    let user = PlacedUser {
        id: u.id,
        followers_count: u.followers_count,
        screen_name: place_opt(u.screen_name.0),
        name: place_opt(u.name.0),
        friends_count: u.friends_count.0,
        statuses_count: u.statuses_count.0,
        verified: u.verified.0,
        lang: place_opt(u.lang.0),
        created_at: place_opt(u.created_at.0),
        raw: strs.place(f.user.get()),
    };
    let hashtags = match f.entities {
        Some(Entities {
            hashtags: Some(Hashtags(tags)),
        }) => tags.iter().map(|t| strs.place(t)).collect(),
        _ => Vec::new(),
    };
    Ok(PlacedTweet {
        id: f.id,
        text: strs.place(&f.text),
        lang,
        created_at,
        favorite_count: f.favorite_count.unwrap_or(0),
        retweet_count: f.retweet_count.unwrap_or(0),
        hashtags,
        user,
        raw: strs.place(raw),
    })
}

impl PlacedTweet {
    fn build(self, b: &Buffers) -> Tweet {
        let get = |p: Option<Placed>| p.map(|p| p.get(b));
        let u = self.user;
        Tweet {
            seq: 0,
            stream: 0,
            received_unix_us: 0,
            id: self.id,
            text: self.text.get(b),
            lang: get(self.lang),
            created_at: get(self.created_at),
            favorite_count: self.favorite_count,
            retweet_count: self.retweet_count,
            retweeted_status_id: None,
            hashtags: self.hashtags.iter().map(|h| h.get(b)).collect(),
            user: User {
                id: u.id,
                followers_count: u.followers_count,
                screen_name: get(u.screen_name),
                name: get(u.name),
                friends_count: u.friends_count,
                statuses_count: u.statuses_count,
                verified: u.verified,
                lang: get(u.lang),
                created_at: get(u.created_at),
                raw: u.raw.get(b),
            },
            raw: self.raw.get(b),
            memory: MemoryPermit::default(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    message: Message<'a>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    tweet: &'a RawValue,
}

#[derive(Deserialize)]
struct IdOnly {
    id: i64,
}

#[derive(Deserialize)]
struct TweetFields<'a> {
    id: i64,
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow, default)]
    lang: OptStr<'a>,
    #[serde(borrow, default)]
    created_at: OptStr<'a>,
    #[serde(default)]
    favorite_count: Option<i64>,
    #[serde(default)]
    retweet_count: Option<i64>,
    #[serde(borrow)]
    user: &'a RawValue,
    #[serde(borrow, default)]
    retweeted_status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    entities: Option<Entities<'a>>,
}

#[derive(Deserialize)]
struct UserFields<'a> {
    id: i64,
    followers_count: i64,
    #[serde(borrow, default)]
    screen_name: OptStr<'a>,
    #[serde(borrow, default)]
    name: OptStr<'a>,
    #[serde(default)]
    friends_count: OptI64,
    #[serde(default)]
    statuses_count: OptI64,
    #[serde(default)]
    verified: OptBool,
    #[serde(borrow, default)]
    lang: OptStr<'a>,
    #[serde(borrow, default)]
    created_at: OptStr<'a>,
}

/// `entities`: only `hashtags` is read; an odd shape means no hashtags.
struct Entities<'a> {
    hashtags: Option<Hashtags<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Entities<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entities<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("entities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entities<'a>, A::Error> {
                let mut hashtags = None;
                while let Some(Key(is_hashtags)) = map.next_key::<Key<true>>()? {
                    if is_hashtags {
                        hashtags = Some(map.next_value::<Hashtags<'a>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Entities { hashtags })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entities<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entities { hashtags: None })
            }
            fn visit_unit<E>(self) -> Result<Entities<'a>, E> {
                Ok(Entities { hashtags: None })
            }
            scalar_to_default!(Entities { hashtags: None });
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `entities.hashtags[].text`; entries without a string `text` are left out.
struct Hashtags<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Hashtags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Hashtags<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("hashtags")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hashtags<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some(tag) = seq.next_element::<HashtagText<'de>>()? {
                    if let Some(t) = tag.0 {
                        out.push(t);
                    }
                }
                Ok(Hashtags(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hashtags<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Hashtags(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Hashtags<'a>, E> {
                Ok(Hashtags(Vec::new()))
            }
            scalar_to_default!(Hashtags(Vec::new()));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One hashtag entity: its `text` if that is a string.
struct HashtagText<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for HashtagText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HashtagText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a hashtag entity")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut text = None;
                while let Some(Key(is_text)) = map.next_key::<Key<false>>()? {
                    if is_text {
                        text = map.next_value::<OptStr<'de>>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(HashtagText(text))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(HashtagText(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(HashtagText(None))
            }
            scalar_to_default!(HashtagText(None));
        }
        d.deserialize_any(V)
    }
}

struct KeyVisitor(&'static str);

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Deserializes a map key, answering whether it equals the wanted name.
struct Key<const HASHTAGS: bool>(bool);

impl<'de, const HASHTAGS: bool> Deserialize<'de> for Key<HASHTAGS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let want = if HASHTAGS { "hashtags" } else { "text" };
        d.deserialize_str(KeyVisitor(want)).map(Key)
    }
}

/// Lenient optional string: `None` when absent, `null` or not a string.
#[derive(Default)]
struct OptStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for OptStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Option<Cow<'a, str>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            containers_to_default!(None);
        }
        d.deserialize_any(V(std::marker::PhantomData)).map(OptStr)
    }
}

/// Lenient optional integer: `None` when absent, `null`, out of `i64` range or not an integer.
#[derive(Default)]
struct OptI64(Option<i64>);

impl<'de> Deserialize<'de> for OptI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<i64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).ok())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            containers_to_default!(None);
        }
        d.deserialize_any(V).map(OptI64)
    }
}

/// Lenient optional boolean: `None` when absent, `null` or not a boolean.
#[derive(Default)]
struct OptBool(Option<bool>);

impl<'de> Deserialize<'de> for OptBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            containers_to_default!(None);
        }
        d.deserialize_any(V).map(OptBool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{event_data, tweet_json, user_json};

    fn tweets(data: &str) -> DecodedTweets {
        match decode(data) {
            Decoded::Tweets(t) => t,
            other => panic!("expected tweets, got {other:?} for {data}"),
        }
    }

    fn malformed(data: &str) -> String {
        match decode(data) {
            Decoded::Malformed(e) => e.to_string(),
            other => panic!("expected malformed, got {other:?} for {data}"),
        }
    }

    #[test]
    fn kill_is_exact_string_equality() {
        assert!(matches!(decode(r#"{"message": panic}"#), Decoded::Kill));
        for near in [
            r#"{"message":panic}"#,
            r#"{"message": panic} "#,
            r#" {"message": panic}"#,
            r#"{"message": "panic"}"#,
            "{\"message\": panic}\n",
        ] {
            assert!(matches!(decode(near), Decoded::Malformed(_)), "{near:?}");
        }
    }

    #[test]
    fn realistic_tweet_decodes_with_raw_as_received() {
        let tj = tweet_json(720000000000000001, 42, 1234, None);
        let t = tweets(&event_data(&tj));
        assert!(t.original.is_none());
        let t = t.tweet;
        assert_eq!(t.id, 720000000000000001);
        assert_eq!(
            t.text,
            "What a happy day \u{1F600} so good \u{2014} not bad at all \\ \"quoted\" #love #peace"
        );
        assert_eq!(t.raw, tj, "raw is the tweet object's text, byte for byte");
        assert_eq!(t.user.raw, user_json(42, 1234));
        assert_eq!(t.user.id, 42);
        assert_eq!(t.user.followers_count, 1234);
        assert_eq!(t.user.screen_name.as_deref(), Some("ana_42"));
        assert_eq!(t.user.name.as_deref(), Some("Ana María \u{1F33B}"));
        assert_eq!(t.user.friends_count, Some(321));
        assert_eq!(t.user.statuses_count, Some(15034));
        assert_eq!(t.user.verified, Some(false));
        assert_eq!(t.user.lang.as_deref(), Some("ro"));
        assert_eq!(
            t.user.created_at.as_deref(),
            Some("Wed Jun 10 12:00:00 +0000 2015")
        );
        assert_eq!(t.lang.as_deref(), Some("en"));
        assert_eq!(
            t.created_at.as_deref(),
            Some("Mon Apr 18 19:30:47 +0000 2016")
        );
        assert_eq!(t.hashtags, vec!["love", "peace"]);
        assert_eq!(t.favorite_count, 720000000000000001 % 70);
        assert_eq!(t.retweet_count, 720000000000000001 % 50);
        assert_eq!(t.retweeted_status_id, None);
        assert!(
            tj.len() > 2000,
            "the fixture is realistic in size: {}",
            tj.len()
        );
        // One copy of the text holds every unescaped string; the escaped text has
        // bytes of its own, counted once by `heap_bytes`.
        let unescaped = [
            &t.user.raw,
            t.user.screen_name.as_ref().unwrap(),
            t.user.created_at.as_ref().unwrap(),
            t.lang.as_ref().unwrap(),
            &t.hashtags[0],
            &t.hashtags[1],
        ];
        for s in unescaped {
            assert!(s.within(&t.raw), "{s:?} is a range of the raw text");
        }
        assert!(!t.text.within(&t.raw) && !t.user.name.as_ref().unwrap().within(&t.raw));
        assert_eq!(
            t.heap_bytes() as usize,
            std::mem::size_of::<Tweet>()
                + tj.len()
                + t.text.len()
                + t.user.name.as_ref().unwrap().len()
                + 2 * std::mem::size_of::<crate::model::SharedStr>()
        );
    }

    #[test]
    fn retweet_yields_original_first_then_retweet() {
        let orig = tweet_json(5, 7, 900, None);
        let rt = tweet_json(6, 8, 10, Some(&orig));
        let d = tweets(&event_data(&rt));
        let mut n = 100;
        let (o, t) = d.stamp(2, 77, || {
            n += 1;
            n
        });
        let o = o.unwrap();
        assert_eq!((o.id, o.seq, o.stream, o.received_unix_us), (5, 101, 2, 77));
        assert_eq!((t.id, t.seq, t.stream), (6, 102, 2));
        assert_eq!(t.retweeted_status_id, Some(5));
        assert_eq!(o.retweeted_status_id, None);
        assert_eq!(o.raw, orig);
        assert_eq!(t.raw, rt, "the retweet's raw keeps its retweeted_status");
        assert!(
            o.raw.within(&t.raw),
            "the original is a range of the retweet's copy"
        );
        assert!(o.user.raw.within(&o.raw) && o.lang.as_ref().unwrap().within(&o.raw));
        assert_eq!(o.user.id, 7);
        assert_eq!((o.retweet_count, o.favorite_count), (5, 5));
        assert_eq!((t.retweet_count, t.favorite_count), (0, 0));
    }

    #[test]
    fn malformed_original_does_not_sink_the_retweet() {
        let bad = r#"{"id":9,"text":"no user here"}"#;
        let d = tweets(&event_data(&tweet_json(10, 8, 10, Some(bad))));
        assert!(matches!(d.original, Some(Err(_))));
        assert_eq!(d.tweet.retweeted_status_id, Some(9));
        let arr = r#"[9,"x",null,null,null,null,{"id":2,"followers_count":3}]"#;
        let d = tweets(&event_data(&tweet_json(10, 8, 10, Some(arr))));
        assert!(
            matches!(d.original, Some(Err(_))),
            "the array form of a struct is not a tweet"
        );
        assert_eq!(d.tweet.retweeted_status_id, None);
        let d = tweets(&event_data(&tweet_json(10, 8, 10, Some(r#""garbage""#))));
        assert!(matches!(d.original, Some(Err(_))));
        assert_eq!(d.tweet.retweeted_status_id, None);
        let (o, t) = d.stamp(1, 0, || 1);
        assert!(o.is_none());
        assert_eq!(t.id, 10);
        // null retweeted_status: not a retweet.
        let d = tweets(
            r#"{"message":{"tweet":{"id":1,"text":"a","user":{"id":2,"followers_count":3},"retweeted_status":null}}}"#,
        );
        assert!(d.original.is_none());
    }

    #[test]
    fn minimal_tweet_and_defaults() {
        let d = tweets(
            r#"{"message": {"tweet": {"id": 1, "text": "hi", "user": {"id": 2, "followers_count": 0}}}}"#,
        );
        let t = d.tweet;
        assert_eq!((t.id, t.favorite_count, t.retweet_count), (1, 0, 0));
        assert_eq!(t.user.followers_count, 0);
        assert!(t.hashtags.is_empty() && t.lang.is_none() && t.user.screen_name.is_none());
        assert_eq!(
            t.raw,
            r#"{"id": 1, "text": "hi", "user": {"id": 2, "followers_count": 0}}"#
        );
        // null counts count as 0 too.
        let d = tweets(
            r#"{"message":{"tweet":{"id":1,"text":"","favorite_count":null,"retweet_count":null,"user":{"id":2,"followers_count":3}}}}"#,
        );
        assert_eq!((d.tweet.favorite_count, d.tweet.retweet_count), (0, 0));
    }

    #[test]
    fn lenient_descriptive_fields() {
        let d = tweets(concat!(
            r#"{"message":{"tweet":{"id":1,"text":"x","lang":5,"created_at":{"a":[1,2]},"#,
            r#""entities":{"hashtags":[{"text":"ok"},{"text":7},{"indices":[1]},"odd",{"text":"caf\u00e9"}],"urls":[1]},"#,
            r#""user":{"id":2,"followers_count":3,"screen_name":["x"],"verified":"yes","friends_count":1.5,"lang":null}}}}"#
        ));
        let t = d.tweet;
        assert_eq!(t.hashtags, vec!["ok", "café"]);
        assert!(t.lang.is_none() && t.created_at.is_none());
        assert!(t.user.screen_name.is_none() && t.user.verified.is_none());
        assert!(t.user.friends_count.is_none() && t.user.lang.is_none());
        let d = tweets(
            r#"{"message":{"tweet":{"id":1,"text":"x","entities":[],"user":{"id":2,"followers_count":3}}}}"#,
        );
        assert!(d.tweet.hashtags.is_empty());
        let d = tweets(
            r#"{"message":{"tweet":{"id":1,"text":"x","entities":{"hashtags":null},"user":{"id":2,"followers_count":3}}}}"#,
        );
        assert!(d.tweet.hashtags.is_empty());
    }

    #[test]
    fn escaped_text_is_unescaped() {
        let d = tweets(
            r#"{"message":{"tweet":{"id":1,"text":"a\"b\\c\nd\u00e9\ud83d\ude00","user":{"id":2,"followers_count":3}}}}"#,
        );
        assert_eq!(d.tweet.text, "a\"b\\c\nd\u{e9}\u{1F600}");
    }

    #[test]
    fn lab_wrapper_fast_path_agrees_with_the_general_path() {
        let tj = tweet_json(3, 4, 5, None);
        assert_eq!(lab_wrapped_tweet(&event_data(&tj)), Some(tj.as_str()));
        for (data, is_lab) in [
            (
                format!(r#"{{"message": {{"tweet": {tj}, "unix_timestamp_100us": 0}}}}"#),
                true,
            ),
            (
                format!(r#"{{"message": {{"tweet": {tj}, "unix_timestamp_100us": 01}}}}"#),
                false,
            ),
            (
                format!(r#"{{"message": {{"tweet": {tj}, "unix_timestamp_100us": }}}}"#),
                false,
            ),
            (
                format!(r#"{{"message": {{"tweet": {tj} , "unix_timestamp_100us": 1}}}}"#),
                false,
            ),
            (
                format!(r#"{{"message":{{"tweet":{tj},"unix_timestamp_100us":1}}}}"#),
                false,
            ),
            (
                format!(r#"{{"message": {{"unix_timestamp_100us": 1, "tweet": {tj}}}}}"#),
                false,
            ),
        ] {
            assert_eq!(lab_wrapped_tweet(&data).is_some(), is_lab, "{data}");
        }
        // Same results through either path; invalid wrappers are malformed.
        let general = format!(r#"{{"message":{{"tweet":{tj},"unix_timestamp_100us":1}}}}"#);
        assert_eq!(tweets(&general).tweet, tweets(&event_data(&tj)).tweet);
        malformed(&format!(
            r#"{{"message": {{"tweet": {tj}, "unix_timestamp_100us": 01}}}}"#
        ));
        malformed(r#"{"message": {"tweet": {"id":1}, "unix_timestamp_100us": 1}}"#);
        // A middle that is not one value: the general path decides (malformed).
        malformed(
            r#"{"message": {"tweet": {"id":1,"text":"x","user":{"id":2,"followers_count":3}}, "unix_timestamp_100us": 1}, "unix_timestamp_100us": 2}}"#,
        );
        malformed(
            r#"{"message": {"tweet": {"id":1,"text":"x","user":{"id":2,"followers_count":3}}}, {"id":1}, "unix_timestamp_100us": 2}}"#,
        );
    }

    #[test]
    fn malformed_cases() {
        let ok_user = r#""user":{"id":2,"followers_count":3}"#;
        let cases = [
            String::new(),
            "not json".into(),
            r#"{"message": {"tweet": {"id": 1, "text": "tru"#.into(),
            r#"{"message": {}}"#.into(),
            r#"{"message": "panic"}"#.into(),
            r#"{"message": {"tweet": null}}"#.into(),
            r#"{"message": {"tweet": [1]}}"#.into(),
            r#"{"tweet": {"id":1}}"#.into(),
            format!(r#"{{"message":{{"tweet":{{"text":"x",{ok_user}}}}}}}"#),
            format!(r#"{{"message":{{"tweet":{{"id":"1","text":"x",{ok_user}}}}}}}"#),
            format!(r#"{{"message":{{"tweet":{{"id":1.5,"text":"x",{ok_user}}}}}}}"#),
            format!(
                r#"{{"message":{{"tweet":{{"id":18446744073709551615,"text":"x",{ok_user}}}}}}}"#
            ),
            format!(r#"{{"message":{{"tweet":{{"id":1,{ok_user}}}}}}}"#),
            format!(r#"{{"message":{{"tweet":{{"id":1,"text":5,{ok_user}}}}}}}"#),
            format!(r#"{{"message":{{"tweet":{{"id":1,"text":null,{ok_user}}}}}}}"#),
            r#"{"message":{"tweet":{"id":1,"text":"x"}}}"#.into(),
            r#"{"message":{"tweet":{"id":1,"text":"x","user":null}}}"#.into(),
            r#"{"message":{"tweet":{"id":1,"text":"x","user":{"followers_count":3}}}}"#.into(),
            r#"{"message":{"tweet":{"id":1,"text":"x","user":{"id":2}}}}"#.into(),
            r#"{"message":{"tweet":{"id":1,"text":"x","user":{"id":2,"followers_count":"3"}}}}"#
                .into(),
            format!(
                r#"{{"message":{{"tweet":{{"id":1,"text":"x","favorite_count":"3",{ok_user}}}}}}}"#
            ),
            format!(
                r#"{{"message":{{"tweet":{{"id":1,"text":"x","retweet_count":1.0,{ok_user}}}}}}}"#
            ),
            format!(r#"{{"message":{{"tweet":{{"id":1,"id":2,"text":"x",{ok_user}}}}}}}"#),
            format!(r#"{{"message":{{"tweet":{{"id":1,"text":"x",{ok_user}}}}}}} trailing"#),
        ];
        for c in &cases {
            let reason = malformed(c);
            assert!(!reason.is_empty(), "{c}");
        }
    }
}
