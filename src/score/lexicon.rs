//! The sentiment lexicon served at `/emotion_values` (AFINN-111 on the lab's server).
//!
//! Pure: parsing and lookup only. Fetching it is `source::lexicon`'s job, scoring
//! with it is [`super::sentiment`]'s.

use std::collections::HashMap;

/// The AFINN-111 list shipped with tweetflow (ODbL 1.0, see `data/afinn/`).
pub const AFINN_111: &str = include_str!("../../data/afinn/AFINN-111.txt");

/// Why a lexicon text is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexiconError {
    /// Not one line parsed.
    #[error("lexicon is empty ({skipped} unparsable lines)")]
    Empty {
        /// Lines that did not parse.
        skipped: usize,
    },
}

/// Word and phrase scores. Keys are lower-case, words joined by single spaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lexicon {
    scores: HashMap<String, i32>,
    max_words: usize,
    skipped: usize,
}

impl Lexicon {
    /// Parses `word<TAB>score` lines separated by `\r\n` or `\n`.
    ///
    /// Lines that do not parse (no tab, a score that is not an integer, an empty
    /// word) are skipped and counted in [`Lexicon::skipped`]; an input with no
    /// valid line at all is an error.
    pub fn parse(text: &str) -> Result<Lexicon, LexiconError> {
        let mut lex = Lexicon::default();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let parsed = line.rsplit_once('\t').and_then(|(word, score)| {
                let score = score.trim().parse::<i32>().ok()?;
                let key = normalise_key(word);
                (!key.is_empty()).then_some((key, score))
            });
            match parsed {
                Some((key, score)) => lex.insert(key, score),
                None => lex.skipped += 1,
            }
        }
        if lex.scores.is_empty() {
            return Err(LexiconError::Empty {
                skipped: lex.skipped,
            });
        }
        Ok(lex)
    }

    /// The lexicon shipped with tweetflow.
    pub fn afinn_111() -> Lexicon {
        // The embedded file is known to be valid; an empty lexicon is the
        // (unreachable) fallback rather than a panic.
        Lexicon::parse(AFINN_111).unwrap_or_default()
    }

    fn insert(&mut self, key: String, score: i32) {
        self.max_words = self.max_words.max(key.split(' ').count());
        self.scores.insert(key, score);
    }

    /// The score of a word or of a phrase (lower-case words joined by single spaces).
    pub fn get(&self, key: &str) -> Option<i32> {
        self.scores.get(key).copied()
    }

    /// The number of words of the longest phrase (1 if there are no phrases).
    pub fn max_words(&self) -> usize {
        self.max_words
    }

    /// Number of entries (words and phrases).
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when the lexicon has no entry.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Number of entries that are phrases of several words.
    pub fn phrases(&self) -> usize {
        self.scores.keys().filter(|k| k.contains(' ')).count()
    }

    /// Lines skipped by [`Lexicon::parse`] because they did not parse.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

fn normalise_key(word: &str) -> String {
    word.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_has_2477_entries_and_15_phrases() {
        let lex = Lexicon::afinn_111();
        assert_eq!(lex.len(), 2477);
        assert_eq!(lex.phrases(), 15);
        assert_eq!(lex.skipped(), 0);
        assert_eq!(lex.get("abandon"), Some(-2));
        assert_eq!(lex.get("can't stand"), Some(-3));
        assert!(lex.max_words() >= 2);
    }

    #[test]
    fn parses_crlf_and_lf_and_skips_bad_lines() {
        let lex =
            Lexicon::parse("good\t3\r\nbad\t-3\nnot a line\n\nworse\tx\r\ndoes  Not work\t-3")
                .unwrap();
        assert_eq!(lex.get("good"), Some(3));
        assert_eq!(lex.get("bad"), Some(-3));
        assert_eq!(lex.get("does not work"), Some(-3));
        assert_eq!(lex.len(), 3);
        assert_eq!(lex.skipped(), 2);
        assert_eq!(lex.max_words(), 3);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(Lexicon::parse(""), Err(LexiconError::Empty { skipped: 0 }));
        assert_eq!(
            Lexicon::parse("nonsense"),
            Err(LexiconError::Empty { skipped: 1 })
        );
    }
}
