//! Sentiment scoring: pure, no I/O.
//!
//! The contract, exactly:
//!
//! 1. split `text` on Unicode whitespace ([`str::split_whitespace`]) into tokens;
//!    `N` = the number of tokens;
//! 2. normalise each token: lower-case it ([`str::to_lowercase`]) and trim the
//!    leading and trailing characters that are neither alphanumeric
//!    ([`char::is_alphanumeric`]) nor `'`. A token may normalise to the empty
//!    string (`"!!!"`, `"🙂"`): it still counts in `N` and matches nothing;
//! 3. scan from the left: at each position take the *longest* lexicon entry
//!    (up to [`Lexicon::max_words`] words) that equals the next normalised
//!    tokens joined by single spaces, add its score and skip its tokens;
//!    otherwise move one token on;
//! 4. sentiment = sum / `N`, and `0` when `N = 0` (empty or whitespace-only text).

use std::cell::RefCell;

use super::lexicon::Lexicon;

/// Appends the normalised form (step 2 of the contract) of `token` to `out`: ASCII tokens (nearly all of
/// them) are lower-cased in place, others through [`str::to_lowercase`], whose
/// context rules (the final sigma) a per-character mapping would miss.
fn push_normalised(token: &str, out: &mut String) {
    let trimmed = token.trim_matches(|c: char| !(c.is_alphanumeric() || c == '\''));
    if trimmed.is_ascii() {
        out.extend(trimmed.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(&trimmed.to_lowercase());
    }
}

/// Per-thread scratch space, so that scoring a tweet allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    /// The normalised tokens joined by single spaces, so that a window of tokens is
    /// one slice of it: the lexicon key it would have to equal.
    joined: String,
    /// Byte range of each token in `joined`.
    spans: Vec<(usize, usize)>,
}

/// A scratch buffer larger than this is given back after use (a worker thread may
/// park for a long time holding it).
const KEEP_SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The sentiment of `text` under `lex`, as in the module documentation.
pub fn sentiment(text: &str, lex: &Lexicon) -> f64 {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let score = score_with(text, lex, &mut scratch);
            if scratch.joined.capacity() > KEEP_SCRATCH_BYTES {
                *scratch = Scratch::default();
            }
            score
        }
        // Not reachable (scoring does not call itself); a fresh buffer keeps it correct.
        Err(_) => score_with(text, lex, &mut Scratch::default()),
    })
}

