//! Scoring: pure functions of a tweet, with no I/O and no threads.
//!
//! - [`lexicon`]: the word and phrase scores (AFINN-111) and their parser;
//! - [`sentiment`]: the lexicon score of a tweet's text, per word;
//! - [`engagement`]: (favorites + retweets) / followers.
//!
//! The engine's workers call these; tests and benches call them to compute
//! the expected results.

pub mod engagement;
pub mod lexicon;
pub mod sentiment;

pub use engagement::{engagement, engagement_of};
pub use lexicon::{Lexicon, LexiconError, AFINN_111};
pub use sentiment::{normalise_token, sentiment};
