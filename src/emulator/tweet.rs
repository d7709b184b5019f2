//! Tweet generation: the events of one stream, each a function of
//! `(seed, stream, index)`.
//!
//! A [`TweetGen`] writes event number `index` of one stream from a shared
//! [`Corpus`] and a random generator seeded from `(seed, stream, index)`
//! alone, never from what came before. So any event can be produced on its
//! own (that is how `Last-Event-ID` resumes and how a reconnect replays), the
//! same seed always gives the same events, and the two streams of one seed
//! differ. The tweets do not depend on the kill and malformed knobs: those
//! decide per index, from their own seeds, whether an event is replaced.
//!
//! An event's data is the real server's wrapper around a compact v1.1
//! status of April 2016, keys in Twitter's order:
//! `{"message": {"tweet": {...}, "unix_timestamp_100us": N}}`. A share of the
//! statuses (a third by default) are retweets that carry their original as
//! `retweeted_status`, with a `retweet_count` of 0 of their own, as the
//! streaming API sent them. A quarter of the statuses escape every non-ASCII
//! character as `\uXXXX`, as Twitter's API did; the rest write UTF-8.
//!
//! Everything is written by hand into a caller's reused `Vec<u8>`; generating
//! an event allocates nothing once the buffers have grown.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::clock::{snowflake, unix_100us, BASE_TIMESTAMP_MS, MS_PER_EVENT};
use super::corpus::{Corpus, Text};
use super::frame::KILL_PAYLOAD;
use super::json::{push_str, push_twitter_date, push_u64, push_u64_str, Escape};
use super::random::{mix, pick, stream_seed};
use super::vocab;

/// Default share of retweets among tweet events.
pub(crate) const DEFAULT_RETWEET_SHARE: f64 = 1.0 / 3.0;

/// Which malformed event is sent (`--malformed-every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The data line stops in the middle of the JSON (framing intact).
    TruncatedJson,
    /// A complete tweet without its `user`.
    MissingUser,
    /// Valid JSON with wrong types: `id` a string, `text` a number,
    /// `user.followers_count` a string, `entities.hashtags` an object.
    WrongTypes,
    /// A data line that is not JSON at all.
    NotJson,
}

impl Malformed {
    /// Every kind, in the order `--malformed-every` draws from.
    pub const ALL: [Malformed; 4] = [
        Malformed::TruncatedJson,
        Malformed::MissingUser,
        Malformed::WrongTypes,
        Malformed::NotJson,
    ];
}

/// What an event of a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A well-formed tweet event.
    Tweet,
    /// `{"message": panic}`.
    Kill,
    /// A broken event (`--malformed-every`).
    Malformed(Malformed),
}

/// Flags for one tweet being written.
#[derive(Debug, Clone, Copy, Default)]
struct Variant {
    omit_user: bool,
    wrong_types: bool,
}

/// Generates the events of one stream of one seed.
///
/// ```
/// use tweetflow::{frame_event, TweetGen};
/// let mut generator = TweetGen::new(7);
/// let mut payload = Vec::new();
/// generator.next_payload(&mut payload);
/// assert!(payload.starts_with(b"{\"message\": {\"tweet\": {\"created_at\":"));
/// let mut event = Vec::new();
/// frame_event(&payload, None, &mut event);
/// assert!(event.starts_with(b"event: \"message\"\n\ndata: {"));
/// ```
#[derive(Debug)]
pub struct TweetGen {
    corpus: Arc<Corpus>,
    stream: u32,
    stream_seed: u64,
    retweet_share: f64,
    next: u64,
    text: Text,
}

impl TweetGen {
    /// A generator of stream 1 with its own corpus of `seed` (builds the corpus:
    /// some milliseconds; share a [`Corpus`] with [`TweetGen::with_corpus`] when
    /// making many).
    pub fn new(seed: u64) -> TweetGen {
        TweetGen::with_corpus(Arc::new(Corpus::new(seed)), 1)
    }

    /// A generator of stream `stream` over a shared corpus.
    pub fn with_corpus(corpus: Arc<Corpus>, stream: u32) -> TweetGen {
        let stream_seed = stream_seed(corpus.seed, stream);
        TweetGen {
            corpus,
            stream,
            stream_seed,
            retweet_share: DEFAULT_RETWEET_SHARE,
            next: 0,
            text: Text::default(),
        }
    }

