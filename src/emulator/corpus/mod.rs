//! The corpus: everything a seed determines once, before any event is sent.
//!
//! A [`Corpus`] holds a population of users (their JSON precomputed around the
//! counters that grow along a stream), a pool of popular original tweets that
//! retweets point at, a Zipf-ranked hashtag list, the places, and the words
//! tweets are made of (the vocabulary and the AFINN-111 lexicon the server
//! also serves at `/emotion_values`, so that most tweets score non-zero).
//!
//! It must be a pure function of the seed (and the population size): one
//! generator seeded from the seed draws everything in a fixed order, so the
//! same seed always gives the same users and originals, on any machine. It is
//! read-only once built and shared (`Arc`) by the generators of every stream
//! and connection.
//!
//! The building is split by what it builds: [`users`] (the population),
//! [`originals`] (the retweeted tweets), [`text`] (tweet texts with their
//! entities, also used for every generated tweet) and [`entities`] (the
//! `entities` object of a text).

mod entities;
mod originals;
mod text;
mod users;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::json::{push_str, Escape};
use super::random::{mix, pick, Cdf};
use super::vocab;

pub(in crate::emulator) use originals::Original;
pub(in crate::emulator) use text::Text;
#[cfg(test)]
pub(in crate::emulator) use text::MAX_CPS;
pub(in crate::emulator) use users::UserRec;

/// Default number of users in the population.
pub(crate) const DEFAULT_USERS: usize = 10_000;
/// Number of popular originals that retweets point at.
const ORIGINALS: usize = 1_500;
/// Number of hashtags (the named ones plus a synthetic tail).
const HASHTAG_COUNT: usize = 2_000;

/// Everything a seed determines once: users, popular originals, hashtags, words.
///
/// Build it once (`Corpus::new`) and share it (`Arc`) between the generators
/// of all streams and connections.
#[derive(Debug)]
pub struct Corpus {
    /// The seed the corpus was built from.
    pub(in crate::emulator) seed: u64,
    /// The population, in rank order (rank 0 tweets most).
    pub(in crate::emulator) users: Vec<UserRec>,
    /// Who writes a tweet: Zipf-like over the users' ranks.
    pub(in crate::emulator) authors: Cdf,
    /// The popular originals that retweets point at.
    pub(in crate::emulator) originals: Vec<Original>,
    /// Which original a retweet points at: Zipf over their ranks.
    pub(in crate::emulator) original_pick: Cdf,
    /// The hashtags, most popular first.
    hashtags: Vec<String>,
    /// Which hashtag a tweet carries: Zipf over their ranks.
    hashtag_pick: Cdf,
    /// The language of a user or tweet, weighted as in `vocab::LANGUAGES`.
    pub(in crate::emulator) languages: Cdf,
    /// The AFINN-111 single words of non-zero score.
    afinn_words: Vec<&'static str>,
    /// The AFINN-111 phrases of non-zero score.
    afinn_phrases: Vec<&'static str>,
    /// The JSON `place` object of each row of `vocab::PLACES`.
    pub(in crate::emulator) places: Vec<Vec<u8>>,
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

        let hashtags = make_hashtags(&mut rng);
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
}

/// The JSON `place` object of one row of the vocabulary.
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

/// The named hashtags of the vocabulary, then made-up ones of two or three
/// syllables until there are `HASHTAG_COUNT`.
fn make_hashtags(rng: &mut SmallRng) -> Vec<String> {
    let mut hashtags: Vec<String> = vocab::HASHTAGS.iter().map(|s| s.to_string()).collect();
    while hashtags.len() < HASHTAG_COUNT {
        let mut tag = String::new();
        for _ in 0..rng.gen_range(2..4) {
            let syl = pick(rng, vocab::SYLLABLES);
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
    hashtags
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::tweet::tests::{corpus, tweets};
    use crate::emulator::TweetGen;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn population_statistics_are_realistic() {
        let mut generator = TweetGen::with_corpus(corpus(), 1);
        let sample = tweets(&mut generator, 6_000);
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
        let mut generator = TweetGen::with_corpus(corpus(), 1);
        let sample = tweets(&mut generator, 3_000);
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
}
