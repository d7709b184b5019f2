//! The sentiment lexicon served at `/emotion_values` (AFINN-111 on the lab's server).
//!
//! The lexicon comes from the network, so its size is capped where it costs: a
//! phrase of more than [`MAX_PHRASE_WORDS`] words (scoring looks at up to
//! [`Lexicon::max_words`] tokens at every position of every tweet, so one
//! 10,000-word "phrase" would make each tweet take seconds) and more than
//! [`MAX_LEXICON_ENTRIES`] entries (memory) make the whole lexicon unusable, with an
//! error that says which limit and where. AFINN-111 has 2,477 entries and its
//! longest phrase has 3 words.
//!
//! Pure: parsing and lookup only. Fetching it is `source::lexicon`'s job, scoring
//! with it is [`super::sentiment`]'s.

use std::collections::HashMap;

/// The AFINN-111 list shipped with tweetflow (ODbL 1.0, see `data/afinn/`).
pub const AFINN_111: &str = include_str!("../../data/afinn/AFINN-111.txt");

/// Most words a phrase of the lexicon may have.
pub const MAX_PHRASE_WORDS: usize = 8;

/// Most entries (words and phrases) a lexicon may have.
pub const MAX_LEXICON_ENTRIES: usize = 100_000;

/// Why a lexicon text is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexiconError {
    /// Not one line parsed.
    #[error("lexicon is empty ({skipped} unparsable lines)")]
    Empty {
        /// Lines that did not parse.
        skipped: usize,
    },
    /// A phrase longer than [`MAX_PHRASE_WORDS`].
    #[error("line {line} of the lexicon is a phrase of {words} words; at most {max} are accepted")]
    PhraseTooLong {
        /// 1-based line number.
        line: usize,
        /// Its number of words.
        words: usize,
        /// [`MAX_PHRASE_WORDS`].
        max: usize,
    },
    /// More than [`MAX_LEXICON_ENTRIES`] entries.
    #[error("the lexicon has more than {max} entries (line {line} is one too many)")]
    TooManyEntries {
        /// 1-based line number of the first entry beyond the cap.
        line: usize,
        /// [`MAX_LEXICON_ENTRIES`].
        max: usize,
    },
}

/// Word and phrase scores. Keys are lower-case, words joined by single spaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lexicon {
    /// foldhash: keyed by a random seed like SipHash, several times faster on
    /// the short keys looked up for every word of every tweet.
    scores: HashMap<String, i32, foldhash::fast::RandomState>,
    max_words: usize,
    skipped: usize,
}

impl Lexicon {
    /// Parses `word<TAB>score` lines separated by `\r\n` or `\n`.
    ///
    /// Lines that do not parse (no tab, a score that is not an integer, an empty
    /// word) are skipped and counted in [`Lexicon::skipped`]; an input with no
    /// valid line at all is an error, and so is one beyond [`MAX_PHRASE_WORDS`]
    /// or [`MAX_LEXICON_ENTRIES`].
    pub fn parse(text: &str) -> Result<Lexicon, LexiconError> {
        let mut lex = Lexicon::default();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((word, score)) = line.rsplit_once('\t') else {
                lex.skipped += 1;
                continue;
            };
            let Ok(score) = score.trim().parse::<i32>() else {
                lex.skipped += 1;
                continue;
            };
            let words = word.split_whitespace().count();
            if words == 0 {
                lex.skipped += 1;
                continue;
            }
            if words > MAX_PHRASE_WORDS {
                return Err(LexiconError::PhraseTooLong {
                    line: index + 1,
                    words,
                    max: MAX_PHRASE_WORDS,
                });
            }
            let key = normalise_key(word);
            if lex.scores.len() >= MAX_LEXICON_ENTRIES && !lex.scores.contains_key(&key) {
                return Err(LexiconError::TooManyEntries {
                    line: index + 1,
                    max: MAX_LEXICON_ENTRIES,
                });
            }
            lex.insert(key, score);
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
    fn phrases_longer_than_the_cap_are_refused_with_their_line() {
        let eight = ["w"; MAX_PHRASE_WORDS].join(" ");
        let lex = Lexicon::parse(&format!("good\t3\n{eight}\t-1\n")).unwrap();
        assert_eq!(lex.max_words(), MAX_PHRASE_WORDS);
        let long = vec!["w"; 10_000].join(" ");
        let err = Lexicon::parse(&format!("good\t3\r\nbad\t-3\r\n{long}\t-1\r\n")).unwrap_err();
        assert_eq!(
            err,
            LexiconError::PhraseTooLong {
                line: 3,
                words: 10_000,
                max: MAX_PHRASE_WORDS
            }
        );
        assert_eq!(
            err.to_string(),
            "line 3 of the lexicon is a phrase of 10000 words; at most 8 are accepted"
        );
    }

    #[test]
    fn more_entries_than_the_cap_are_refused() {
        let mut text: String = (0..MAX_LEXICON_ENTRIES)
            .map(|i| format!("w{i}\t1\n"))
            .collect();
        // A repeated key is not a new entry.
        text.push_str("w0\t2\n");
        assert_eq!(Lexicon::parse(&text).unwrap().len(), MAX_LEXICON_ENTRIES);
        text.push_str("one-more\t1\n");
        assert_eq!(
            Lexicon::parse(&text),
            Err(LexiconError::TooManyEntries {
                line: MAX_LEXICON_ENTRIES + 2,
                max: MAX_LEXICON_ENTRIES
            })
        );
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
