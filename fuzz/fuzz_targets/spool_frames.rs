//! The spool's frame reader under arbitrary bytes: what a torn, corrupt or
//! foreign spool file may hold.
//!
//! Checks: no panic; every step makes progress and stays within the input
//! (a frame's length or a skip never runs past the end, a skip is at least one
//! byte); a payload the reader calls a frame either decodes to a record or is
//! refused with a `FrameError`, and a decoded record encodes back to exactly the
//! same frame bytes (the format has one spelling per record).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::testkit::{decode_frame, encode_frame, frame_payload, next_frame, FrameNext};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match next_frame(rest) {
            FrameNext::Frame { len } => {
                assert!(len >= 12 && len <= rest.len());
                let frame = &rest[..len];
                if let Ok(rec) = decode_frame(frame_payload(frame)) {
                    let mut again = Vec::new();
                    assert!(encode_frame(&rec, &mut again));
                    assert_eq!(again, frame, "a decoded frame encodes back to itself");
                }
                rest = &rest[len..];
            }
            FrameNext::Corrupt { skip } => {
                assert!(skip >= 1 && skip <= rest.len());
                rest = &rest[skip..];
            }
            FrameNext::Incomplete { need } => {
                assert!(need > rest.len());
                break;
            }
        }
    }
});
