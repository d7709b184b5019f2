//! The `entities` object of a text.
//!
//! Written from the entities a [`Text`] recorded while it was built, in
//! Twitter's key order (`hashtags`, `urls`, `user_mentions`, `symbols`), with
//! `indices` in code points, so that slicing the text at them gives back
//! exactly `#tag`, the `t.co` link, `@name` and `$SYM`.

use super::text::URL_DOMAINS;
use super::{Corpus, Text};
use crate::emulator::json::{push_str, push_str_body, push_u64, push_u64_str, Escape};
use crate::emulator::vocab;

impl Corpus {
    /// Appends the `entities` object of `t`.
    pub(in crate::emulator) fn write_entities(&self, out: &mut Vec<u8>, t: &Text) {
        out.extend_from_slice(b"{\"hashtags\":[");
        for (k, &(h, lower, s, e)) in t.hashtags.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":\"");
            let start = out.len();
            push_str_body(out, &self.hashtags[h], Escape::Utf8);
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

/// Appends `[s,e]`.
fn push_indices(out: &mut Vec<u8>, s: usize, e: usize) {
    out.push(b'[');
    push_u64(out, s as u64);
    out.push(b',');
    push_u64(out, e as u64);
    out.push(b']');
}
