//! Rewriting raw tweet JSON without building a tree, pure (no I/O).
//!
//! The `tweets.raw` column stores the tweet as received, except that its top-level
//! `user` object (stored in `users`) is replaced by the user id. [`replace_user`]
//! does this in one pass over the bytes with a small scanner (`skip_value` skips
//! one value of any kind, strings with their escapes included), so the server parses
//! each JSON text exactly once, as jsonb.
//!
//! Invariants: only the top-level `user` member changes (a `user` inside a nested
//! object such as `retweeted_status` stays); a missing `user` is added first; text
//! that is not one well-formed JSON object comes back unchanged (borrowed), so the
//! database refuses it and the record is isolated as a rejected row instead of being
//! silently altered. The scanner checks structure, not every value: the server's
//! jsonb parser is the judge of validity.

#[cfg(test)]
use std::borrow::Cow;

/// Skips one JSON value starting at `i` (after whitespace); returns the index after it,
/// or `None` if the text is not well-formed there.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => {
                i += 1;
                // To the next quote or backslash in one SIMD search (most of a
                // tweet's bytes are inside strings).
                loop {
                    i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
                    match b[i] {
                        b'\\' => i += 2,
                        _ => break,
                    }
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' | b':' if depth > 0 => i += 1,
            b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' => return Some(i),
            _ => i += 1,
        }
        if depth == 0
            && !matches!(b.get(i), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+'))
        {
            return Some(i);
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// What [`replace_user`] does to one text.
enum Plan {
    /// Not one well-formed JSON object: left as it is.
    Unchanged,
    /// No top-level `user`: `"user":<id>` goes right after the `{` at this index,
    /// with a comma when members follow.
    Insert { open: usize, comma: bool },
    /// The values of the top-level `user` members (one, unless a key repeats).
    Replace(Spans),
}

/// The byte ranges of the top-level `user` values; the first held inline, since
/// a key that repeats is the exception.
struct Spans {
    first: (usize, usize),
    more: Vec<(usize, usize)>,
}

impl Spans {
    fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

/// One pass over `raw`: where its top-level `user` values are.
fn plan(raw: &str) -> Plan {
    let b = raw.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Plan::Unchanged;
    }
    let open = i;
    i += 1;
    let mut spans: Option<Spans> = None;
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b'"') => {}
            _ => return Plan::Unchanged,
        }
        let key_start = i;
        let Some(key_end) = skip_value(b, i) else {
            return Plan::Unchanged;
        };
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Plan::Unchanged;
        }
        let vstart = skip_ws(b, i + 1);
        let Some(vend) = skip_value(b, vstart) else {
            return Plan::Unchanged;
        };
        if vend == vstart {
            return Plan::Unchanged;
        }
        if b.get(key_start..key_end) == Some(b"\"user\"") {
            match &mut spans {
                None => {
                    spans = Some(Spans {
                        first: (vstart, vend),
                        more: Vec::new(),
                    })
                }
                Some(s) => s.more.push((vstart, vend)),
            }
        }
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Plan::Unchanged,
        }
    }
    if skip_ws(b, i + 1) != b.len() {
        return Plan::Unchanged;
    }
    match spans {
        Some(s) => Plan::Replace(s),
        None => Plan::Insert {
            open,
            comma: b.get(skip_ws(b, open + 1)) != Some(&b'}'),
        },
    }
}

