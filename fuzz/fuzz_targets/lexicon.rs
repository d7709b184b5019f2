//! `Lexicon::parse` on arbitrary text: the lexicon comes from the network.
//! It must never panic, and what it accepts stays within the caps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::{Lexicon, MAX_LEXICON_ENTRIES, MAX_PHRASE_WORDS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lex) = Lexicon::parse(text) {
        assert!(lex.max_words() <= MAX_PHRASE_WORDS);
        assert!(lex.len() <= MAX_LEXICON_ENTRIES);
        assert!(!lex.is_empty());
    }
});
