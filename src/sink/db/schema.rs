//! The tables, the staging tables and the upserts.
//!
//! `create` runs in one transaction under `pg_advisory_xact_lock`, so two instances
//! starting at once do not race on `CREATE … IF NOT EXISTS` (which alone can fail
//! with a unique violation on the catalog). It creates only what is missing.
//! `prepare` then checks what exists against the one column list ([`USERS`],
//! [`TWEETS`]) the DDL is generated from, with the one compatibility rule that
//! `tweetflow check` uses too (`compat`), so a table of another application with
//! the same name is reported before a single record is read, not discovered
//! batch by batch.

use postgres::Client;

use super::batch::OpenError;
use super::compat;
use super::error::{DatabaseProblem, Who};

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

/// Creates the schema and the tables that are missing (idempotent, safe
/// concurrently). What exists is left alone, so a role with the table privileges
/// but no `CREATE` works on tables created for it.
#[cfg_attr(not(feature = "testkit"), allow(unreachable_pub))]
pub fn create(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tweetflow.schema.' || $1::text))",
        &[&schema],
    )?;
    let schema_exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )?
        .get(0);
    if !schema_exists {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))?;
    }
    // lz4 where the server has it (14+, built with lz4); plain DDL otherwise.
    let lz4 = has_lz4(&mut tx)?;
    for (table, columns) in TABLES {
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
                &[&schema, &table],
            )?
            .get(0);
        if !exists {
            tx.batch_execute(&table_sql(schema, table, columns, lz4))?;
            tx.batch_execute(&seq_index_sql(schema, table))?;
        }
    }
    tx.commit()
}

/// The index on `ingest_seq`, made with each table: the start-up's
/// [`stored_seq_max`] reads the highest one from it instead of scanning the
/// table (2 M tweets: 0.5 s scanned, ~1 ms indexed; docs/BENCHMARKS.md). Its
/// cost: an update changes `ingest_seq`, so no update of a row is HOT any more.
fn seq_index_sql(schema: &str, table: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {table}_ingest_seq_idx ON {}.{table} (ingest_seq)",
        ident(schema)
    )
}

/// A table of an earlier tweetflow without the `ingest_seq` index gets it at
/// start-up only up to this size: `CREATE INDEX` holds off writes while it runs
/// (about 0.1 s for 75 MiB measured). A larger one is left to the operator.
const SEQ_INDEX_AT_START_MAX_BYTES: i64 = 64 << 20;

/// Tables made by an earlier tweetflow have no index on `ingest_seq`, so the
/// start-up reads their highest `ingest_seq` by a full scan. They are accepted as
/// they are; a small one gets the index now (in a transaction of its own, waiting at
/// most 1 s for the table's lock), a large one is named in a warning that says how
/// to add it without blocking writes. Nothing here fails the start.
fn ensure_seq_index(client: &mut Client, schema: &str) {
    for (table, _) in TABLES {
        let size = match unindexed_size(client, schema, table) {
            Ok(Some(size)) => size,
            Ok(None) => continue,
            Err(e) => {
                log::debug!(
                    "sink: cannot look for the ingest_seq index of {schema}.{table}: {}",
                    super::error::db_message(&e)
                );
                continue;
            }
        };
        if size > SEQ_INDEX_AT_START_MAX_BYTES {
            log::warn!(
                "sink: {schema}.{table} ({} MiB) has no index on ingest_seq (it was made by an \
                 earlier tweetflow), so each start reads its highest ingest_seq by a full scan; \
                 to add it without blocking writes: CREATE INDEX CONCURRENTLY \
                 {table}_ingest_seq_idx ON {}.{table} (ingest_seq)",
                size >> 20,
                ident(schema)
            );
            continue;
        }
        match create_seq_index(client, schema, table) {
            Ok(()) => log::info!(
                "sink: created the index on {schema}.{table} (ingest_seq), which tables of \
                 earlier versions lack"
            ),
            Err(e) => log::warn!(
                "sink: cannot create the index on {schema}.{table} (ingest_seq): {}; each start \
                 reads its highest ingest_seq by a full scan",
                super::error::db_message(&e)
            ),
        }
    }
}

