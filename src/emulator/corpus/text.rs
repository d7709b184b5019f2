//! Tweet texts, built with their entities.
//!
//! A text is at most 140 code points (the 2016 limit) and is built piece by
//! piece: an optional `@reply`, English template sentences or words of the
//! tweet's language, AFINN-111 words and phrases (so that most tweets have a
//! non-zero sentiment score, as real ones do), then hashtags, a cashtag, emoji
//! and a `t.co` link. Each hashtag, mention, URL and cashtag is recorded with
//! its `[start, end)` indices in code points as it is pushed, so the
//! `entities` object always points at exactly the right characters. The
//! texts also hold what a client must cope with: quotes, backslashes, line
//! breaks, `&amp;`, emoji and non-Latin scripts.

use rand::rngs::SmallRng;
use rand::Rng;

use super::Corpus;
use crate::emulator::random::pick;
use crate::emulator::vocab;

/// Entities found while a text is built (indices in code points).
#[derive(Debug, Default, Clone)]
pub(in crate::emulator) struct Text {
    /// The text itself.
    pub(in crate::emulator) text: String,
    /// Its length in code points.
    pub(super) cps: usize,
    /// Hashtags: (index in the corpus' hashtags, lower-cased, start, end).
    pub(super) hashtags: Vec<(usize, bool, usize, usize)>,
    /// Mentions: (user index, start, end).
    pub(super) mentions: Vec<(usize, usize, usize)>,
    /// Links: (t.co code, index in `URL_DOMAINS`, start, end).
    pub(in crate::emulator) urls: Vec<([u8; 10], usize, usize, usize)>,
    /// Cashtags: (index in `vocab::SYMBOLS`, start, end).
    pub(super) symbols: Vec<(usize, usize, usize)>,
    /// How many lexicon words and phrases the text holds.
    sentiment_words: usize,
}

/// The longest text, in code points.
pub(in crate::emulator) const MAX_CPS: usize = 140;
/// Where the `t.co` links expand to.
pub(super) const URL_DOMAINS: &[&str] = &[
    "instagram.com/p",
    "youtu.be",
    "fb.me",
    "bit.ly",
    "spoti.fi",
    "nyti.ms",
    "twitter.com/i/web/status",
    "careerarc.com/job",
];
/// The characters of `t.co` codes and image names.
pub(super) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Text {
    /// Empties the text and its entities, keeping the buffers.
    fn clear(&mut self) {
        self.text.clear();
        self.cps = 0;
        self.hashtags.clear();
        self.mentions.clear();
        self.urls.clear();
        self.symbols.clear();
        self.sentiment_words = 0;
    }

    /// Whether `cps` more code points fit.
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

    /// Appends `sep` (unless the text is empty), `prefix` and `s` (lower-cased
    /// when `lower`), if it fits; returns where the prefix starts.
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

impl Corpus {
    /// Builds the text of a tweet in language `lang` into `t`.
    pub(in crate::emulator) fn build_text(
        &self,
        rng: &mut SmallRng,
        lang: usize,
        reply_to: Option<usize>,
        t: &mut Text,
    ) {
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
}
