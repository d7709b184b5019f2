//! Realistic records for the sink's tests and benchmark: raw tweet JSON of
//! about 2 KB shaped like a 2016
//! streaming-API status (user object, entities, the usual nulls), with the typed
//! fields filled consistently.

use std::sync::Arc;

use serde_json::json;

use crate::model::{unix_micros, Record, Seq, Tweet, User};

/// What varies between fixture tweets.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Sequence number.
    pub seq: Seq,
    /// Tweet id.
    pub id: i64,
    /// Author id.
    pub user_id: i64,
    /// Tweet text.
    pub text: &'a str,
    /// Hashtags, also in `entities`.
    pub hashtags: &'a [&'a str],
    /// Id of the retweeted tweet, if a retweet.
    pub retweeted_status_id: Option<i64>,
    /// Author's followers count.
    pub followers: i64,
    /// Likes.
    pub favorite_count: i64,
    /// Retweets.
    pub retweet_count: i64,
    /// Sentiment score.
    pub sentiment: Option<f64>,
    /// Engagement score.
    pub engagement: Option<f64>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            seq: 1,
            id: 1,
            user_id: 1,
            text: "Just landed in Chisinau, the weather is lovely today #travel",
            hashtags: &["travel"],
            retweeted_status_id: None,
            followers: 120,
            favorite_count: 0,
            retweet_count: 0,
            sentiment: Some(0.5),
            engagement: Some(0.0),
        }
    }
}

/// The user object of a fixture tweet.
fn user_json(user_id: i64, followers: i64) -> serde_json::Value {
    json!({
        "id": user_id, "id_str": user_id.to_string(),
        "name": format!("User Number {user_id}"),
        "screen_name": format!("user_{user_id}"),
        "location": "Chisinau, Moldova", "url": null,
        "description": "Coffee, code and long walks. Opinions are my own; retweets are not endorsements.",
        "protected": false, "verified": user_id % 97 == 0,
        "followers_count": followers, "friends_count": 311, "listed_count": 4,
        "favourites_count": 1520, "statuses_count": 10456,
        "created_at": "Wed Jul 11 09:12:03 +0000 2012",
        "utc_offset": 10800, "time_zone": "Bucharest", "geo_enabled": true, "lang": "en",
        "contributors_enabled": false, "is_translator": false,
        "profile_background_color": "C0DEED",
        "profile_background_image_url": "http://abs.twimg.com/images/themes/theme1/bg.png",
        "profile_background_image_url_https": "https://abs.twimg.com/images/themes/theme1/bg.png",
        "profile_background_tile": false, "profile_link_color": "0084B4",
        "profile_sidebar_border_color": "C0DEED", "profile_sidebar_fill_color": "DDEEF6",
        "profile_text_color": "333333", "profile_use_background_image": true,
        "profile_image_url": format!("http://pbs.twimg.com/profile_images/{user_id}/avatar_normal.jpg"),
        "profile_image_url_https": format!("https://pbs.twimg.com/profile_images/{user_id}/avatar_normal.jpg"),
        "profile_banner_url": format!("https://pbs.twimg.com/profile_banners/{user_id}/1461007847"),
        "default_profile": true, "default_profile_image": false,
        "following": null, "follow_request_sent": null, "notifications": null
    })
}

