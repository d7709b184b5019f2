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

use std::borrow::Cow;

/// Skips one JSON value starting at `i` (after whitespace); returns the index after it,
/// or `None` if the text is not well-formed there.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
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

/// The raw tweet with its top-level `user` member replaced by the user id (added if
/// missing). Text that is not a well-formed JSON object is returned unchanged; the
/// database then refuses it and the record is isolated as a rejected row.
pub(crate) fn replace_user(raw: &str, user_id: i64) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Cow::Borrowed(raw);
    }
    let open = i;
    i += 1;
    let mut spans = Vec::new();
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b'"') => {}
            _ => return Cow::Borrowed(raw),
        }
        let key_start = i;
        let Some(key_end) = skip_value(b, i) else {
            return Cow::Borrowed(raw);
        };
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Cow::Borrowed(raw);
        }
        let vstart = skip_ws(b, i + 1);
        let Some(vend) = skip_value(b, vstart) else {
            return Cow::Borrowed(raw);
        };
        if vend == vstart {
            return Cow::Borrowed(raw);
        }
        if b.get(key_start..key_end) == Some(b"\"user\"") {
            spans.push((vstart, vend));
        }
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Cow::Borrowed(raw),
        }
    }
    if skip_ws(b, i + 1) != b.len() {
        return Cow::Borrowed(raw);
    }
    let id = user_id.to_string();
    if spans.is_empty() {
        let rest = skip_ws(b, open + 1);
        let sep = if b.get(rest) == Some(&b'}') { "" } else { "," };
        let Some(members) = raw.get(open + 1..) else {
            return Cow::Borrowed(raw);
        };
        return Cow::Owned(format!("{{\"user\":{id}{sep}{members}"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut last = 0;
    for (s, e) in spans {
        let Some(before) = raw.get(last..s) else {
            return Cow::Borrowed(raw);
        };
        out.push_str(before);
        out.push_str(&id);
        last = e;
    }
    let Some(rest) = raw.get(last..) else {
        return Cow::Borrowed(raw);
    };
    out.push_str(rest);
    Cow::Owned(out)
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
        let fx = crate::sink::fixture::records(1, 1, 1).remove(0);
        let v: serde_json::Value =
            serde_json::from_str(&replace_user(&fx.tweet.raw, fx.tweet.user.id)).unwrap();
        assert_eq!(v["user"], fx.tweet.user.id);
        assert_eq!(v["text"], fx.tweet.text.as_str());
    }
}
