//! Representative events for tests, fuzz seeds and benchmarks: Twitter
//! streaming API v1.1 statuses of April 2016, about 2.2 KB each, framed like
//! the lab server. Deterministic; not a generator of realistic traffic (that
//! is the emulator's job).

/// A user object (compact JSON, ~1 KB).
pub fn user_json(id: i64, followers: i64) -> String {
    format!(
        concat!(
            r#"{{"id":{id},"id_str":"{id}","name":"Ana Mar\u00eda \ud83c\udf3b","screen_name":"ana_{id}","#,
            r#""location":"Chi\u0219in\u0103u, Moldova","url":null,"description":"I tweet about \"things\" \\ stuff.\nSecond line","#,
            r#""protected":false,"verified":false,"followers_count":{followers},"friends_count":321,"listed_count":4,"#,
            r#""favourites_count":1200,"statuses_count":15034,"created_at":"Wed Jun 10 12:00:00 +0000 2015","utc_offset":10800,"#,
            r#""time_zone":"Bucharest","geo_enabled":true,"lang":"ro","contributors_enabled":false,"is_translator":false,"#,
            r#""profile_background_color":"C0DEED","profile_background_image_url":"http:\/\/abs.twimg.com\/images\/themes\/theme1\/bg.png","#,
            r#""profile_background_image_url_https":"https:\/\/abs.twimg.com\/images\/themes\/theme1\/bg.png","profile_background_tile":false,"#,
            r#""profile_link_color":"0084B4","profile_sidebar_border_color":"C0DEED","profile_sidebar_fill_color":"DDEEF6","#,
            r#""profile_text_color":"333333","profile_use_background_image":true,"profile_image_url":"http:\/\/pbs.twimg.com\/profile_images\/1\/a_normal.jpg","#,
            r#""profile_image_url_https":"https:\/\/pbs.twimg.com\/profile_images\/1\/a_normal.jpg","default_profile":true,"#,
            r#""default_profile_image":false,"following":null,"follow_request_sent":null,"notifications":null}}"#
        ),
        id = id,
        followers = followers
    )
}

/// A tweet object (compact JSON). With `retweeted`, it carries that
/// original as `retweeted_status`.
pub fn tweet_json(id: i64, user_id: i64, followers: i64, retweeted: Option<&str>) -> String {
    let text = if retweeted.is_some() {
        "RT @ana_7: What a happy day \u{1F600} #love #peace"
    } else {
        r#"What a happy day \ud83d\ude00 so good \u2014 not bad at all \\ \"quoted\" #love #peace"#
    };
    let rt = retweeted
        .map(|o| format!(r#""retweeted_status":{o},"#))
        .unwrap_or_default();
    format!(
        concat!(
            r#"{{"created_at":"Mon Apr 18 19:30:47 +0000 2016","id":{id},"id_str":"{id}","text":"{text}","#,
            r#""source":"\u003ca href=\"http:\/\/twitter.com\/download\/android\" rel=\"nofollow\"\u003eTwitter for Android\u003c\/a\u003e","#,
            r#""truncated":false,"in_reply_to_status_id":null,"in_reply_to_status_id_str":null,"in_reply_to_user_id":null,"#,
            r#""in_reply_to_user_id_str":null,"in_reply_to_screen_name":null,"user":{user},"geo":null,"coordinates":null,"#,
            r#""place":null,"contributors":null,{rt}"is_quote_status":false,"retweet_count":{rc},"favorite_count":{fc},"#,
            r#""entities":{{"user_mentions":[{{"screen_name":"bob","name":"Bob","indices":[30,34],"id_str":"12","id":12}}],"#,
            r#""urls":[{{"url":"https:\/\/t.co\/abc","indices":[40,63],"expanded_url":"http:\/\/example.com\/x","display_url":"example.com\/x"}}],"#,
            r#""symbols":[],"hashtags":[{{"text":"love","indices":[50,55]}},{{"text":"peace","indices":[56,62]}}]}},"#,
            r#""favorited":false,"retweeted":false,"filter_level":"low","lang":"en","timestamp_ms":"1461007847658"}}"#
        ),
        id = id,
        text = text,
        user = user_json(user_id, followers),
        rt = rt,
        rc = if retweeted.is_some() { 0 } else { id % 50 },
        fc = if retweeted.is_some() { 0 } else { id % 70 },
    )
}

/// The data of an event carrying `tweet` (the lab server's wrapper).
pub fn event_data(tweet: &str) -> String {
    format!(r#"{{"message": {{"tweet": {tweet}, "unix_timestamp_100us": 16523062290197}}}}"#)
}

/// One framed event, exactly as the lab server sends it.
pub fn framed(data: &str) -> String {
    format!("event: \"message\"\n\ndata: {data}\n\n")
}

/// `n` event datas, every third a retweet (like the emulator's mix).
pub fn sample_datas(n: usize) -> Vec<String> {
    (0..n as i64)
        .map(|i| {
            let id = 720_000_000_000_000_000 + i;
            if i % 3 == 2 {
                let orig = tweet_json(id - 1_000_000, 7, 5000 + i, None);
                event_data(&tweet_json(id, 100 + i % 40, i * 13 % 900, Some(&orig)))
            } else {
                event_data(&tweet_json(id, 100 + i % 40, i * 13 % 900, None))
            }
        })
        .collect()
}