/// The size in bytes of `schema`.`table` if it is an ordinary table without a
/// valid index that leads with `ingest_seq`; `None` otherwise.
fn unindexed_size(
    client: &mut Client,
    schema: &str,
    table: &str,
) -> Result<Option<i64>, postgres::Error> {
    let row = client.query_opt(
        "SELECT pg_relation_size(c.oid), EXISTS (
             SELECT 1 FROM pg_index i JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = c.oid AND i.indisvalid AND i.indpred IS NULL
                AND a.attname = 'ingest_seq')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'",
        &[&schema, &table],
    )?;
    Ok(row.and_then(|r| (!r.get::<_, bool>(1)).then(|| r.get(0))))
}

fn create_seq_index(client: &mut Client, schema: &str, table: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tweetflow.schema.' || $1::text))",
        &[&schema],
    )?;
    tx.batch_execute("SET LOCAL lock_timeout = '1s'")?;
    tx.batch_execute(&seq_index_sql(schema, table))?;
    tx.commit()
}

/// Gets the schema ready for writing, before a single record: refuses a read-only
/// server, creates what is missing ([`create`]), then checks the tables: every
/// expected column with its type, no NOT NULL where tweetflow may write NULL, no
/// extra NOT NULL column without a default, a unique index on `id`, and the
/// privileges the writer needs.
pub(in crate::sink) fn prepare(
    client: &mut Client,
    schema: &str,
    who: &Who,
) -> Result<(), OpenError> {
    let setup = OpenError::Setup;
    let ro: String = client
        .query_one("SELECT current_setting('transaction_read_only')", &[])
        .map_err(setup)?
        .get(0);
    if ro == "on" {
        return Err(OpenError::Problem(DatabaseProblem::ReadOnly {
            database: who.database.clone(),
            message: "transactions are read-only on it (default_transaction_read_only, or a \
                      standby)"
                .into(),
        }));
    }
    create(client, schema).map_err(setup)?;
    check(client, schema, who)?;
    ensure_seq_index(client, schema);
    Ok(())
}

/// The highest `ingest_seq` stored in either table (`None` when both are empty).
/// Read from the `ingest_seq` indexes ([`seq_index_sql`]); a table of an earlier
/// version without one is scanned whole. It runs once per start.
pub(in crate::sink) fn stored_seq_max(
    client: &mut impl postgres::GenericClient,
    schema: &str,
) -> Result<Option<u64>, postgres::Error> {
    let s = ident(schema);
    let max: Option<i64> = client
        .query_one(
            &format!(
                "SELECT greatest((SELECT max(ingest_seq) FROM {s}.users), \
                 (SELECT max(ingest_seq) FROM {s}.tweets))"
            ),
            &[],
        )?
        .get(0);
    Ok(max.map(|m| u64::try_from(m).unwrap_or(0)))
}

/// The checks of [`prepare`] on existing tables: the one compatibility rule
/// ([`compat::mismatches`], worded for the start-up error), then the privileges.
fn check(client: &mut Client, schema: &str, who: &Who) -> Result<(), OpenError> {
    let setup = OpenError::Setup;
    let mut denied = Vec::new();
    for (table, columns) in TABLES {
        // `prepare` created what was missing; a relation gone since is no table.
        let row = compat::read_table(client, schema, table)
            .map_err(setup)?
            .unwrap_or(compat::TableRow {
                kind: '?',
                unique_id: false,
                writable: true,
                columns: Vec::new(),
            });
        let problems: Vec<String> = compat::mismatches(columns, &row)
            .iter()
            .map(compat::Mismatch::startup_message)
            .collect();
        if !problems.is_empty() {
            return Err(OpenError::Problem(DatabaseProblem::SchemaMismatch {
                table: format!("{schema}.{table}"),
                problems,
            }));
        }
        if !row.writable {
            denied.push(format!("SELECT, INSERT, UPDATE on {schema}.{table}"));
        }
    }
    let temp: bool = client
        .query_one(
            "SELECT has_database_privilege(current_database(), 'TEMPORARY')",
            &[],
        )
        .map_err(setup)?
        .get(0);
    if !temp {
        denied.push(format!("TEMPORARY on database {}", who.database));
    }
    if !denied.is_empty() {
        return Err(OpenError::Problem(DatabaseProblem::Privilege {
            role: who.role.clone(),
            message: format!("the role {} lacks {}", who.role, denied.join(" and ")),
            needs: who.needs(),
        }));
    }
    Ok(())
}

/// Whether the server offers lz4 TOAST compression (PostgreSQL 14+ built with lz4).
pub(in crate::sink) fn has_lz4(
    c: &mut impl postgres::GenericClient,
) -> Result<bool, postgres::Error> {
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
