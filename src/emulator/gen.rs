//! The tweet generator: synthetic Twitter v1.1 statuses of April 2016.
//!
//! A [`Corpus`] is built once per seed: a population of users (their JSON
//! precomputed around the counters), a pool of popular original tweets that
//! retweets point at, a Zipf-ranked hashtag list and the vocabulary. A
//! [`TweetGen`] writes event number `index` of one stream from the corpus and a
//! per-event random generator seeded from `(seed, stream, index)`, so any event
//! can be produced on its own (that is how `Last-Event-ID` resumes) and the
//! same seed always gives the same tweets.
//!
//! Everything is written by hand into a caller's reused `Vec<u8>`; generating
//! an event allocates nothing once the buffers have grown.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::json::{push_i64, push_str, push_twitter_date, push_u64, push_u64_str, Escape};
use super::vocab;

/// `timestamp_ms` of event 0: Mon Apr 18 19:30:47.658 UTC 2016.
pub const BASE_TIMESTAMP_MS: u64 = 1_461_007_847_658;
/// Virtual time between two events of a stream in `timestamp_ms` (about the
/// pace of the 2016 sample stream).
pub const MS_PER_EVENT: u64 = 20;
/// Twitter's snowflake epoch.
const TWEPOCH_MS: u64 = 1_288_834_974_657;

/// The data of a kill event, byte for byte (not valid JSON, as on the real server).
pub const KILL_PAYLOAD: &[u8] = b"{\"message\": panic}";

/// Default number of users in the population.
pub const DEFAULT_USERS: usize = 10_000;
/// Number of popular originals that retweets point at.
const ORIGINALS: usize = 1_500;
/// Number of hashtags (the named ones plus a synthetic tail).
const HASHTAG_COUNT: usize = 2_000;
/// Default share of retweets among tweet events.
pub const DEFAULT_RETWEET_SHARE: f64 = 1.0 / 3.0;

/// Mixes a seed with a number (SplitMix64 finaliser).
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one stream (1 or 2, or any other number) derived from the base seed.
pub fn stream_seed(seed: u64, stream: u32) -> u64 {
    mix(mix(seed, 0x5354_5245_414d), u64::from(stream))
}

/// Cumulative weights for sampling an index.
#[derive(Debug, Clone)]
struct Cdf(Vec<f64>);

impl Cdf {
    fn new(weights: impl IntoIterator<Item = f64>) -> Cdf {
        let mut acc = 0.0;
        Cdf(weights
            .into_iter()
            .map(|w| {
                acc += w.max(0.0);
                acc
            })
            .collect())
    }

    /// Zipf-like weights `1 / (rank + offset)^s`.
    fn zipf(n: usize, s: f64, offset: f64) -> Cdf {
        Cdf::new((0..n).map(|i| 1.0 / (i as f64 + offset).powf(s)))
    }

    fn sample(&self, rng: &mut SmallRng) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        let x = rng.gen::<f64>() * total;
        self.0
            .partition_point(|&c| c <= x)
            .min(self.0.len().saturating_sub(1))
    }
}

fn normal(rng: &mut SmallRng) -> f64 {
    rng.sample(StandardNormal)
}

fn lognormal(rng: &mut SmallRng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * normal(rng)).exp()
}