/// Appends `raw` to `out` with its top-level `user` member replaced by the user id
/// (added if missing): the one copy of the text on its way into a COPY buffer. Text
/// that is not a well-formed JSON object is appended unchanged; the database then
/// refuses it and the record is isolated as a rejected row.
pub(crate) fn write_replacing_user(raw: &str, user_id: i64, out: &mut Vec<u8>) {
    let b = raw.as_bytes();
    let id = IdText::new(user_id);
    let id = id.as_bytes();
    match plan(raw) {
        Plan::Unchanged => out.extend_from_slice(b),
        Plan::Insert { open, comma } => {
            let (head, tail) = b.split_at(open + 1);
            out.extend_from_slice(head);
            out.extend_from_slice(b"\"user\":");
            out.extend_from_slice(id);
            if comma {
                out.push(b',');
            }
            out.extend_from_slice(tail);
        }
        Plan::Replace(spans) => {
            // The spans come from a scan of `b` in order, so each lies within it
            // and after the last; were one not to, the text goes unchanged.
            let start = out.len();
            let mut last = 0;
            for (s, e) in spans.iter() {
                let Some(before) = b.get(last..s) else {
                    out.truncate(start);
                    out.extend_from_slice(b);
                    return;
                };
                out.extend_from_slice(before);
                out.extend_from_slice(id);
                last = e;
            }
            out.extend_from_slice(b.get(last..).unwrap_or_default());
        }
    }
}

/// Appends `raw` to `out` with the bytes of `user` (the value of its top-level
/// `user` member, as the decoder found it) replaced by the user id: the same result
/// as [`write_replacing_user`] without scanning the text. A span out of bounds
/// takes the scan.
pub(crate) fn write_with_user_at(
    raw: &str,
    user: std::ops::Range<usize>,
    user_id: i64,
    out: &mut Vec<u8>,
) {
    let b = raw.as_bytes();
    match (b.get(..user.start), b.get(user.end..)) {
        (Some(head), Some(tail)) if user.start < user.end => {
            out.extend_from_slice(head);
            out.extend_from_slice(IdText::new(user_id).as_bytes());
            out.extend_from_slice(tail);
        }
        _ => write_replacing_user(raw, user_id, out),
    }
}

/// A user id's decimal digits, without an allocation.
struct IdText {
    buf: [u8; 20],
    len: usize,
}

impl IdText {
    fn new(n: i64) -> IdText {
        use std::io::Write;
        // `i64::MIN` is a sign and 19 digits: 20 bytes.
        let mut buf = [0u8; 20];
        let mut w = &mut buf[..];
        let len = match write!(w, "{n}") {
            Ok(()) => 20 - w.len(),
            Err(_) => 0,
        };
        IdText { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
/// The raw tweet with its top-level `user` member replaced by the user id (added if
/// missing). Text that is not a well-formed JSON object is returned unchanged; the
/// database then refuses it and the record is isolated as a rejected row.
pub(crate) fn replace_user(raw: &str, user_id: i64) -> Cow<'_, str> {
    if matches!(plan(raw), Plan::Unchanged) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + 20);
    write_replacing_user(raw, user_id, &mut out);
    // Only whole ASCII members were cut and ASCII inserted: still UTF-8.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_top_level_user_only() {
        let raw = r#"{"id":1,"user":{"id":7,"name":"a}\"b","x":[1,{"user":2}]},"retweeted_status":{"user":{"id":8}},"n":-1.5e3,"t":true}"#;
        let got = replace_user(raw, 7);
        assert_eq!(
            got,
            r#"{"id":1,"user":7,"retweeted_status":{"user":{"id":8}},"n":-1.5e3,"t":true}"#
        );
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["user"], 7);
        assert_eq!(
            replace_user(r#" { "user" : null } "#, 3),
            r#" { "user" : 3 } "#
        );
        assert_eq!(replace_user(r#"{"id":1}"#, 3), r#"{"user":3,"id":1}"#);
        assert_eq!(replace_user(r#"{}"#, 3), r#"{"user":3}"#);
        for bad in [
            r#"{"id":1"#,
            "[1]",
            "",
            r#"{"user":}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
        ] {
            assert_eq!(replace_user(bad, 3), bad, "{bad:?}");
        }
        let fx = crate::testkit::records(1, 1, 1).remove(0);
        let v: serde_json::Value =
            serde_json::from_str(&replace_user(&fx.tweet.raw, fx.tweet.user.id)).unwrap();
        assert_eq!(v["user"], fx.tweet.user.id);
        assert_eq!(v["text"], fx.tweet.text.as_str());
    }
}
