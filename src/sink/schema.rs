//! The tables, the staging tables and the upserts.
//!
//! `create` runs in one transaction under `pg_advisory_xact_lock`, so two instances
//! starting at once do not race on `CREATE … IF NOT EXISTS` (which alone can fail
//! with a unique violation on the catalog).

use postgres::Client;

/// Quotes an identifier (`"` doubled).
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The DDL of the schema and its two tables. With `lz4`, the `raw` columns use
/// PostgreSQL 14+'s lz4 TOAST compression (several times faster than the default pglz
/// on ~2 KB tweets).
pub(super) fn create_sql(schema: &str, lz4: bool) -> String {
    let s = ident(schema);
    let c = if lz4 { " COMPRESSION lz4" } else { "" };
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.users (
    id              bigint PRIMARY KEY,
    screen_name     text,
    name            text,
    followers_count bigint,
    friends_count   bigint,
    statuses_count  bigint,
    verified        boolean,
    lang            text,
    created_at      timestamptz,
    raw             jsonb{c} NOT NULL,
    ingest_seq      bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.tweets (
    id                  bigint PRIMARY KEY,
    user_id             bigint NOT NULL,
    text                text,
    lang                text,
    created_at          timestamptz,
    favorite_count      bigint NOT NULL DEFAULT 0,
    retweet_count       bigint NOT NULL DEFAULT 0,
    retweeted_status_id bigint,
    hashtags            text[] NOT NULL DEFAULT '{{}}',
    sentiment           double precision,
    engagement          double precision,
    raw                 jsonb{c} NOT NULL,
    ingest_seq          bigint NOT NULL,
    received_at         timestamptz,
    ingested_at         timestamptz NOT NULL DEFAULT now()
);"
    )
}

/// Creates the schema and tables if missing (idempotent, safe concurrently).
#[cfg_attr(not(feature = "testkit"), allow(unreachable_pub))]
pub fn create(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tweetflow.schema.' || $1::text))",
        &[&schema],
    )?;
    // lz4 where the server has it (14+, built with lz4); plain DDL otherwise.
    let lz4 = has_lz4(&mut tx)?;
    tx.batch_execute(&create_sql(schema, lz4))?;
    tx.commit()
}

/// Whether the server offers lz4 TOAST compression (PostgreSQL 14+ built with lz4).
pub(super) fn has_lz4(c: &mut impl postgres::GenericClient) -> Result<bool, postgres::Error> {
    Ok(c.query_one(
        "SELECT current_setting('server_version_num')::int >= 140000 \
         AND EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \
                     AND 'lz4' = ANY(enumvals))",
        &[],
    )?
    .get::<_, bool>(0))
}

/// The per-connection staging tables (temporary, emptied at each commit).
///
/// The `raw` columns are compressed with lz4 when available: the upsert then copies
/// the compressed value into the (also lz4) table without compressing it again.
/// Without lz4 they are stored uncompressed (`EXTERNAL`), so pglz runs only once,
/// in the final table.
pub(super) fn staging_sql(lz4: bool) -> String {
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
pub(super) const COPY_USERS: &str = "COPY tf_stage_users (id, screen_name, name, followers_count, \
     friends_count, statuses_count, verified, lang, created_at, raw, ingest_seq) \
     FROM STDIN (FORMAT binary)";

/// Binary COPY into the tweets staging table.
pub(super) const COPY_TWEETS: &str = "COPY tf_stage_tweets (id, user_id, text, lang, created_at, \
     favorite_count, retweet_count, retweeted_status_id, hashtags, sentiment, engagement, raw, \
     ingest_seq, received_at) FROM STDIN (FORMAT binary)";

/// Binary COPY straight into the tweets table (the fast path for ids not in it yet).
pub(super) fn copy_tweets_direct_sql(schema: &str) -> String {
    format!(
        "COPY {}.tweets (id, user_id, text, lang, created_at, favorite_count, retweet_count, \
         retweeted_status_id, hashtags, sentiment, engagement, raw, ingest_seq, received_at) \
         FROM STDIN (FORMAT binary)",
        ident(schema)
    )
}

/// Binary COPY straight into the users table (the fast path for ids not in it yet).
pub(super) fn copy_users_direct_sql(schema: &str) -> String {
    format!(
        "COPY {}.users (id, screen_name, name, followers_count, friends_count, \
         statuses_count, verified, lang, created_at, raw, ingest_seq) FROM STDIN (FORMAT binary)",
        ident(schema)
    )
}

/// Which of the given user ids are already stored.
pub(super) fn existing_users_sql(schema: &str) -> String {
    format!(
        "SELECT id FROM {}.users WHERE id = ANY($1::bigint[])",
        ident(schema)
    )
}

/// Which of the given tweet ids are already stored.
pub(super) fn existing_tweets_sql(schema: &str) -> String {
    format!(
        "SELECT id FROM {}.tweets WHERE id = ANY($1::bigint[])",
        ident(schema)
    )
}

/// Staging → users: newest version per id, and only if newer than the stored row.
pub(super) fn upsert_users_sql(schema: &str) -> String {
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
/// user id on the client ([`replace_user`](super::replace_user)), before the binary
/// COPY as jsonb.
pub(super) fn upsert_tweets_sql(schema: &str) -> String {
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