fn pick_any<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn pick(rng: &mut SmallRng, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

/// A user of the population: JSON precomputed before and after the counters.
#[derive(Debug, Clone)]
struct UserRec {
    id: u64,
    screen_name: String,
    name: String,
    lang: usize,
    /// `{"id":...` up to and including `"followers_count":`.
    head: Vec<u8>,
    followers: u64,
    friends: u64,
    listed: u64,
    favourites: u64,
    statuses: u64,
    /// From `,"created_at":` to the closing brace.
    tail: Vec<u8>,
}

impl UserRec {
    /// Appends the user object; `statuses_count` grows with `index`.
    fn write(&self, out: &mut Vec<u8>, index: u64) {
        out.extend_from_slice(&self.head);
        push_u64(out, self.followers);
        out.extend_from_slice(b",\"friends_count\":");
        push_u64(out, self.friends);
        out.extend_from_slice(b",\"listed_count\":");
        push_u64(out, self.listed);
        out.extend_from_slice(b",\"favourites_count\":");
        push_u64(out, self.favourites + index / 4096);
        out.extend_from_slice(b",\"statuses_count\":");
        push_u64(out, self.statuses + index / 2048);
        out.extend_from_slice(&self.tail);
    }
}

/// A popular original tweet, retweeted again and again.
#[derive(Debug, Clone)]
struct Original {
    /// `{"created_at":...` up to and including `"retweet_count":`.
    head: Vec<u8>,
    /// From `,"entities":` to the closing brace.
    tail: Vec<u8>,
    base_retweets: u64,
    /// Retweets gained per 1,000 events of a stream.
    growth: f64,
    fav_ratio: f64,
    /// The retweet's text (`RT @name: ...`, cut to 140 code points) and its entities.
    rt_text: String,
    rt_entities: Vec<u8>,
    lang: usize,
}

impl Original {
    fn write(&self, out: &mut Vec<u8>, index: u64) {
        let rts = self.base_retweets + (self.growth * index as f64 / 1000.0) as u64;
        out.extend_from_slice(&self.head);
        push_u64(out, rts);
        out.extend_from_slice(b",\"favorite_count\":");
        push_u64(out, (rts as f64 * self.fav_ratio) as u64);
        out.extend_from_slice(&self.tail);
    }
}

/// Entities found while a text is built (indices in code points).
#[derive(Debug, Default, Clone)]
struct Text {
    text: String,
    cps: usize,
    hashtags: Vec<(usize, bool, usize, usize)>,
    mentions: Vec<(usize, usize, usize)>,
    urls: Vec<([u8; 10], usize, usize, usize)>,
    symbols: Vec<(usize, usize, usize)>,
    sentiment_words: usize,
}

const MAX_CPS: usize = 140;
const URL_DOMAINS: &[&str] = &[
    "instagram.com/p",
    "youtu.be",
    "fb.me",
    "bit.ly",
    "spoti.fi",
    "nyti.ms",
    "twitter.com/i/web/status",
    "careerarc.com/job",
];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Text {
    fn clear(&mut self) {
        self.text.clear();
        self.cps = 0;
        self.hashtags.clear();
        self.mentions.clear();
        self.urls.clear();
        self.symbols.clear();
        self.sentiment_words = 0;
    }

    fn room(&self, cps: usize) -> bool {
        self.cps + cps <= MAX_CPS
    }

    /// Appends `sep` (unless the text is empty) then `s`, if it fits.
    fn push(&mut self, sep: &str, s: &str) -> Option<usize> {
        let sep = if self.text.is_empty() { "" } else { sep };
        let n = sep.chars().count() + s.chars().count();
        if !self.room(n) {
            return None;
        }
        self.text.push_str(sep);
        self.cps += sep.chars().count();
        let start = self.cps;
        self.text.push_str(s);
        self.cps += n - sep.chars().count();
        Some(start)
    }

    fn push_prefixed(&mut self, sep: &str, prefix: char, s: &str, lower: bool) -> Option<usize> {
        let sep = if self.text.is_empty() { "" } else { sep };
        let n = sep.chars().count() + 1 + s.chars().count();
        if !self.room(n) {
            return None;
        }
        self.text.push_str(sep);
        self.cps += sep.chars().count();
        let start = self.cps;
        self.text.push(prefix);
        if lower {
            self.text.extend(s.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            self.text.push_str(s);
        }
        self.cps += 1 + s.chars().count();
        Some(start)
    }
}

/// Everything a seed determines once: users, popular originals, hashtags, words.
///
/// Build it once (`Corpus::new`) and share it (`Arc`) between the generators
/// of all streams and connections.
#[derive(Debug)]
pub struct Corpus {
    seed: u64,
    users: Vec<UserRec>,
    authors: Cdf,
    originals: Vec<Original>,
    original_pick: Cdf,
    hashtags: Vec<String>,
    hashtag_pick: Cdf,
    languages: Cdf,
    afinn_words: Vec<&'static str>,
    afinn_phrases: Vec<&'static str>,
    places: Vec<Vec<u8>>,
}

impl Corpus {
    /// Builds the corpus of `seed` with the default population size.
    pub fn new(seed: u64) -> Corpus {
        Corpus::with_users(seed, DEFAULT_USERS)
    }

    /// Builds the corpus of `seed` with `users` users (at least 10).
    pub fn with_users(seed: u64, users: usize) -> Corpus {
        let users = users.max(10);
        let mut rng = SmallRng::seed_from_u64(mix(seed, 0xC0_4B_05));
        let (afinn_words, afinn_phrases) = afinn_entries();

        let mut hashtags: Vec<String> = vocab::HASHTAGS.iter().map(|s| s.to_string()).collect();
        while hashtags.len() < HASHTAG_COUNT {
            let mut tag = String::new();
            for _ in 0..rng.gen_range(2..4) {
                let syl = pick(&mut rng, vocab::SYLLABLES);
                let mut cs = syl.chars();
                if let Some(first) = cs.next() {
                    tag.push(first.to_ascii_uppercase());
                    tag.extend(cs);
                }
            }
            if rng.gen_bool(0.3) {
                tag.push_str(&rng.gen_range(1..100u32).to_string());
            }
            if !hashtags.contains(&tag) {
                hashtags.push(tag);
            }
        }

        let languages = Cdf::new(vocab::LANGUAGES.iter().map(|l| f64::from(l.weight)));
        let mut corpus = Corpus {
            seed,
            users: Vec::with_capacity(users),
            authors: Cdf::new((0..users).map(|i| 1.0 / (i as f64 + 10.0).powf(0.8))),
            originals: Vec::with_capacity(ORIGINALS),
            original_pick: Cdf::zipf(ORIGINALS, 1.0, 3.0),
            hashtags,
            hashtag_pick: Cdf::zipf(HASHTAG_COUNT, 1.05, 1.0),
            languages,
            afinn_words,
            afinn_phrases,
            places: vocab::PLACES.iter().map(place_json).collect(),
        };

        let mut names = std::collections::HashSet::new();
        for i in 0..users {
            let user = corpus.make_user(&mut rng, i, &mut names);
            corpus.users.push(user);
        }

        // Originals are written by the most followed users.
        let mut by_followers: Vec<usize> = (0..users).collect();
        by_followers.sort_by_key(|&i| std::cmp::Reverse(corpus.users[i].followers));
        let popular = &by_followers[..(users / 20).max(5)];
        let popular_pick = Cdf::zipf(popular.len(), 0.7, 2.0);
        let mut text = Text::default();
        let mut scratch = Vec::new();
        for rank in 0..ORIGINALS {
            let author = popular[popular_pick.sample(&mut rng)];
            let original = corpus.make_original(&mut rng, rank, author, &mut text, &mut scratch);
            corpus.originals.push(original);
        }
        corpus
    }

    /// The seed this corpus was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of users in the population.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    fn make_user(
        &self,
        rng: &mut SmallRng,
        i: usize,
        names: &mut std::collections::HashSet<String>,
    ) -> UserRec {
        let lang = self.languages.sample(rng);
        let language = &vocab::LANGUAGES[lang];
        let created_s = rng.gen_range(1_173_000_000i64..1_460_000_000);
        let id: u64 = if created_s < 1_350_000_000 {
            rng.gen_range(1_000_000u64..1_800_000_000) + (created_s as u64 - 1_173_000_000) * 10
        } else {
            ((created_s as u64 * 1000 - TWEPOCH_MS) << 22) | rng.gen_range(0..1u64 << 22)
        };

        let mut screen_name = String::new();
        loop {
            screen_name.clear();
            for _ in 0..rng.gen_range(2..4) {
                screen_name.push_str(pick(rng, vocab::SYLLABLES));
            }
            if rng.gen_bool(0.3) {
                screen_name.push('_');
            }
            if rng.gen_bool(0.5) || names.contains(&screen_name) {
                screen_name.push_str(&(i % 10_000).to_string());
            }
            if rng.gen_bool(0.2) {
                let mut cs: Vec<char> = screen_name.chars().collect();
                cs[0] = cs[0].to_ascii_uppercase();
                screen_name = cs.into_iter().collect();
            }
            screen_name.truncate(15);
            if names.insert(screen_name.to_ascii_lowercase()) {
                break;
            }
        }

        let mut name = pick(rng, vocab::NAMES).to_string();
        if rng.gen_bool(0.3) {
            name.push(' ');
            name.push(char::from(b'A' + rng.gen_range(0..26u8)));
            name.push('.');
        }
        if rng.gen_bool(0.15) {
            name.push(' ');
            name.push_str(pick(rng, vocab::EMOJI));
        }

        let star = rng.gen_bool(0.01);
        let followers = if rng.gen_bool(0.04) {
            0
        } else if star {
            lognormal(rng, 13.0, 1.5).min(90_000_000.0) as u64
        } else {
            lognormal(rng, 5.5, 1.8).min(5_000_000.0) as u64
        };
        let friends = lognormal(rng, 5.6, 1.2).min(200_000.0) as u64;
        let listed = followers / rng.gen_range(40..600);
        let favourites = lognormal(rng, 7.0, 2.0) as u64;
        let statuses = lognormal(rng, 8.5, 1.5) as u64 + 1;
        let verified = followers > 300_000 && rng.gen_bool(0.6);
        let default_profile = rng.gen_bool(0.4);
        let default_image = rng.gen_bool(0.03);

        let mut h = Vec::with_capacity(600);
        h.extend_from_slice(b"{\"id\":");
        push_u64(&mut h, id);
        h.extend_from_slice(b",\"id_str\":");
        push_u64_str(&mut h, id);
        h.extend_from_slice(b",\"name\":");
        push_str(&mut h, &name, Escape::Utf8);
        h.extend_from_slice(b",\"screen_name\":");
        push_str(&mut h, &screen_name, Escape::Utf8);
        h.extend_from_slice(b",\"location\":");
        let location = pick(rng, vocab::LOCATIONS);
        if location.is_empty() && rng.gen_bool(0.5) {
            h.extend_from_slice(b"null");
        } else {
            push_str(&mut h, location, Escape::Utf8);
        }
        h.extend_from_slice(b",\"url\":");
        if rng.gen_bool(0.3) {
            let url = format!(
                "http://{}/{}",
                pick(
                    rng,
                    &[
                        "instagram.com",
                        "youtube.com/c",
                        "facebook.com",
                        "tumblr.com"
                    ]
                ),
                screen_name.to_ascii_lowercase()
            );
            push_str(&mut h, &url, Escape::Utf8);
        } else {
            h.extend_from_slice(b"null");
        }
        h.extend_from_slice(b",\"description\":");
        if rng.gen_bool(0.6) {
            let desc = self.description(rng, lang);
            push_str(&mut h, &desc, Escape::Utf8);
        } else {
            h.extend_from_slice(b"null");
        }
        h.extend_from_slice(b",\"protected\":false,\"verified\":");
        h.extend_from_slice(if verified { b"true" } else { b"false" });
        h.extend_from_slice(b",\"followers_count\":");

        let mut t = Vec::with_capacity(800);
        t.extend_from_slice(b",\"created_at\":\"");
        push_twitter_date(&mut t, created_s);
        t.extend_from_slice(b"\",\"utc_offset\":");
        if rng.gen_bool(0.7) {
            let (zone, offset) = pick_any(rng, language.zones);
            push_i64(&mut t, i64::from(*offset));
            t.extend_from_slice(b",\"time_zone\":");
            push_str(&mut t, zone, Escape::Utf8);
        } else {
            t.extend_from_slice(b"null,\"time_zone\":null");
        }
        t.extend_from_slice(b",\"geo_enabled\":");
        t.extend_from_slice(if rng.gen_bool(0.4) { b"true" } else { b"false" });
        t.extend_from_slice(b",\"lang\":");
        push_str(&mut t, language.code, Escape::Utf8);
        t.extend_from_slice(b",\"contributors_enabled\":false,\"is_translator\":false");
        let (bg, link, border, fill, textc) = if default_profile {
            ("C0DEED", "0084B4", "C0DEED", "DDEEF6", "333333")
        } else {
            (
                pick(rng, vocab::COLOURS),
                pick(rng, vocab::COLOURS),
                pick(rng, vocab::COLOURS),
                pick(rng, vocab::COLOURS),
                pick(rng, vocab::COLOURS),
            )
        };
        let theme = if default_profile {
            1
        } else {
            rng.gen_range(1..20)
        };
        t.extend_from_slice(b",\"profile_background_color\":\"");
        t.extend_from_slice(bg.as_bytes());
        for scheme in ["http", "https"] {
            let key: &[u8] = if scheme == "http" {
                b"\",\"profile_background_image_url\":\""
            } else {
                b"\",\"profile_background_image_url_https\":\""
            };
            t.extend_from_slice(key);
            t.extend_from_slice(scheme.as_bytes());
            t.extend_from_slice(b"://abs.twimg.com/images/themes/theme");
            push_u64(&mut t, theme);
            t.extend_from_slice(b"/bg.png");
        }
        t.extend_from_slice(b"\",\"profile_background_tile\":");
        t.extend_from_slice(if rng.gen_bool(0.2) { b"true" } else { b"false" });
        for (key, colour) in [
            ("profile_link_color", link),
            ("profile_sidebar_border_color", border),
            ("profile_sidebar_fill_color", fill),
            ("profile_text_color", textc),
        ] {
            t.extend_from_slice(b",\"");
            t.extend_from_slice(key.as_bytes());
            t.extend_from_slice(b"\":\"");
            t.extend_from_slice(colour.as_bytes());
            t.push(b'"');
        }
        t.extend_from_slice(b",\"profile_use_background_image\":true");
        let image_id: u64 = rng.gen_range(500_000_000_000_000_000..722_000_000_000_000_000);
        let mut image_name = [0u8; 8];
        for b in &mut image_name {
            *b = ALNUM[rng.gen_range(0..ALNUM.len())];
        }
        let default_n = rng.gen_range(0..7u64);
        for scheme in ["http", "https"] {
            t.extend_from_slice(if scheme == "http" {
                b",\"profile_image_url\":\"http"
            } else {
                b",\"profile_image_url_https\":\"https"
            });
            if default_image {
                t.extend_from_slice(
                    b"://abs.twimg.com/sticky/default_profile_images/default_profile_",
                );
                push_u64(&mut t, default_n);
                t.extend_from_slice(b"_normal.png\"");
            } else {
                t.extend_from_slice(b"://pbs.twimg.com/profile_images/");
                push_u64(&mut t, image_id);
                t.push(b'/');
                t.extend_from_slice(&image_name);
                t.extend_from_slice(b"_normal.jpg\"");
            }
        }
        if rng.gen_bool(0.4) {
            t.extend_from_slice(
                b",\"profile_banner_url\":\"https://pbs.twimg.com/profile_banners/",
            );
            push_u64(&mut t, id);
            t.push(b'/');
            push_u64(&mut t, rng.gen_range(created_s as u64..1_461_000_000));
            t.push(b'"');
        }
        t.extend_from_slice(b",\"default_profile\":");
        t.extend_from_slice(if default_profile { b"true" } else { b"false" });
        t.extend_from_slice(b",\"default_profile_image\":");
        t.extend_from_slice(if default_image { b"true" } else { b"false" });
        t.extend_from_slice(
            b",\"following\":null,\"follow_request_sent\":null,\"notifications\":null}",
        );

        UserRec {
            id,
            screen_name,
            name,
            lang,
            head: h,
            followers,
            friends,
            listed,
            favourites,
            statuses,
            tail: t,
        }
    }

    fn description(&self, rng: &mut SmallRng, lang: usize) -> String {
        let language = &vocab::LANGUAGES[lang];
        let sep = if language.spaced { " " } else { "" };
        let mut d = String::new();
        for k in 0..rng.gen_range(2..9) {
            if k > 0 {
                d.push_str(sep);
            }
            match rng.gen_range(0..20) {
                0 => d.push_str(pick(rng, vocab::EMOJI)),
                1 => d.push_str(" | "),
                2 => d.push('\n'),
                3 => {
                    d.push('"');
                    d.push_str(pick(rng, language.words));
                    d.push('"');
                }
                4 | 5 => d.push_str(pick(rng, vocab::COMMON_SENTIMENT)),
                _ => d.push_str(pick(rng, language.words)),
            }
        }
        d
    }

    fn make_original(
        &self,
        rng: &mut SmallRng,
        rank: usize,
        author: usize,
        text: &mut Text,
        scratch: &mut Vec<u8>,
    ) -> Original {
        let user = &self.users[author];
        let lang = user.lang;
        let created_ms = BASE_TIMESTAMP_MS - rng.gen_range(60_000..3 * 86_400_000);
        let id = snowflake(created_ms, rng.gen_range(0..1024), rng.gen_range(0..4096));
        self.build_text(rng, lang, None, text);
        let mode = if rng.gen_bool(0.25) {
            Escape::Ascii
        } else {
            Escape::Utf8
        };

        let mut h = Vec::with_capacity(2000);
        h.extend_from_slice(b"{\"created_at\":\"");
        push_twitter_date(&mut h, (created_ms / 1000) as i64);
        h.extend_from_slice(b"\",\"id\":");
        push_u64(&mut h, id);
        h.extend_from_slice(b",\"id_str\":");
        push_u64_str(&mut h, id);
        h.extend_from_slice(b",\"text\":");
        push_str(&mut h, &text.text, mode);
        h.extend_from_slice(b",\"source\":");
        push_str(&mut h, pick(rng, vocab::SOURCES), Escape::Utf8);
        h.extend_from_slice(
            b",\"truncated\":false,\"in_reply_to_status_id\":null,\"in_reply_to_status_id_str\":null,\
\"in_reply_to_user_id\":null,\"in_reply_to_user_id_str\":null,\"in_reply_to_screen_name\":null,\"user\":",
        );
        user.write(&mut h, 0);
        h.extend_from_slice(
            b",\"geo\":null,\"coordinates\":null,\"place\":null,\"contributors\":null,\
\"is_quote_status\":false,\"retweet_count\":",
        );
        let mut t = Vec::with_capacity(600);
        t.extend_from_slice(b",\"entities\":");
        self.write_entities(&mut t, text);
        t.extend_from_slice(b",\"favorited\":false,\"retweeted\":false");
        if !text.urls.is_empty() {
            t.extend_from_slice(b",\"possibly_sensitive\":false");
        }
        t.extend_from_slice(b",\"lang\":");
        push_str(&mut t, vocab::LANGUAGES[lang].code, Escape::Utf8);
        t.push(b'}');

        // The retweet's text: "RT @author: " + text, cut to 140 code points.
        let prefix = format!("RT @{}: ", user.screen_name);
        let prefix_cps = prefix.chars().count();
        let mut rt = Text::default();
        rt.text.push_str(&prefix);
        rt.cps = prefix_cps;
        rt.mentions
            .push((author, 3, 4 + user.screen_name.chars().count()));
        let budget = MAX_CPS.saturating_sub(prefix_cps);
        let body_cps = text.cps;
        let cut = if body_cps > budget {
            budget.saturating_sub(1)
        } else {
            body_cps
        };
        rt.text.extend(text.text.chars().take(cut));
        if cut < body_cps {
            rt.text.push('…');
        }
        rt.cps = rt.text.chars().count();
        let fits = |end: usize| end <= cut;
        rt.hashtags.extend(
            text.hashtags
                .iter()
                .filter(|h| fits(h.3))
                .map(|&(i, l, s, e)| (i, l, s + prefix_cps, e + prefix_cps)),
        );
        rt.mentions.extend(
            text.mentions
                .iter()
                .filter(|m| fits(m.2))
                .map(|&(u, s, e)| (u, s + prefix_cps, e + prefix_cps)),
        );
        rt.urls.extend(
            text.urls
                .iter()
                .filter(|u| fits(u.3))
                .map(|&(c, d, s, e)| (c, d, s + prefix_cps, e + prefix_cps)),
        );
        rt.symbols.extend(
            text.symbols
                .iter()
                .filter(|x| fits(x.2))
                .map(|&(i, s, e)| (i, s + prefix_cps, e + prefix_cps)),
        );
        scratch.clear();
        self.write_entities(scratch, &rt);

        // Heavy-tailed popularity, higher ranks (picked more often) bigger.
        let base_retweets =
            (lognormal(rng, 5.0, 1.8) * (1.0 + 30.0 / (rank as f64 + 1.0))) as u64 + 1;
        let growth = lognormal(rng, 1.5, 1.0) * (1.0 + 50.0 / (rank as f64 + 1.0));
        Original {
            head: h,
            tail: t,
            base_retweets,
            growth,
            fav_ratio: rng.gen_range(0.3..3.0),
            rt_text: rt.text,
            rt_entities: scratch.clone(),
            lang,
        }
    }

    /// Builds the text of a tweet in language `lang` into `t`.
    fn build_text(&self, rng: &mut SmallRng, lang: usize, reply_to: Option<usize>, t: &mut Text) {
        t.clear();
        let language = &vocab::LANGUAGES[lang];
        let english = language.code == "en";
        let sep = if language.spaced { " " } else { "" };
        if let Some(u) = reply_to {
            let sn = &self.users[u].screen_name;
            if let Some(s) = t.push_prefixed(" ", '@', sn, false) {
                t.mentions.push((u, s, t.cps));
            }
        }
        let target = match rng.gen_range(0..10) {
            0..=3 => rng.gen_range(15..60),
            4..=7 => rng.gen_range(60..110),
            _ => rng.gen_range(110..=MAX_CPS),
        };
        let sentiment_p = if english { 0.22 } else { 0.1 };
        let mut words = 0;
        // Most English tweets are one or two short sentences from templates.
        let mut target = target;
        if english && rng.gen_bool(0.75) {
            if rng.gen_bool(0.7) {
                target = 0; // the sentences are the tweet
            }
            for _ in 0..rng.gen_range(1..=2) {
                if !self.fill_template(rng, t) {
                    break;
                }
                words += 1;
                if rng.gen_bool(0.3) {
                    t.push("", pick(rng, &["!", ".", "...", " 😂", "!!", " lol"]));
                }
            }
        }
        while t.cps < target {
            let r: f64 = rng.gen();
            let pushed = if r < sentiment_p {
                let w = if rng.gen_bool(0.02) {
                    pick(rng, &self.afinn_phrases)
                } else if rng.gen_bool(0.7) {
                    pick(rng, vocab::COMMON_SENTIMENT)
                } else {
                    pick(rng, &self.afinn_words)
                };
                let ok = t.push(" ", w).is_some();
                t.sentiment_words += usize::from(ok);
                ok
            } else if r < sentiment_p + 0.015 && words > 0 {
                t.push(" ", "&amp;").is_some()
            } else if r < sentiment_p + 0.025 && words > 0 {
                t.push("", "\n").is_some()
            } else if r < sentiment_p + 0.03 {
                let q = format!("\"{}\"", pick(rng, language.words));
                t.push(sep, &q).is_some()
            } else if r < sentiment_p + 0.035 {
                t.push(" ", pick(rng, &["¯\\_(ツ)_/¯", "\\o/", "C:\\Users"]))
                    .is_some()
            } else if r < sentiment_p + 0.05 {
                t.push(sep, pick(rng, vocab::EMOJI)).is_some()
            } else if r < sentiment_p + 0.06 {
                let u = self.authors.sample(rng);
                let sn = &self.users[u].screen_name;
                match t.push_prefixed(" ", '@', sn, false) {
                    Some(s) => {
                        t.mentions.push((u, s, t.cps));
                        true
                    }
                    None => false,
                }
            } else {
                t.push(sep, pick(rng, language.words)).is_some()
            };
            if !pushed {
                break;
            }
            words += 1;
            // Punctuation stuck to the word, as people type it.
            if rng.gen_bool(0.08) {
                t.push("", pick(rng, &["!", ",", ".", "?", "!!", "...", ":)"]));
            }
        }
        // English tweets always carry a lexicon word; most others borrow one
        // ("lol", "love", ...), as tweets in any language do.
        if t.sentiment_words == 0 && (english || rng.gen_bool(0.75)) {
            let w = pick(rng, vocab::COMMON_SENTIMENT);
            if t.push(" ", w).is_some() {
                t.sentiment_words += 1;
            }
        }
        // Tail: hashtags, a cashtag, emoji, a link.
        let n_tags = match rng.gen_range(0..100) {
            0..=54 => 0,
            55..=84 => 1,
            85..=94 => 2,
            _ => 3,
        };
        for _ in 0..n_tags {
            let h = self.hashtag_pick.sample(rng);
            let lower = rng.gen_bool(0.1);
            if let Some(s) = t.push_prefixed(" ", '#', &self.hashtags[h], lower) {
                t.hashtags.push((h, lower, s, t.cps));
            }
        }
        if rng.gen_bool(0.01) {
            let i = rng.gen_range(0..vocab::SYMBOLS.len());
            if let Some(s) = t.push_prefixed(" ", '$', vocab::SYMBOLS[i], false) {
                t.symbols.push((i, s, t.cps));
            }
        }
        if rng.gen_bool(0.3) {
            for _ in 0..rng.gen_range(1..4) {
                let sep = if rng.gen_bool(0.5) { " " } else { "" };
                t.push(sep, pick(rng, vocab::EMOJI));
            }
        }
        if rng.gen_bool(0.2) {
            let mut code = [0u8; 10];
            for b in &mut code {
                *b = ALNUM[rng.gen_range(0..ALNUM.len())];
            }
            let domain = rng.gen_range(0..URL_DOMAINS.len());
            // "https://t.co/" + 10 characters = 23 code points.
            let mut url = String::with_capacity(23);
            url.push_str("https://t.co/");
            url.extend(code.iter().map(|&b| char::from(b)));
            if let Some(s) = t.push(" ", &url) {
                t.urls.push((code, domain, s, t.cps));
            }
        }
    }

    /// Appends one English template sentence; false when it did not fit.
    fn fill_template(&self, rng: &mut SmallRng, t: &mut Text) -> bool {
        let template = pick(rng, vocab::EN_TEMPLATES);
        let mark = (t.text.len(), t.cps, t.sentiment_words);
        for token in template.split(' ') {
            // A slot may carry punctuation after it: "{p}!!", "{time},".
            let (slot, suffix) = match (token.starts_with('{'), token.find('}')) {
                (true, Some(close)) => token.split_at(close + 1),
                _ => (token, ""),
            };
            let (word, sentiment) = match slot {
                "{s}" => {
                    let w = if rng.gen_bool(0.6) {
                        pick(rng, vocab::COMMON_SENTIMENT)
                    } else if rng.gen_bool(0.05) {
                        pick(rng, &self.afinn_phrases)
                    } else {
                        pick(rng, &self.afinn_words)
                    };
                    (w, true)
                }
                "{p}" => (pick(rng, vocab::COMMON_POSITIVE), true),
                "{n}" => (pick(rng, vocab::COMMON_NEGATIVE), true),
                "{love}" => ("love", true),
                "{hate}" => ("hate", true),
                "{noun}" => (pick(rng, vocab::EN_NOUNS), false),
                "{time}" => (pick(rng, vocab::EN_TIMES), false),
                literal => (literal, false),
            };
            let fits =
                t.push(" ", word).is_some() && (suffix.is_empty() || t.push("", suffix).is_some());
            if !fits {
                t.text.truncate(mark.0);
                t.cps = mark.1;
                t.sentiment_words = mark.2;
                return false;
            }
            t.sentiment_words += usize::from(sentiment);
        }
        true
    }

    fn write_entities(&self, out: &mut Vec<u8>, t: &Text) {
        out.extend_from_slice(b"{\"hashtags\":[");
        for (k, &(h, lower, s, e)) in t.hashtags.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":\"");
            let start = out.len();
            super::json::push_str_body(out, &self.hashtags[h], Escape::Utf8);
            if lower {
                out[start..].make_ascii_lowercase();
            }
            out.extend_from_slice(b"\",\"indices\":");
            push_indices(out, s, e);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"urls\":[");
        for (k, (code, domain, s, e)) in t.urls.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"url\":\"https://t.co/");
            out.extend_from_slice(code);
            out.extend_from_slice(b"\",\"expanded_url\":\"http://");
            out.extend_from_slice(URL_DOMAINS[*domain].as_bytes());
            out.push(b'/');
            out.extend_from_slice(code);
            out.extend_from_slice(b"\",\"display_url\":\"");
            out.extend_from_slice(URL_DOMAINS[*domain].as_bytes());
            out.push(b'/');
            out.extend_from_slice(&code[..6]);
            out.extend_from_slice("…\",\"indices\":".as_bytes());
            push_indices(out, *s, *e);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"user_mentions\":[");
        for (k, &(u, s, e)) in t.mentions.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let user = &self.users[u];
            out.extend_from_slice(b"{\"screen_name\":");
            push_str(out, &user.screen_name, Escape::Utf8);
            out.extend_from_slice(b",\"name\":");
            push_str(out, &user.name, Escape::Utf8);
            out.extend_from_slice(b",\"id\":");
            push_u64(out, user.id);
            out.extend_from_slice(b",\"id_str\":");
            push_u64_str(out, user.id);
            out.extend_from_slice(b",\"indices\":");
            push_indices(out, s, e);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"symbols\":[");
        for (k, &(i, s, e)) in t.symbols.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":\"");
            out.extend_from_slice(vocab::SYMBOLS[i].as_bytes());
            out.extend_from_slice(b"\",\"indices\":");
            push_indices(out, s, e);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
}