    /// Sets the share of retweets (clamped to 0..=1).
    pub fn set_retweet_share(&mut self, share: f64) {
        self.retweet_share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            DEFAULT_RETWEET_SHARE
        };
    }

    /// The index the next [`TweetGen::next_payload`] call writes.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Moves to event `index`.
    pub fn seek(&mut self, index: u64) {
        self.next = index;
    }

    /// Clears `out` and writes the next tweet event's data
    /// (`{"message": {"tweet": {...}, "unix_timestamp_100us": N}}`, N = now).
    pub fn next_payload(&mut self, out: &mut Vec<u8>) {
        let index = self.next;
        self.next += 1;
        out.clear();
        self.payload_at(index, unix_100us(), out);
    }

    /// Appends the data of tweet event `index` with the given server clock.
    pub fn payload_at(&mut self, index: u64, unix_100us: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"message\": {\"tweet\": ");
        self.tweet_at(index, out);
        out.extend_from_slice(b", \"unix_timestamp_100us\": ");
        push_u64(out, unix_100us);
        out.extend_from_slice(b"}}");
    }

    /// Appends the tweet object (compact JSON) of event `index`.
    pub fn tweet_at(&mut self, index: u64, out: &mut Vec<u8>) {
        self.write_tweet(index, Variant::default(), out);
    }

    /// Appends the data of event `index` of a stream with kills and malformed
    /// events mixed in (each event is a kill with probability `1/kill_every`,
    /// else malformed with probability `1/malformed_every`; `None` or 0 = never).
    /// The tweets themselves do not depend on these knobs.
    pub fn event_at(
        &mut self,
        index: u64,
        unix_100us: u64,
        kill_every: Option<u64>,
        malformed_every: Option<u64>,
        out: &mut Vec<u8>,
    ) -> EventKind {
        let d = mix(self.stream_seed ^ 0x4b49_4c4c, index);
        if let Some(k) = kill_every.filter(|&k| k > 0) {
            if d.is_multiple_of(k) {
                out.extend_from_slice(KILL_PAYLOAD);
                return EventKind::Kill;
            }
        }
        if let Some(m) = malformed_every.filter(|&m| m > 0) {
            let d2 = mix(d, 0x4d41_4c46);
            if d2.is_multiple_of(m) {
                let kind = Malformed::ALL[((d2 >> 32) % 4) as usize];
                self.write_malformed(kind, index, unix_100us, d2, out);
                return EventKind::Malformed(kind);
            }
        }
        self.payload_at(index, unix_100us, out);
        EventKind::Tweet
    }

    fn write_malformed(
        &mut self,
        kind: Malformed,
        index: u64,
        unix_100us: u64,
        d: u64,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        match kind {
            Malformed::TruncatedJson => {
                self.payload_at(index, unix_100us, out);
                let len = out.len() - start;
                let mut cut = start + len / 10 + (d as usize % (len * 8 / 10).max(1));
                // Cut at a UTF-8 boundary: the event stays text, only the JSON breaks.
                while cut > start && (out[cut] & 0xc0) == 0x80 {
                    cut -= 1;
                }
                out.truncate(cut);
            }
            Malformed::MissingUser | Malformed::WrongTypes => {
                let variant = Variant {
                    omit_user: kind == Malformed::MissingUser,
                    wrong_types: kind == Malformed::WrongTypes,
                };
                out.extend_from_slice(b"{\"message\": {\"tweet\": ");
                self.write_tweet(index, variant, out);
                out.extend_from_slice(b", \"unix_timestamp_100us\": ");
                push_u64(out, unix_100us);
                out.extend_from_slice(b"}}");
            }
            Malformed::NotJson => {
                const JUNK: [&str; 5] = [
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    "undefined",
                    "{\"message\": {\"tweet\": NaN}}",
                    "Internal Server Error",
                    "{'message': {'tweet': None}}",
                ];
                out.extend_from_slice(JUNK[(d >> 8) as usize % JUNK.len()].as_bytes());
            }
        }
    }

    fn write_tweet(&mut self, index: u64, v: Variant, out: &mut Vec<u8>) {
        let corpus = Arc::clone(&self.corpus);
        let c = &*corpus;
        let mut rng = SmallRng::seed_from_u64(mix(self.stream_seed, index));
        let ts_ms = BASE_TIMESTAMP_MS + index * MS_PER_EVENT + rng.gen_range(0..MS_PER_EVENT);
        let worker = (u64::from(self.stream % 4) << 8) | rng.gen_range(0..256);
        let id = snowflake(ts_ms, worker, index);
        let author = c.authors.sample(&mut rng);
        let user = &c.users[author];
        let retweet = rng.gen_bool(self.retweet_share);
        let original = if retweet {
            Some(&c.originals[c.original_pick.sample(&mut rng)])
        } else {
            None
        };
        let reply_to = if !retweet && rng.gen_bool(0.1) {
            Some(c.authors.sample(&mut rng))
        } else {
            None
        };
        let mode = if rng.gen_bool(0.25) {
            Escape::Ascii
        } else {
            Escape::Utf8
        };
        let lang = match original {
            Some(o) => o.lang,
            None if rng.gen_bool(0.9) => user.lang,
            None => c.languages.sample(&mut rng),
        };
        if original.is_none() {
            c.build_text(&mut rng, lang, reply_to, &mut self.text);
        }

        out.extend_from_slice(b"{\"created_at\":\"");
        push_twitter_date(out, (ts_ms / 1000) as i64);
        out.extend_from_slice(b"\",\"id\":");
        if v.wrong_types {
            push_u64_str(out, id);
        } else {
            push_u64(out, id);
        }
        out.extend_from_slice(b",\"id_str\":");
        push_u64_str(out, id);
        out.extend_from_slice(b",\"text\":");
        if v.wrong_types {
            push_u64(out, index);
        } else {
            match original {
                Some(o) => push_str(out, &o.rt_text, mode),
                None => push_str(out, &self.text.text, mode),
            }
        }
        out.extend_from_slice(b",\"source\":");
        push_str(out, pick(&mut rng, vocab::SOURCES), Escape::Utf8);
        out.extend_from_slice(b",\"truncated\":false,\"in_reply_to_status_id\":");
        match reply_to {
            Some(u) => {
                let to = &c.users[u];
                let status = snowflake(ts_ms - rng.gen_range(1_000..86_400_000), 1, 0);
                push_u64(out, status);
                out.extend_from_slice(b",\"in_reply_to_status_id_str\":");
                push_u64_str(out, status);
                out.extend_from_slice(b",\"in_reply_to_user_id\":");
                push_u64(out, to.id);
                out.extend_from_slice(b",\"in_reply_to_user_id_str\":");
                push_u64_str(out, to.id);
                out.extend_from_slice(b",\"in_reply_to_screen_name\":");
                push_str(out, &to.screen_name, Escape::Utf8);
            }
            None => out.extend_from_slice(
                b"null,\"in_reply_to_status_id_str\":null,\"in_reply_to_user_id\":null,\
\"in_reply_to_user_id_str\":null,\"in_reply_to_screen_name\":null",
            ),
        }
        if !v.omit_user {
            out.extend_from_slice(b",\"user\":");
            if v.wrong_types {
                let at = out.len();
                user.write(out, index);
                // followers_count as a string, as a broken upstream might send it.
                let needle = b"\"followers_count\":";
                if let Some(p) = out[at..].windows(needle.len()).position(|w| w == needle) {
                    let p = at + p + needle.len();
                    out.insert(p, b'"');
                    let end = out[p + 1..]
                        .iter()
                        .position(|&b| b == b',')
                        .map_or(out.len(), |e| p + 1 + e);
                    out.insert(end, b'"');
                }
            } else {
                user.write(out, index);
            }
        }
        let geo = original.is_none() && rng.gen_bool(0.03);
        let place = original.is_none() && (geo || rng.gen_bool(0.04));
        let place_i = rng.gen_range(0..c.places.len());
        let place_c = vocab::PLACES[place_i];
        if geo {
            let lat = place_c.7 + rng.gen_range(-0.05..0.05);
            let lon = place_c.6 + rng.gen_range(-0.05..0.05);
            let g = format!(
                ",\"geo\":{{\"type\":\"Point\",\"coordinates\":[{lat:.8},{lon:.8}]}},\"coordinates\":{{\"type\":\"Point\",\"coordinates\":[{lon:.8},{lat:.8}]}}"
            );
            out.extend_from_slice(g.as_bytes());
        } else {
            out.extend_from_slice(b",\"geo\":null,\"coordinates\":null");
        }
        out.extend_from_slice(b",\"place\":");
        if place {
            out.extend_from_slice(&c.places[place_i]);
        } else {
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b",\"contributors\":null");
        if let Some(o) = original {
            out.extend_from_slice(b",\"retweeted_status\":");
            o.write(out, index);
        }
        // Fresh statuses have no retweets or likes yet (a few arrive late).
        let (rts, favs) = if original.is_none() && rng.gen_bool(0.01) {
            (rng.gen_range(0..5u64), rng.gen_range(0..10u64))
        } else {
            (0, 0)
        };
        out.extend_from_slice(b",\"is_quote_status\":false,\"retweet_count\":");
        push_u64(out, rts);
        out.extend_from_slice(b",\"favorite_count\":");
        push_u64(out, favs);
        out.extend_from_slice(b",\"entities\":");
        let entities_at = out.len();
        let has_urls = match original {
            Some(o) => {
                out.extend_from_slice(&o.rt_entities);
                o.rt_text.contains("https://t.co/")
            }
            None => {
                c.write_entities(out, &self.text);
                !self.text.urls.is_empty()
            }
        };
        if v.wrong_types {
            // "hashtags":[...] becomes "hashtags":{...}.
            let at = entities_at + b"{\"hashtags\":".len();
            let needle = b"],\"urls\":";
            if let Some(p) = out[at..].windows(needle.len()).position(|w| w == needle) {
                out.splice(at..=at + p, b"{}".iter().copied());
            }
        }
        out.extend_from_slice(b",\"favorited\":false,\"retweeted\":false");
        if has_urls {
            out.extend_from_slice(b",\"possibly_sensitive\":false");
        }
        out.extend_from_slice(b",\"filter_level\":\"low\",\"lang\":");
        push_str(out, vocab::LANGUAGES[lang].code, Escape::Utf8);
        out.extend_from_slice(b",\"timestamp_ms\":\"");
        push_u64(out, ts_ms);
        out.extend_from_slice(b"\"}");
    }
}

