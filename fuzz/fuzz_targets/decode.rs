//! Decoder under arbitrary data (also the SSE parser's output of it).
//!
//! Checks: no panic; a decoded tweet's `raw` and `user.raw` are substrings of
//! the data (captured, not re-serialised), and its raw is valid JSON that
//! decodes to the same fields when wrapped again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::{decode, Decoded};

fuzz_target!(|input: &[u8]| {
    let data = String::from_utf8_lossy(input);
    match decode(&data) {
        Decoded::Kill => assert_eq!(data, r#"{"message": panic}"#),
        Decoded::Malformed(e) => {
            let _ = e.to_string();
        }
        Decoded::Tweets(t) => {
            assert!(data.contains(t.tweet.raw.as_str()));
            // The user object is a range of the tweet's one copy of its text.
            assert!(t.tweet.user.raw.within(&t.tweet.raw));
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
                assert_eq!(t.tweet.retweeted_status_id, Some(o.id));
            }
        }
    }
});