fn push_indices(out: &mut Vec<u8>, s: usize, e: usize) {
    out.push(b'[');
    push_u64(out, s as u64);
    out.push(b',');
    push_u64(out, e as u64);
    out.push(b']');
}

fn snowflake(ms: u64, worker: u64, seq: u64) -> u64 {
    ((ms - TWEPOCH_MS) << 22) | ((worker & 0x3ff) << 12) | (seq & 0xfff)
}

fn place_json(p: &vocab::PlaceRow) -> Vec<u8> {
    let &(id, name, full_name, kind, cc, country, lon, lat) = p;
    let mut o = Vec::new();
    o.extend_from_slice(b"{\"id\":\"");
    o.extend_from_slice(id.as_bytes());
    o.extend_from_slice(b"\",\"url\":\"https://api.twitter.com/1.1/geo/id/");
    o.extend_from_slice(id.as_bytes());
    o.extend_from_slice(b".json\",\"place_type\":");
    push_str(&mut o, kind, Escape::Utf8);
    o.extend_from_slice(b",\"name\":");
    push_str(&mut o, name, Escape::Utf8);
    o.extend_from_slice(b",\"full_name\":");
    push_str(&mut o, full_name, Escape::Utf8);
    o.extend_from_slice(b",\"country_code\":");
    push_str(&mut o, cc, Escape::Utf8);
    o.extend_from_slice(b",\"country\":");
    push_str(&mut o, country, Escape::Utf8);
    let (w, e, s, n) = (lon - 0.15, lon + 0.15, lat - 0.1, lat + 0.1);
    let bbox = format!(
        ",\"bounding_box\":{{\"type\":\"Polygon\",\"coordinates\":[[[{w:.6},{s:.6}],[{w:.6},{n:.6}],[{e:.6},{n:.6}],[{e:.6},{s:.6}]]]}},\"attributes\":{{}}}}"
    );
    o.extend_from_slice(bbox.as_bytes());
    o
}

