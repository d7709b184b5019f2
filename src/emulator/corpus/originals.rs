//! The popular originals that retweets point at.
//!
//! In the 2016 stream about a third of the statuses are retweets, and many of
//! them retweet the same few popular tweets. An [`Original`] is written once
//! (its JSON split around its counters, with its `RT @author: ` text and its
//! entities precomputed for the retweets), by one of the most followed users.
//! Its `retweet_count` grows with the event index, so a stream shows the same
//! original again and again with counts that never go down; its
//! `favorite_count` follows at a fixed ratio.

use rand::rngs::SmallRng;
use rand::Rng;

use super::text::MAX_CPS;
use super::{Corpus, Text};
use crate::emulator::clock::{snowflake, BASE_TIMESTAMP_MS};
use crate::emulator::json::{push_str, push_twitter_date, push_u64, push_u64_str, Escape};
use crate::emulator::random::{lognormal, pick};
use crate::emulator::vocab;

/// A popular original tweet, retweeted again and again.
#[derive(Debug, Clone)]
pub(in crate::emulator) struct Original {
    /// `{"created_at":...` up to and including `"retweet_count":`.
    head: Vec<u8>,
    /// From `,"entities":` to the closing brace.
    tail: Vec<u8>,
    /// `retweet_count` at event 0.
    base_retweets: u64,
    /// Retweets gained per 1,000 events of a stream.
    growth: f64,
    /// `favorite_count` per retweet.
    fav_ratio: f64,
    /// The retweet's text (`RT @name: ...`, cut to 140 code points) and its entities.
    pub(in crate::emulator) rt_text: String,
    /// The `entities` object of `rt_text`.
    pub(in crate::emulator) rt_entities: Vec<u8>,
    /// Index of the language in `vocab::LANGUAGES`.
    pub(in crate::emulator) lang: usize,
}

impl Original {
    /// Appends the original as a `retweeted_status`; its counts grow with `index`.
    pub(in crate::emulator) fn write(&self, out: &mut Vec<u8>, index: u64) {
        let rts = self.base_retweets + (self.growth * index as f64 / 1000.0) as u64;
        out.extend_from_slice(&self.head);
        push_u64(out, rts);
        out.extend_from_slice(b",\"favorite_count\":");
        push_u64(out, (rts as f64 * self.fav_ratio) as u64);
        out.extend_from_slice(&self.tail);
    }
}

impl Corpus {
    /// Draws the original of popularity rank `rank` (0 is retweeted most),
    /// written by user `author`; `text` and `scratch` are reused buffers.
    pub(super) fn make_original(
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
}
