//! The population: users with their JSON written once.
//!
//! A user's object is the same in every tweet of theirs except the counters,
//! so it is written once as a `head` (up to `"followers_count":`) and a
//! `tail` (from `,"created_at":`), and only the counters are formatted per
//! event. `favourites_count` and `statuses_count` grow with the event index,
//! so later tweets of a user show higher counts, as a real stream does.
//!
//! The keys come in Twitter's v1.1 order. Follower counts are log-normal with
//! a heavy tail (one user in a hundred is a star, one in twenty-five has no
//! followers); screen names are unique regardless of case.

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::Rng;

use super::text::ALNUM;
use super::Corpus;
use crate::emulator::clock::TWEPOCH_MS;
use crate::emulator::json::{
    push_i64, push_str, push_twitter_date, push_u64, push_u64_str, Escape,
};
use crate::emulator::random::{lognormal, pick, pick_any};
use crate::emulator::vocab;

/// A user of the population: JSON precomputed before and after the counters.
#[derive(Debug, Clone)]
pub(in crate::emulator) struct UserRec {
    /// The user id.
    pub(in crate::emulator) id: u64,
    /// `screen_name`, unique regardless of case.
    pub(in crate::emulator) screen_name: String,
    /// The display name.
    pub(super) name: String,
    /// Index of the user's language in `vocab::LANGUAGES`.
    pub(in crate::emulator) lang: usize,
    /// `{"id":...` up to and including `"followers_count":`.
    head: Vec<u8>,
    /// `followers_count`.
    pub(super) followers: u64,
    /// `friends_count`.
    friends: u64,
    /// `listed_count`.
    listed: u64,
    /// `favourites_count` at event 0.
    favourites: u64,
    /// `statuses_count` at event 0.
    statuses: u64,
    /// From `,"created_at":` to the closing brace.
    tail: Vec<u8>,
}

impl UserRec {
    /// Appends the user object; `statuses_count` grows with `index`.
    pub(in crate::emulator) fn write(&self, out: &mut Vec<u8>, index: u64) {
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

impl Corpus {
    /// Draws user number `i`; `names` holds the lower-cased screen names
    /// taken so far.
    pub(super) fn make_user(
        &self,
        rng: &mut SmallRng,
        i: usize,
        names: &mut HashSet<String>,
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

        let t = profile_tail(rng, id, created_s, language, default_profile, default_image);

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

    /// A profile description in language `lang`.
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
}

/// The user object from `,"created_at":` to its closing brace: time zone,
/// language and the `profile_*` colours and images.
fn profile_tail(
    rng: &mut SmallRng,
    id: u64,
    created_s: i64,
    language: &vocab::Language,
    default_profile: bool,
    default_image: bool,
) -> Vec<u8> {
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
            t.extend_from_slice(b"://abs.twimg.com/sticky/default_profile_images/default_profile_");
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
        t.extend_from_slice(b",\"profile_banner_url\":\"https://pbs.twimg.com/profile_banners/");
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
    t
}