/// The AFINN-111 single words and phrases, as static slices of the embedded list.
fn afinn_entries() -> (Vec<&'static str>, Vec<&'static str>) {
    let mut words = Vec::new();
    let mut phrases = Vec::new();
    for line in crate::score::AFINN_111.lines() {
        if let Some((w, score)) = line.split_once('\t') {
            // Score 0 entries ("some kind") add nothing to sentiment.
            if score.trim() == "0" {
                continue;
            }
            if w.contains(' ') {
                phrases.push(w);
            } else {
                words.push(w);
            }
        }
    }
    if words.is_empty() {
        words.push("good");
    }
    if phrases.is_empty() {
        phrases.push("cool stuff");
    }
    (words, phrases)
}

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
/// use tweetflow::emulator::{frame_event, TweetGen};
/// let mut gen = TweetGen::new(7);
/// let mut payload = Vec::new();
/// gen.next_payload(&mut payload);
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
            if d % k == 0 {
                out.extend_from_slice(KILL_PAYLOAD);
                return EventKind::Kill;
            }
        }
        if let Some(m) = malformed_every.filter(|&m| m > 0) {
            let d2 = mix(d, 0x4d41_4c46);
            if d2 % m == 0 {
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

/// The current Unix time in units of 100 µs (the server's `unix_timestamp_100us`).
pub fn unix_100us() -> u64 {
    crate::model::unix_micros() / 100
}

/// Appends one SSE event exactly as the real server frames it:
/// `event: "message"\n\ndata: <payload>\n\n`, with `id: N\n` before the `data:`
/// line when `id` is given (the `--ids` knob; the real server sends no ids).
pub fn frame_event(payload: &[u8], id: Option<u64>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: \"message\"\n\n");
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        push_u64(out, id);
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
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
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    fn corpus() -> Arc<Corpus> {
        Arc::new(Corpus::with_users(11, 2_000))
    }

    fn tweets(gen: &mut TweetGen, n: u64) -> Vec<Value> {
        let mut out = Vec::new();
        (0..n)
            .map(|i| {
                out.clear();
                gen.tweet_at(i, &mut out);
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
        let mut gen = TweetGen::with_corpus(corpus(), 1);
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
        for t in tweets(&mut gen, 2_000) {
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
        let mut gen = TweetGen::with_corpus(corpus(), 2);
        let mut out = Vec::new();
        let mut retweets = 0;
        for i in 0..300 {
            out.clear();
            gen.tweet_at(i, &mut out);
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
    fn population_statistics_are_realistic() {
        let mut gen = TweetGen::with_corpus(corpus(), 1);
        let sample = tweets(&mut gen, 6_000);
        let retweets = sample
            .iter()
            .filter(|t| t.get("retweeted_status").is_some())
            .count();
        let share = retweets as f64 / sample.len() as f64;
        assert!((0.28..0.39).contains(&share), "retweet share {share}");

        let mut per_user: HashMap<u64, usize> = HashMap::new();
        let mut followers = Vec::new();
        for t in &sample {
            *per_user
                .entry(t["user"]["id"].as_u64().unwrap())
                .or_default() += 1;
            followers.push(t["user"]["followers_count"].as_u64().unwrap());
        }
        let recurring = per_user.values().filter(|&&n| n > 1).count();
        assert!(recurring > 200, "only {recurring} users tweet twice");
        followers.sort_unstable();
        assert_eq!(followers[0], 0, "some users have no followers");
        let median = followers[followers.len() / 2];
        let max = *followers.last().unwrap();
        assert!(
            max > 1000 * median.max(1),
            "heavy tail: median {median} max {max}"
        );

        // Popular originals are retweeted again with growing counts.
        let mut seen: HashMap<u64, Vec<u64>> = HashMap::new();
        for t in &sample {
            if let Some(rt) = t.get("retweeted_status") {
                seen.entry(rt["id"].as_u64().unwrap())
                    .or_default()
                    .push(rt["retweet_count"].as_u64().unwrap());
            }
        }
        let top = seen.values().map(Vec::len).max().unwrap();
        assert!(top >= 20, "the most retweeted original appears {top} times");
        for counts in seen.values() {
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        }
        let grown = seen.values().filter(|c| c.first() < c.last()).count();
        assert!(grown > 10);

        // Zipf hashtags: the top one is far more frequent than the 50th.
        let mut tags: HashMap<String, usize> = HashMap::new();
        for t in &sample {
            for h in t["entities"]["hashtags"].as_array().unwrap() {
                *tags
                    .entry(h["text"].as_str().unwrap().to_lowercase())
                    .or_default() += 1;
            }
        }
        let mut counts: Vec<usize> = tags.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(counts.len() > 100);
        assert!(counts[0] > 10 * counts[49], "{:?}", &counts[..50]);

        // Languages, scripts, escapes.
        let langs: HashSet<&str> = sample.iter().map(|t| t["lang"].as_str().unwrap()).collect();
        assert!(langs.len() >= 8, "{langs:?}");
        let texts: Vec<&str> = sample.iter().map(|t| t["text"].as_str().unwrap()).collect();
        for needle in ["\"", "\\", "\n", "😂", "&amp;"] {
            assert!(texts.iter().any(|t| t.contains(needle)), "no {needle:?}");
        }
        assert!(texts
            .iter()
            .any(|t| t.chars().any(|c| ('\u{3040}'..'\u{30ff}').contains(&c))));
        assert!(texts
            .iter()
            .any(|t| t.chars().any(|c| ('\u{0600}'..'\u{06ff}').contains(&c))));
    }

    #[test]
    fn sentiment_is_rarely_zero_and_phrases_occur() {
        let lex = crate::score::Lexicon::afinn_111();
        for w in vocab::COMMON_SENTIMENT
            .iter()
            .chain(vocab::COMMON_POSITIVE)
            .chain(vocab::COMMON_NEGATIVE)
        {
            assert!(lex.get(w).is_some(), "{w} is not in AFINN-111");
        }
        let mut gen = TweetGen::with_corpus(corpus(), 1);
        let sample = tweets(&mut gen, 3_000);
        let mut zero = 0;
        let mut phrases = 0;
        for t in &sample {
            let text = t["text"].as_str().unwrap().to_lowercase();
            let words: Vec<&str> = text
                .split(|c: char| c.is_whitespace() || ",.!?:)\"".contains(c))
                .filter(|w| !w.is_empty())
                .collect();
            let mut score = 0;
            for w in &words {
                score += lex.get(w).unwrap_or(0);
            }
            for pair in words.windows(2) {
                if lex.get(&pair.join(" ")).is_some() {
                    phrases += 1;
                }
            }
            zero += usize::from(score == 0);
        }
        assert!(
            zero * 3 < sample.len(),
            "{zero} of {} score zero",
            sample.len()
        );
        assert!(phrases > 0);
    }

    #[test]
    fn payload_and_framing_are_exact() {
        let mut gen = TweetGen::with_corpus(corpus(), 1);
        let mut p = Vec::new();
        gen.payload_at(5, 16_523_062_290_197, &mut p);
        assert!(p.starts_with(b"{\"message\": {\"tweet\": {\"created_at\":\""));
        assert!(p.ends_with(b"}, \"unix_timestamp_100us\": 16523062290197}}"));
        let v: Value = serde_json::from_slice(&p).unwrap();
        assert!(v["message"]["tweet"]["id"].is_u64());
        let mut ev = Vec::new();
        frame_event(KILL_PAYLOAD, None, &mut ev);
        assert_eq!(ev, b"event: \"message\"\n\ndata: {\"message\": panic}\n\n");
        ev.clear();
        frame_event(b"{}", Some(12), &mut ev);
        assert_eq!(ev, b"event: \"message\"\n\nid: 12\ndata: {}\n\n");
    }

    #[test]
    fn event_size_is_about_two_kilobytes() {
        let mut gen = TweetGen::with_corpus(Arc::new(Corpus::new(3)), 1);
        let mut out = Vec::new();
        let n = 5_000u64;
        let mut total = 0;
        for i in 0..n {
            out.clear();
            gen.payload_at(i, 0, &mut out);
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
        let mut gen = TweetGen::with_corpus(corpus(), 1);
        let mut out = Vec::new();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for i in 0..4_000 {
            out.clear();
            let kind = gen.event_at(i, 1, Some(100), Some(20), &mut out);
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
                gen.event_at(i, 1, Some(100), Some(20), &mut a) == EventKind::Tweet
            })
            .unwrap();
        gen.payload_at(i, 1, &mut b);
        assert_eq!(a, b);
    }
}
