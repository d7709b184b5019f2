//! The one column list of the `users` and `tweets` tables, and the SQL text made
//! from it.

/// Quotes an identifier (`"` doubled).
pub(in crate::sink) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One column as tweetflow creates and writes it.
#[derive(Debug, Clone, Copy)]
pub(in crate::sink) struct Column {
    /// Its name.
    pub(in crate::sink) name: &'static str,
    /// Its type as `format_type` spells it.
    pub(in crate::sink) ty: &'static str,
    /// Whether tweetflow may write NULL into it (then it must not be NOT NULL).
    pub(in crate::sink) may_be_null: bool,
    /// What follows the type in the DDL (constraints, default).
    pub(in crate::sink) ddl: &'static str,
}

const fn col(name: &'static str, ty: &'static str, may_be_null: bool, ddl: &'static str) -> Column {
    Column {
        name,
        ty,
        may_be_null,
        ddl,
    }
}

const TSTZ: &str = "timestamp with time zone";

/// The `users` table.
pub(in crate::sink) const USERS: &[Column] = &[
    col("id", "bigint", false, " PRIMARY KEY"),
    col("screen_name", "text", true, ""),
    col("name", "text", true, ""),
    col("followers_count", "bigint", false, ""),
    col("friends_count", "bigint", true, ""),
    col("statuses_count", "bigint", true, ""),
    col("verified", "boolean", true, ""),
    col("lang", "text", true, ""),
    col("created_at", TSTZ, true, ""),
    col("raw", "jsonb", false, " NOT NULL"),
    col("ingest_seq", "bigint", false, " NOT NULL"),
    col("updated_at", TSTZ, false, " NOT NULL DEFAULT now()"),
];

/// The `tweets` table.
pub(in crate::sink) const TWEETS: &[Column] = &[
    col("id", "bigint", false, " PRIMARY KEY"),
    col("user_id", "bigint", false, " NOT NULL"),
    col("text", "text", false, ""),
    col("lang", "text", true, ""),
    col("created_at", TSTZ, true, ""),
    col("favorite_count", "bigint", false, " NOT NULL DEFAULT 0"),
    col("retweet_count", "bigint", false, " NOT NULL DEFAULT 0"),
    col("retweeted_status_id", "bigint", true, ""),
    col("hashtags", "text[]", false, " NOT NULL DEFAULT '{}'"),
    col("sentiment", "double precision", true, ""),
    col("engagement", "double precision", true, ""),
    col("raw", "jsonb", false, " NOT NULL"),
    col("ingest_seq", "bigint", false, " NOT NULL"),
    col("received_at", TSTZ, true, ""),
    col("ingested_at", TSTZ, false, " NOT NULL DEFAULT now()"),
];

/// The two tables: name and columns.
pub(in crate::sink) const TABLES: [(&str, &[Column]); 2] = [("users", USERS), ("tweets", TWEETS)];

/// The DDL of one table. With `lz4`, the `raw` column uses PostgreSQL 14+'s lz4
/// TOAST compression (several times faster than the default pglz on ~2 KB tweets).
pub(in crate::sink) fn table_sql(
    schema: &str,
    table: &str,
    columns: &[Column],
    lz4: bool,
) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            let compression = if lz4 && c.ty == "jsonb" {
                " COMPRESSION lz4"
            } else {
                ""
            };
            format!("    {} {}{compression}{}", c.name, c.ty, c.ddl)
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{table} (\n{}\n);",
        ident(schema),
        cols.join(",\n")
    )
}

/// The index on `ingest_seq`, made with each table: the start-up's
/// [`stored_seq_max`] reads the highest one from it instead of scanning the
/// table (2 M tweets: 0.5 s scanned, ~1 ms indexed; docs/BENCHMARKS.md). Its
/// cost: an update changes `ingest_seq`, so no update of a row is HOT any more.
pub(in crate::sink) fn seq_index_sql(schema: &str, table: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {table}_ingest_seq_idx ON {}.{table} (ingest_seq)",
        ident(schema)
    )
}

/// The per-connection staging tables (temporary, emptied at each commit).
///
/// The `raw` columns are compressed with lz4 when available: the upsert then copies
/// the compressed value into the (also lz4) table without compressing it again.
/// Without lz4 they are stored uncompressed (`EXTERNAL`), so pglz runs only once,
/// in the final table.
pub(in crate::sink) fn staging_sql(lz4: bool) -> String {
    let storage = if lz4 {
        "ALTER TABLE tf_stage_users ALTER raw SET COMPRESSION lz4;
ALTER TABLE tf_stage_tweets ALTER raw SET COMPRESSION lz4;"
    } else {
        "ALTER TABLE tf_stage_users ALTER raw SET STORAGE EXTERNAL;
ALTER TABLE tf_stage_tweets ALTER raw SET STORAGE EXTERNAL;"
    };
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS tf_stage_users (
    id bigint, screen_name text, name text, followers_count bigint, friends_count bigint,
    statuses_count bigint, verified boolean, lang text, created_at timestamptz, raw jsonb,
    ingest_seq bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS tf_stage_tweets (
    id bigint, user_id bigint, text text, lang text, created_at timestamptz,
    favorite_count bigint, retweet_count bigint, retweeted_status_id bigint, hashtags text[],
    sentiment double precision, engagement double precision, raw jsonb, ingest_seq bigint,
    received_at timestamptz
) ON COMMIT DELETE ROWS;
{storage}"
    )
}