#[cfg(test)]
pub(super) mod tests {
    /// The keys of a v1.1 status of 2016, in Twitter's order.
    const TWEET_KEYS: [&str; 25] = [
        "created_at",
        "id",
        "id_str",
        "text",
        "source",
        "truncated",
        "in_reply_to_status_id",
        "in_reply_to_status_id_str",
        "in_reply_to_user_id",
        "in_reply_to_user_id_str",
        "in_reply_to_screen_name",
        "user",
        "geo",
        "coordinates",
        "place",
        "contributors",
        "is_quote_status",
        "retweet_count",
        "favorite_count",
        "entities",
        "favorited",
        "retweeted",
        "filter_level",
        "lang",
        "timestamp_ms",
    ];

    use super::*;
    use crate::emulator::corpus::MAX_CPS;
    use serde_json::Value;
    use std::collections::HashMap;

    /// A small corpus for tests.
    pub(in crate::emulator) fn corpus() -> Arc<Corpus> {
        Arc::new(Corpus::with_users(11, 2_000))
    }

    /// Tweets 0..n of `generator`, parsed.
    pub(in crate::emulator) fn tweets(generator: &mut TweetGen, n: u64) -> Vec<Value> {
        let mut out = Vec::new();
        (0..n)
            .map(|i| {
                out.clear();
                generator.tweet_at(i, &mut out);
                serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
            })
            .collect()
    }

