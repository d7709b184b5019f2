//! Engagement scoring: pure, no I/O.
//!
//! engagement = (favorite_count + retweet_count) / user.followers_count, from the
//! tweet's own counts and its own user (a retweeted status carries its own).
//! Undefined (`None`, stored as NULL) when followers is 0; a negative follower
//! count (invalid data) is treated the same way rather than producing a
//! negative ratio.

use crate::model::Tweet;

/// The engagement of `t`, `None` when `t.user.followers_count <= 0`.
pub fn engagement(t: &Tweet) -> Option<f64> {
    engagement_of(t.favorite_count, t.retweet_count, t.user.followers_count)
}

/// The formula on plain numbers (see the module documentation).
pub(crate) fn engagement_of(favorites: i64, retweets: i64, followers: i64) -> Option<f64> {
    if followers <= 0 {
        return None;
    }
    Some((favorites as f64 + retweets as f64) / followers as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_counts_to_followers() {
        assert_eq!(engagement_of(3, 1, 8), Some(0.5));
        assert_eq!(engagement_of(0, 0, 10), Some(0.0));
        assert_eq!(engagement_of(10, 10, 4), Some(5.0));
    }

    #[test]
    fn zero_followers_is_undefined() {
        assert_eq!(engagement_of(5, 5, 0), None);
        assert_eq!(engagement_of(0, 0, 0), None);
        assert_eq!(engagement_of(1, 0, -3), None);
    }

    #[test]
    fn uses_the_tweets_own_user() {
        let mut t = Tweet::minimal(1, "x", crate::model::User::minimal(1, 10));
        t.favorite_count = 6;
        t.retweet_count = 2;
        t.user.followers_count = 4;
        assert_eq!(engagement(&t), Some(2.0));
        t.user.followers_count = 0;
        assert_eq!(engagement(&t), None);
    }
}
