//! Decoder under arbitrary data (also the SSE parser's output of it).
//!
//! Checks: no panic; a decoded tweet's `raw` and `user.raw` are substrings of
//! the data (captured, not re-serialised), the user object is the range of the
//! raw text that holds its top-level `user` member's value, and its raw is valid
//! JSON that decodes to the same fields when wrapped again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::{decode, Decoded, SharedStr};

/// `user` is where `raw`'s top-level `user` member's value lies: cutting it out and
/// putting a number there gives `raw` as a tree with that member replaced.
fn assert_is_top_level_user(raw: &SharedStr, user: &SharedStr) {
    let span = user.range_in(raw).expect("the user is a range of the raw text");
    let spliced = format!("{}0{}", &raw[..span.start], &raw[span.end..]);
    // A tree holds less than the decoder accepts (numbers beyond f64, say).
    let Ok(mut want) = serde_json::from_str::<serde_json::Value>(raw) else {
        return;
    };
    want["user"] = serde_json::json!(0);
    let got: serde_json::Value = serde_json::from_str(&spliced).expect("spliced raw is JSON");
    assert_eq!(got, want);
}

fuzz_target!(|input: &[u8]| {
    let data = String::from_utf8_lossy(input);
    match decode(&data) {
        Decoded::Kill => assert_eq!(data, r#"{"message": panic}"#),
        Decoded::Malformed(e) => {
            let _ = e.to_string();
        }
        Decoded::Tweets(t) => {
            assert!(data.contains(t.tweet.raw.as_str()));
            // The user object is a range of the tweet's one copy of its text, and
            // that range is the top-level `user` member's value (the sink replaces
            // the user by its id at that span without scanning).
            assert!(t.tweet.user.raw.within(&t.tweet.raw));
            assert_is_top_level_user(&t.tweet.raw, &t.tweet.user.raw);
            let again = format!(
                r#"{{"message": {{"tweet": {}, "unix_timestamp_100us": 1}}}}"#,
                t.tweet.raw
            );
            match decode(&again) {
                Decoded::Tweets(t2) => {
                    assert_eq!(t2.tweet.id, t.tweet.id);
                    assert_eq!(t2.tweet.text, t.tweet.text);
                    assert_eq!(t2.tweet.raw, t.tweet.raw);
                    assert_eq!(t2.tweet.retweeted_status_id, t.tweet.retweeted_status_id);
                }
                other => panic!("re-wrapped tweet did not decode: {other:?}"),
            }
            if let Some(Ok(o)) = &t.original {
                assert!(o.raw.within(&t.tweet.raw));
                assert!(o.user.raw.within(&o.raw));
                assert_is_top_level_user(&o.raw, &o.user.raw);
                assert_eq!(t.tweet.retweeted_status_id, Some(o.id));
            }
        }
    }
});