    fn cp_slice(text: &str, s: usize, e: usize) -> String {
        text.chars().skip(s).take(e - s).collect()
    }

    fn check_entities(t: &Value) {
        let text = t["text"].as_str().unwrap();
        let ents = &t["entities"];
        let keys: Vec<&String> = ents.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4);
        for h in ents["hashtags"].as_array().unwrap() {
            let i = h["indices"].as_array().unwrap();
            let (s, e) = (
                i[0].as_u64().unwrap() as usize,
                i[1].as_u64().unwrap() as usize,
            );
            assert_eq!(
                cp_slice(text, s, e),
                format!("#{}", h["text"].as_str().unwrap())
            );
        }
        for m in ents["user_mentions"].as_array().unwrap() {
            let i = m["indices"].as_array().unwrap();
            let (s, e) = (
                i[0].as_u64().unwrap() as usize,
                i[1].as_u64().unwrap() as usize,
            );
            assert_eq!(
                cp_slice(text, s, e),
                format!("@{}", m["screen_name"].as_str().unwrap())
            );
            assert_eq!(
                m["id"].as_u64().unwrap().to_string(),
                m["id_str"].as_str().unwrap()
            );
        }
        for u in ents["urls"].as_array().unwrap() {
            let i = u["indices"].as_array().unwrap();
            let (s, e) = (
                i[0].as_u64().unwrap() as usize,
                i[1].as_u64().unwrap() as usize,
            );
            assert_eq!(cp_slice(text, s, e), u["url"].as_str().unwrap());
        }
        for x in ents["symbols"].as_array().unwrap() {
            let i = x["indices"].as_array().unwrap();
            let (s, e) = (
                i[0].as_u64().unwrap() as usize,
                i[1].as_u64().unwrap() as usize,
            );
            assert_eq!(
                cp_slice(text, s, e),
                format!("${}", x["text"].as_str().unwrap())
            );
        }
        assert!(text.chars().count() <= MAX_CPS, "{text}");
    }

    #[test]
    fn tweets_are_valid_and_complete_with_exact_entity_indices() {
        let mut generator = TweetGen::with_corpus(corpus(), 1);
        let tweet_keys = TWEET_KEYS;
        let user_keys = [
            "id",
            "id_str",
            "name",
            "screen_name",
            "location",
            "url",
            "description",
            "protected",
            "verified",
            "followers_count",
            "friends_count",
            "listed_count",
            "favourites_count",
            "statuses_count",
            "created_at",
            "utc_offset",
            "time_zone",
            "geo_enabled",
            "lang",
            "contributors_enabled",
            "is_translator",
            "profile_background_color",
            "profile_image_url_https",
            "default_profile",
            "default_profile_image",
            "following",
            "follow_request_sent",
            "notifications",
        ];
        for t in tweets(&mut generator, 2_000) {
            for k in tweet_keys {
                assert!(t.get(k).is_some(), "missing {k} in {t}");
            }
            for k in user_keys {
                assert!(t["user"].get(k).is_some(), "missing user.{k}");
            }
            assert_eq!(
                t["id"].as_u64().unwrap().to_string(),
                t["id_str"].as_str().unwrap()
            );
            check_entities(&t);
            if let Some(rt) = t.get("retweeted_status") {
                check_entities(rt);
                assert!(rt["retweet_count"].as_u64().unwrap() > 0);
                assert!(rt["user"]["id"].is_u64());
                assert!(t["text"].as_str().unwrap().starts_with("RT @"));
                assert_eq!(t["retweet_count"], 0);
            }
        }
    }

    /// The keys of the outermost object of `json`, in order.
    fn top_keys(json: &[u8]) -> Vec<String> {
        let (mut depth, mut in_str, mut esc) = (0, false, false);
        let mut keys = Vec::new();
        let mut start = None;
        for (i, &b) in json.iter().enumerate() {
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                    if let Some(s) = start.take() {
                        if json.get(i + 1) == Some(&b':') {
                            keys.push(String::from_utf8(json[s..i].to_vec()).unwrap());
                        }
                    }
                }
                continue;
            }
            match b {
                b'"' => {
                    in_str = true;
                    if depth == 1 {
                        start = Some(i + 1);
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        keys
    }

    #[test]
    fn keys_come_in_twitter_order() {
        let mut generator = TweetGen::with_corpus(corpus(), 2);
        let mut out = Vec::new();
        let mut retweets = 0;
        for i in 0..300 {
            out.clear();
            generator.tweet_at(i, &mut out);
            let mut keys = top_keys(&out);
            keys.retain(|k| k != "possibly_sensitive");
            let rt = keys.iter().any(|k| k == "retweeted_status");
            retweets += usize::from(rt);
            let mut expected = TWEET_KEYS.to_vec();
            if rt {
                expected.insert(16, "retweeted_status");
            }
            assert_eq!(keys, expected);
            let v: Value = serde_json::from_slice(&out).unwrap();
            let user = serde_json::to_vec(&v["user"]).unwrap();
            let ukeys = top_keys(&user);
            // serde_json sorts keys; check the set instead, and the order on the raw text.
            assert!(ukeys.len() >= 37, "{ukeys:?}");
            let raw = String::from_utf8(out.clone()).unwrap();
            let u = raw.find("\"user\":{").unwrap();
            let ukeys_raw = top_keys(&raw.as_bytes()[u + 7..]);
            assert_eq!(
                &ukeys_raw[..10],
                &[
                    "id",
                    "id_str",
                    "name",
                    "screen_name",
                    "location",
                    "url",
                    "description",
                    "protected",
                    "verified",
                    "followers_count",
                ]
            );
            assert_eq!(ukeys_raw.last().map(String::as_str), Some("notifications"));
        }
        assert!(retweets > 50);
    }

    #[test]
    fn deterministic_per_seed_and_stream() {
        let c = corpus();
        let a = tweets(&mut TweetGen::with_corpus(Arc::clone(&c), 1), 50);
        let b = tweets(&mut TweetGen::with_corpus(Arc::clone(&c), 1), 50);
        let s2 = tweets(&mut TweetGen::with_corpus(Arc::clone(&c), 2), 50);
        let other = tweets(
            &mut TweetGen::with_corpus(Arc::new(Corpus::with_users(12, 2_000)), 1),
            50,
        );
        assert_eq!(a, b);
        assert_ne!(a, s2);
        assert_ne!(a, other);
        // Random access: event 37 alone equals event 37 of the sequence.
        let mut g = TweetGen::with_corpus(c, 1);
        let mut out = Vec::new();
        g.tweet_at(37, &mut out);
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), a[37]);
    }

    #[test]
    fn payload_is_exact() {
        let mut generator = TweetGen::with_corpus(corpus(), 1);
        let mut p = Vec::new();
        generator.payload_at(5, 16_523_062_290_197, &mut p);
        assert!(p.starts_with(b"{\"message\": {\"tweet\": {\"created_at\":\""));
        assert!(p.ends_with(b"}, \"unix_timestamp_100us\": 16523062290197}}"));
        let v: Value = serde_json::from_slice(&p).unwrap();
        assert!(v["message"]["tweet"]["id"].is_u64());
    }

    #[test]
    fn event_size_is_about_two_kilobytes() {
        let mut generator = TweetGen::with_corpus(Arc::new(Corpus::new(3)), 1);
        let mut out = Vec::new();
        let n = 5_000u64;
        let mut total = 0;
        for i in 0..n {
            out.clear();
            generator.payload_at(i, 0, &mut out);
            total += out.len();
        }
        let mean = total as f64 / n as f64;
        assert!(
            (1_700.0..3_000.0).contains(&mean),
            "mean payload {mean} bytes"
        );
    }

    #[test]
    fn kills_and_malformed_events() {
        let mut generator = TweetGen::with_corpus(corpus(), 1);
        let mut out = Vec::new();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for i in 0..4_000 {
            out.clear();
            let kind = generator.event_at(i, 1, Some(100), Some(20), &mut out);
            *kinds.entry(format!("{kind:?}")).or_default() += 1;
            let parsed = serde_json::from_slice::<Value>(&out);
            match kind {
                EventKind::Kill => assert_eq!(out, KILL_PAYLOAD),
                EventKind::Tweet => {
                    assert!(parsed.unwrap()["message"]["tweet"]["user"]["id"].is_u64())
                }
                EventKind::Malformed(Malformed::TruncatedJson | Malformed::NotJson) => {
                    assert!(parsed.is_err());
                    assert!(std::str::from_utf8(&out).is_ok());
                    assert!(!out.contains(&b'\n'));
                }
                EventKind::Malformed(Malformed::MissingUser) => {
                    let t = &parsed.unwrap()["message"]["tweet"];
                    assert!(t.get("user").is_none() && t["id"].is_u64());
                }
                EventKind::Malformed(Malformed::WrongTypes) => {
                    let t = &parsed.unwrap()["message"]["tweet"];
                    assert!(t["id"].is_string());
                    assert!(t["text"].is_u64());
                    assert!(t["user"]["followers_count"].is_string());
                    assert!(t["entities"]["hashtags"].is_object());
                }
            }
        }
        assert!((20..70).contains(&kinds["Kill"]), "{kinds:?}");
        for m in Malformed::ALL {
            let n = kinds
                .get(&format!("Malformed({m:?})"))
                .copied()
                .unwrap_or(0);
            assert!(n > 20, "{m:?}: {kinds:?}");
        }
        // The tweets do not depend on the knobs.
        let mut a = Vec::new();
        let mut b = Vec::new();
        let i = (0..4_000)
            .find(|&i| {
                a.clear();
                generator.event_at(i, 1, Some(100), Some(20), &mut a) == EventKind::Tweet
            })
            .unwrap();
        generator.payload_at(i, 1, &mut b);
        assert_eq!(a, b);
    }
}
