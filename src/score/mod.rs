//! Scoring: pure functions of a tweet, with no I/O and no threads.
//!
//! - [`lexicon`]: the word and phrase scores (AFINN-111) and their parser;
//! - [`sentiment`]: the lexicon score of a tweet's text, per word;
//! - [`engagement`]: (favorites + retweets) / followers.
//!
//! The engine's workers call these; tests and benches call them to compute
//! the expected results.

mod engagement;
mod lexicon;
mod sentiment;

pub use engagement::engagement;
pub use lexicon::{Lexicon, LexiconError, AFINN_111, MAX_LEXICON_ENTRIES, MAX_PHRASE_WORDS};
pub use sentiment::sentiment;
