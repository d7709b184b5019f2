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

use super::lexicon::Lexicon;

/// Normalises one whitespace-separated token (step 2 of the contract).
pub(crate) fn normalise_token(token: &str) -> String {
    token
        .trim_matches(|c: char| !(c.is_alphanumeric() || c == '\''))
        .to_lowercase()
}

/// The sentiment of `text` under `lex`, as in the module documentation.
pub fn sentiment(text: &str, lex: &Lexicon) -> f64 {
    let tokens: Vec<String> = text.split_whitespace().map(normalise_token).collect();
    let n = tokens.len();
    if n == 0 {
        return 0.0;
    }
    let max_words = lex.max_words().max(1);
    let mut sum: i64 = 0;
    let mut key = String::new();
    let mut i = 0;
    while i < n {
        let longest = max_words.min(n - i);
        let mut matched = None;
        for len in (1..=longest).rev() {
            let window = &tokens[i..i + len];
            // An empty token can never be part of a key (keys have no empty words).
            if window.iter().any(String::is_empty) {
                continue;
            }
            key.clear();
            for (k, t) in window.iter().enumerate() {
                if k > 0 {
                    key.push(' ');
                }
                key.push_str(t);
            }
            if let Some(score) = lex.get(&key) {
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
}