/// A record as the aggregator would emit it.
pub fn record(s: &Spec) -> Record {
    let user = user_json(s.user_id, s.followers);
    let tags: Vec<serde_json::Value> = s
        .hashtags
        .iter()
        .map(|h| json!({"text": h, "indices": [10, 10 + h.len() + 1]}))
        .collect();
    let mut raw = json!({
        "created_at": "Mon Apr 18 19:30:47 +0000 2016",
        "id": s.id, "id_str": s.id.to_string(),
        "text": s.text,
        "source": "<a href=\"http://twitter.com/download/android\" rel=\"nofollow\">Twitter for Android</a>",
        "truncated": false,
        "in_reply_to_status_id": null, "in_reply_to_status_id_str": null,
        "in_reply_to_user_id": null, "in_reply_to_user_id_str": null,
        "in_reply_to_screen_name": null,
        "user": user.clone(),
        "geo": null, "coordinates": null, "place": null, "contributors": null,
        "is_quote_status": false,
        "retweet_count": s.retweet_count, "favorite_count": s.favorite_count,
        "entities": {"hashtags": tags, "urls": [], "user_mentions": [], "symbols": []},
        "favorited": false, "retweeted": false, "filter_level": "low", "lang": "en",
        "timestamp_ms": "1461007847658"
    });
    if let Some(rt) = s.retweeted_status_id {
        raw["retweeted_status"] = json!({"id": rt, "id_str": rt.to_string(), "text": s.text});
    }
    let u = User {
        id: s.user_id,
        followers_count: s.followers,
        screen_name: Some(format!("user_{}", s.user_id).into()),
        name: Some(format!("User Number {}", s.user_id).into()),
        friends_count: Some(311),
        statuses_count: Some(10456),
        verified: Some(s.user_id % 97 == 0),
        lang: Some("en".into()),
        created_at: Some("Wed Jul 11 09:12:03 +0000 2012".into()),
        raw: user.to_string().into(),
    };
    Record {
        tweet: Arc::new(Tweet {
            seq: s.seq,
            stream: 1,
            received_unix_us: unix_micros(),
            id: s.id,
            text: s.text.into(),
            lang: Some("en".into()),
            created_at: Some("Mon Apr 18 19:30:47 +0000 2016".into()),
            favorite_count: s.favorite_count,
            retweet_count: s.retweet_count,
            retweeted_status_id: s.retweeted_status_id,
            hashtags: s.hashtags.iter().map(|h| (*h).into()).collect(),
            user: u,
            raw: raw.to_string().into(),
            memory: Default::default(),
        }),
        sentiment: s.sentiment,
        engagement: s.engagement,
    }
}

/// `n` distinct records (ids `first_id..`), users shared by about 4 tweets each,
/// one in ten a retweet.
pub fn records(first_seq: Seq, first_id: i64, n: usize) -> Vec<Record> {
    const TEXTS: [&str; 4] = [
        "Just landed in Chisinau, the weather is lovely today and the coffee is even better #travel",
        "RT @someone: This is the worst traffic jam I have seen in years, absolutely terrible #commute",
        "Reading about stream processing and back-pressure tonight; nice ideas everywhere #rust #data",
        "Can't believe the match ended like that. What a game, what a comeback!!! #football #sport",
    ];
    const TAGS: [&[&str]; 4] = [
        &["travel"],
        &["commute"],
        &["rust", "data"],
        &["football", "sport"],
    ];
    (0..n)
        .map(|i| {
            let id = first_id + i as i64;
            record(&Spec {
                seq: first_seq + i as u64,
                id,
                user_id: 1_000_000 + id / 4,
                text: TEXTS[i % 4],
                hashtags: TAGS[i % 4],
                retweeted_status_id: (i % 10 == 9).then_some(id - 5),
                followers: 50 + (id % 5000),
                favorite_count: id % 7,
                retweet_count: id % 3,
                sentiment: Some((i % 11) as f64 / 10.0 - 0.5),
                engagement: (i % 13 != 0)
                    .then_some((id % 7 + id % 3) as f64 / (50 + id % 5000) as f64),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixture_tweets_are_about_two_kilobytes() {
        let r = super::records(1, 1, 10);
        for x in &r {
            assert!(
                (1800..3000).contains(&x.tweet.raw.len()),
                "{}",
                x.tweet.raw.len()
            );
            let v: serde_json::Value = serde_json::from_str(&x.tweet.raw).unwrap();
            assert_eq!(v["id"], x.tweet.id);
        }
        assert_eq!(r[9].tweet.retweeted_status_id, Some(5));
    }
}