fn score_with(text: &str, lex: &Lexicon, scratch: &mut Scratch) -> f64 {
    let Scratch { joined, spans } = scratch;
    joined.clear();
    spans.clear();
    for token in text.split_whitespace() {
        if !spans.is_empty() {
            joined.push(' ');
        }
        let start = joined.len();
        push_normalised(token, joined);
        spans.push((start, joined.len()));
    }
    let n = spans.len();
    if n == 0 {
        return 0.0;
    }
    let max_words = lex.max_words().max(1);
    let mut sum: i64 = 0;
    let mut i = 0;
    while i < n {
        let longest = max_words.min(n - i);
        let mut matched = None;
        for len in (1..=longest).rev() {
            let window = &spans[i..i + len];
            // An empty token can never be part of a key (keys have no empty words).
            if window.iter().any(|&(s, e)| s == e) {
                continue;
            }
            // The tokens' spans are char boundaries of `joined` by construction.
            let Some(key) = joined.get(window[0].0..window[len - 1].1) else {
                continue;
            };
            if let Some(score) = lex.get(key) {
                matched = Some((len, score));
                break;
            }
        }
        match matched {
            Some((len, score)) => {
                sum += i64::from(score);
                i += len;
            }
            None => i += 1,
        }
    }
    sum as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> Lexicon {
        Lexicon::parse(
            "good\t3\nbad\t-3\ncan't stand\t-3\nstand\t1\ncan't\t-1\nnot good\t-2\n\
             does not work\t-3\nwork\t1\nlove\t3\nhappy\t3\n",
        )
        .unwrap()
    }

    #[test]
    fn empty_and_whitespace_only_are_zero() {
        let l = lex();
        assert_eq!(sentiment("", &l), 0.0);
        assert_eq!(sentiment("   \t\n \u{3000} \u{a0}", &l), 0.0);
    }

    #[test]
    fn words_are_summed_and_divided_by_token_count() {
        let l = lex();
        assert_eq!(sentiment("good", &l), 3.0);
        assert_eq!(sentiment("good bad good x", &l), 3.0 / 4.0);
        assert_eq!(sentiment("nothing here", &l), 0.0);
    }

    #[test]
    fn longest_phrase_wins_and_its_tokens_are_skipped() {
        let l = lex();
        // "can't stand" (-3) beats "can't" (-1) then "stand" (+1).
        assert_eq!(sentiment("I can't stand it", &l), -3.0 / 4.0);
        // three-word phrase beats "work".
        assert_eq!(sentiment("this does not work", &l), -3.0 / 4.0);
        // "not good" (-2) is taken, "good" is not counted again.
        assert_eq!(sentiment("not good", &l), -1.0);
        // a partial phrase falls back to single words.
        assert_eq!(sentiment("does not good", &l), -2.0 / 3.0);
    }

    #[test]
    fn phrases_span_irregular_whitespace_and_case() {
        let l = lex();
        assert_eq!(sentiment("CAN'T \t\n  Stand", &l), -3.0 / 2.0);
    }

    #[test]
    fn punctuation_is_trimmed_at_the_ends_only() {
        let l = lex();
        assert_eq!(sentiment("Good!!! (bad)", &l), 0.0);
        assert_eq!(sentiment("\"love\",", &l), 3.0);
        // Inner punctuation stays: "go-od" is not "good".
        assert_eq!(sentiment("go-od", &l), 0.0);
        // The apostrophe is kept, inside and at the ends.
        assert_eq!(sentiment("can't", &l), -1.0);
        assert_eq!(sentiment("'good'", &l), 0.0);
        // A phrase still matches with punctuation around its words.
        assert_eq!(sentiment("...can't, stand!", &l), -3.0 / 2.0);
    }

    #[test]
    fn hashtags_mentions_and_urls() {
        let l = lex();
        // '#' and '@' are trimmed, so hashtags and mentions score as words.
        assert_eq!(sentiment("#happy @love", &l), 3.0);
        assert_eq!(sentiment("#goodvibes", &l), 0.0);
        assert_eq!(sentiment("https://t.co/good", &l), 0.0);
    }

    #[test]
    fn emoji_tokens_count_but_never_match() {
        let l = lex();
        assert_eq!(sentiment("good 🙂", &l), 3.0 / 2.0);
        assert_eq!(sentiment("🙂good🙂", &l), 3.0);
        assert_eq!(sentiment("🙂 🙂", &l), 0.0);
        // An emoji between phrase words breaks the phrase.
        assert_eq!(sentiment("can't 🙂 stand", &l), 0.0);
    }

    #[test]
    fn unicode_lowercase_and_alphanumerics() {
        let l = Lexicon::parse("émouvant\t2\nstraße\t1\n").unwrap();
        assert_eq!(sentiment("ÉMOUVANT!", &l), 2.0);
        assert_eq!(sentiment("«Straße»", &l), 1.0);
    }

    #[test]
    fn shipped_afinn_phrase() {
        let l = Lexicon::afinn_111();
        assert_eq!(l.get("can't stand"), Some(-3));
        assert_eq!(sentiment("I can't stand Mondays", &l), -3.0 / 4.0);
        assert_eq!(sentiment("abandon", &l), -2.0);
    }

    /// The contract read literally: a `String` per token, a key built per window.
    fn reference(text: &str, lex: &Lexicon) -> f64 {
        let tokens: Vec<String> = text
            .split_whitespace()
            .map(|t| {
                t.trim_matches(|c: char| !(c.is_alphanumeric() || c == '\''))
                    .to_lowercase()
            })
            .collect();
        let n = tokens.len();
        if n == 0 {
            return 0.0;
        }
        let (mut sum, mut i) = (0i64, 0);
        while i < n {
            let mut step = 1;
            for len in (1..=lex.max_words().max(1).min(n - i)).rev() {
                let window = &tokens[i..i + len];
                if window.iter().any(String::is_empty) {
                    continue;
                }
                if let Some(score) = lex.get(&window.join(" ")) {
                    sum += i64::from(score);
                    step = len;
                    break;
                }
            }
            i += step;
        }
        sum as f64 / n as f64
    }

    #[test]
    fn scoring_without_allocation_equals_the_contract_read_literally() {
        use rand::{Rng, SeedableRng};
        let afinn = Lexicon::afinn_111();
        let l = lex();
        let words = [
            "good",
            "Good!",
            "bad",
            "can't",
            "stand",
            "CAN'T",
            "does",
            "not",
            "work",
            "love",
            "happy",
            "#happy",
            "@love",
            "🙂",
            "!!!",
            "ΣΟΦΟΣ",
            "Straße",
            "émouvant",
            "'good'",
            "no",
            "fun",
            "don't",
            "like",
            "cool",
            "stuff",
            "x",
            "...",
            "dont",
            "want",
            "a",
            "b",
            "hate",
            "won't",
            "fail",
            "ok",
            "\u{3000}",
            "\t",
            "\n",
            "İstanbul",
        ];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let n = rng.gen_range(0..14);
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(words[rng.gen_range(0..words.len())]);
                text.push(if rng.gen_bool(0.8) { ' ' } else { '\t' });
            }
            for lexicon in [&afinn, &l] {
                assert_eq!(
                    sentiment(&text, lexicon).to_bits(),
                    reference(&text, lexicon).to_bits(),
                    "text {text:?}"
                );
            }
        }
        // The final sigma needs the whole token: "ΣΟΦΟΣ" lower-cases to "σοφος".
        let greek = Lexicon::parse("σοφος\t2\n").unwrap();
        assert_eq!(sentiment("ΣΟΦΟΣ", &greek), 2.0);
    }
}