/// Binary COPY into the users staging table.
pub(in crate::sink) const COPY_USERS: &str =
    "COPY tf_stage_users (id, screen_name, name, followers_count, \
     friends_count, statuses_count, verified, lang, created_at, raw, ingest_seq) \
     FROM STDIN (FORMAT binary)";

/// Binary COPY into the tweets staging table.
pub(in crate::sink) const COPY_TWEETS: &str =
    "COPY tf_stage_tweets (id, user_id, text, lang, created_at, \
     favorite_count, retweet_count, retweeted_status_id, hashtags, sentiment, engagement, raw, \
     ingest_seq, received_at) FROM STDIN (FORMAT binary)";

/// Binary COPY straight into the tweets table (the fast path for ids not in it yet).
pub(in crate::sink) fn copy_tweets_direct_sql(schema: &str) -> String {
    format!(
        "COPY {}.tweets (id, user_id, text, lang, created_at, favorite_count, retweet_count, \
         retweeted_status_id, hashtags, sentiment, engagement, raw, ingest_seq, received_at) \
         FROM STDIN (FORMAT binary)",
        ident(schema)
    )
}

/// Binary COPY straight into the users table (the fast path for ids not in it yet).
pub(in crate::sink) fn copy_users_direct_sql(schema: &str) -> String {
    format!(
        "COPY {}.users (id, screen_name, name, followers_count, friends_count, \
         statuses_count, verified, lang, created_at, raw, ingest_seq) FROM STDIN (FORMAT binary)",
        ident(schema)
    )
}

/// Which of the given user ids are already stored.
pub(in crate::sink) fn existing_users_sql(schema: &str) -> String {
    format!(
        "SELECT id FROM {}.users WHERE id = ANY($1::bigint[])",
        ident(schema)
    )
}

/// Which of the given tweet ids are already stored.
pub(in crate::sink) fn existing_tweets_sql(schema: &str) -> String {
    format!(
        "SELECT id FROM {}.tweets WHERE id = ANY($1::bigint[])",
        ident(schema)
    )
}

/// Staging → users: newest version per id, and only if newer than the stored row.
pub(in crate::sink) fn upsert_users_sql(schema: &str) -> String {
    let s = ident(schema);
    format!(
        "INSERT INTO {s}.users AS t (id, screen_name, name, followers_count, friends_count,
    statuses_count, verified, lang, created_at, raw, ingest_seq, updated_at)
SELECT DISTINCT ON (id) id, screen_name, name, followers_count, friends_count,
    statuses_count, verified, lang, created_at, raw, ingest_seq, now()
FROM tf_stage_users
ORDER BY id, ingest_seq DESC
ON CONFLICT (id) DO UPDATE SET
    screen_name = excluded.screen_name, name = excluded.name,
    followers_count = excluded.followers_count, friends_count = excluded.friends_count,
    statuses_count = excluded.statuses_count, verified = excluded.verified,
    lang = excluded.lang, created_at = excluded.created_at, raw = excluded.raw,
    ingest_seq = excluded.ingest_seq, updated_at = excluded.updated_at
WHERE excluded.ingest_seq > t.ingest_seq"
    )
}

/// Staging → tweets: as for users. The raw tweet's `user` was already replaced by the
/// user id on the client ([`replace_user`](super::raw_json::replace_user)), before the binary
/// COPY as jsonb.
pub(in crate::sink) fn upsert_tweets_sql(schema: &str) -> String {
    let s = ident(schema);
    format!(
        "INSERT INTO {s}.tweets AS t (id, user_id, text, lang, created_at, favorite_count,
    retweet_count, retweeted_status_id, hashtags, sentiment, engagement, raw, ingest_seq,
    received_at, ingested_at)
SELECT DISTINCT ON (id) id, user_id, text, lang, created_at, coalesce(favorite_count, 0),
    coalesce(retweet_count, 0), retweeted_status_id, coalesce(hashtags, '{{}}'), sentiment,
    engagement, raw, ingest_seq, received_at, now()
FROM tf_stage_tweets
ORDER BY id, ingest_seq DESC
ON CONFLICT (id) DO UPDATE SET
    user_id = excluded.user_id, text = excluded.text, lang = excluded.lang,
    created_at = excluded.created_at, favorite_count = excluded.favorite_count,
    retweet_count = excluded.retweet_count, retweeted_status_id = excluded.retweeted_status_id,
    hashtags = excluded.hashtags, sentiment = excluded.sentiment,
    engagement = excluded.engagement, raw = excluded.raw, ingest_seq = excluded.ingest_seq,
    received_at = excluded.received_at, ingested_at = excluded.ingested_at
WHERE excluded.ingest_seq > t.ingest_seq"
    )
}
