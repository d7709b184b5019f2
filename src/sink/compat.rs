//! Whether existing `users` and `tweets` tables can take the sink's writes.
//!
//! The sink creates its tables only when they are missing (`CREATE TABLE IF
//! NOT EXISTS`), so a table made by someone else, or by an older tweetflow,
//! is used as it is. It is compatible when it is an ordinary or partitioned
//! table, has every column the sink writes with the same type, has a unique
//! key on `id` alone (the upserts' `ON CONFLICT (id)`), and has no extra
//! `NOT NULL` column without a default (the sink's rows would not fill it),
//! nor `NOT NULL` where the sink may write a NULL.
//!
//! [`table_problems`] is the pure rule over catalog rows; [`check_tables`] reads
//! the rows from `pg_catalog` (`format_type` names types the way the DDL does,
//! `text[]` rather than information_schema's `ARRAY`).

use postgres::GenericClient;

/// One column the sink writes: name, type as `format_type` prints it, whether
/// the sink may write NULL into it.
pub(crate) type Column = (&'static str, &'static str, bool);

/// The columns of `users`, as `schema::create_sql` makes them.
pub(crate) const USERS: &[Column] = &[
    ("id", "bigint", false),
    ("screen_name", "text", true),
    ("name", "text", true),
    ("followers_count", "bigint", true),
    ("friends_count", "bigint", true),
    ("statuses_count", "bigint", true),
    ("verified", "boolean", true),
    ("lang", "text", true),
    ("created_at", "timestamp with time zone", true),
    ("raw", "jsonb", false),
    ("ingest_seq", "bigint", false),
    ("updated_at", "timestamp with time zone", false),
];

/// The columns of `tweets`, as `schema::create_sql` makes them.
pub(crate) const TWEETS: &[Column] = &[
    ("id", "bigint", false),
    ("user_id", "bigint", false),
    ("text", "text", true),
    ("lang", "text", true),
    ("created_at", "timestamp with time zone", true),
    ("favorite_count", "bigint", false),
    ("retweet_count", "bigint", false),
    ("retweeted_status_id", "bigint", true),
    ("hashtags", "text[]", false),
    ("sentiment", "double precision", true),
    ("engagement", "double precision", true),
    ("raw", "jsonb", false),
    ("ingest_seq", "bigint", false),
    ("received_at", "timestamp with time zone", true),
    ("ingested_at", "timestamp with time zone", false),
];

/// A column of an existing table, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnRow {
    /// Column name.
    pub(crate) name: String,
    /// `format_type(atttypid, atttypmod)`.
    pub(crate) type_name: String,
    /// `attnotnull`.
    pub(crate) not_null: bool,
    /// `atthasdef`.
    pub(crate) has_default: bool,
}

/// An existing table, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRow {
    /// `relkind`: `r` table, `p` partitioned table, `v` view, …
    pub(crate) kind: char,
    /// A unique index (or primary key) on `id` alone, without a predicate.
    pub(crate) unique_id: bool,
    /// Its columns.
    pub(crate) columns: Vec<ColumnRow>,
}

/// What makes an existing table unusable for the sink (empty: compatible).
pub(crate) fn table_problems(table: &str, want: &[Column], have: &TableRow) -> Vec<String> {
    let mut out = Vec::new();
    if have.kind != 'r' && have.kind != 'p' {
        out.push(format!("{table} is not a table (relkind {:?})", have.kind));
        return out;
    }
    for (name, ty, nullable) in want {
        match have.columns.iter().find(|c| c.name == *name) {
            None => out.push(format!("{table}.{name} is missing (expected {ty})")),
            Some(c) if c.type_name != *ty => {
                out.push(format!("{table}.{name} is {}, expected {ty}", c.type_name))
            }
            Some(c) if *nullable && c.not_null => out.push(format!(
                "{table}.{name} is NOT NULL, but tweetflow may write NULL into it"
            )),
            Some(_) => {}
        }
    }
    for c in &have.columns {
        if !want.iter().any(|(n, _, _)| *n == c.name) && c.not_null && !c.has_default {
            out.push(format!(
                "{table}.{} is an extra NOT NULL column without a default (tweetflow does not \
                 fill it)",
                c.name
            ));
        }
    }
    if !have.unique_id {
        out.push(format!(
            "{table} has no primary key or unique index on id alone (needed by ON CONFLICT (id))"
        ));
    }
    out
}

/// Reads `schema`.`users` and `schema`.`tweets` from the catalog and checks them;
/// a missing table is fine (the sink creates it). Returns the problems of both
/// tables and the names of those that exist.
pub(crate) fn check_tables(
    client: &mut impl GenericClient,
    schema: &str,
) -> Result<(Vec<String>, Vec<&'static str>), postgres::Error> {
    let mut problems = Vec::new();
    let mut present = Vec::new();
    for (table, want) in [("users", USERS), ("tweets", TWEETS)] {
        let rel = client.query_opt(
            "SELECT c.oid, c.relkind::text, EXISTS (
                 SELECT 1 FROM pg_index i JOIN pg_attribute a
                   ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                  WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
                    AND i.indpred IS NULL AND a.attname = 'id')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )?;
        let Some(rel) = rel else { continue };
        present.push(table);
        let oid: postgres::types::Oid = rel.get(0);
        let kind: String = rel.get(1);
        let columns = client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull, atthasdef
                   FROM pg_attribute
                  WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
                  ORDER BY attnum",
                &[&oid],
            )?
            .iter()
            .map(|r| ColumnRow {
                name: r.get(0),
                type_name: r.get(1),
                not_null: r.get(2),
                has_default: r.get(3),
            })
            .collect();
        let row = TableRow {
            kind: kind.chars().next().unwrap_or('?'),
            unique_id: rel.get(2),
            columns,
        };
        problems.extend(table_problems(table, want, &row));
    }
    Ok((problems, present))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_created(want: &[Column]) -> TableRow {
        TableRow {
            kind: 'r',
            unique_id: true,
            columns: want
                .iter()
                .map(|(n, t, nullable)| ColumnRow {
                    name: n.to_string(),
                    type_name: t.to_string(),
                    not_null: !nullable,
                    has_default: false,
                })
                .collect(),
        }
    }

    /// The column lists follow the DDL: the names, in order, as written in it.
    #[test]
    fn the_lists_match_the_ddl() {
        let schema_ddl = |table, cols| super::super::schema::table_sql("s", table, cols, false);
        let ddl = format!(
            "{}\n{}",
            schema_ddl("users", super::super::schema::USERS),
            schema_ddl("tweets", super::super::schema::TWEETS)
        );
        for (table, want) in [("users", USERS), ("tweets", TWEETS)] {
            let start = ddl
                .find(&format!("\"s\".{table} ("))
                .or_else(|| ddl.find(&format!("s.{table} (")))
                .unwrap_or_else(|| panic!("no CREATE TABLE {table} in {ddl}"));
            let body = &ddl[start..];
            let body = &body[..body.find(");").unwrap()];
            let cols: Vec<(&str, bool)> = body
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let name = w.next()?;
                    Some((name, !l.contains("NOT NULL") && !l.contains("PRIMARY KEY")))
                })
                .collect();
            let listed: Vec<(&str, bool)> = want.iter().map(|(n, _, nl)| (*n, *nl)).collect();
            assert_eq!(cols, listed, "{table}");
        }
    }

    #[test]
    fn a_table_as_created_is_compatible_and_extras_with_defaults_are_fine() {
        let mut t = as_created(TWEETS);
        assert_eq!(table_problems("tweets", TWEETS, &t), Vec::<String>::new());
        t.columns.push(ColumnRow {
            name: "note".into(),
            type_name: "text".into(),
            not_null: true,
            has_default: true,
        });
        assert!(table_problems("tweets", TWEETS, &t).is_empty());
    }

    #[test]
    fn each_incompatibility_is_named() {
        let mut t = as_created(USERS);
        t.columns.retain(|c| c.name != "raw");
        t.columns[0].type_name = "text".into();
        t.columns[1].not_null = true; // screen_name
        t.columns.push(ColumnRow {
            name: "tenant".into(),
            type_name: "integer".into(),
            not_null: true,
            has_default: false,
        });
        t.unique_id = false;
        let p = table_problems("users", USERS, &t);
        assert_eq!(
            p,
            vec![
                "users.id is text, expected bigint".to_string(),
                "users.screen_name is NOT NULL, but tweetflow may write NULL into it".into(),
                "users.raw is missing (expected jsonb)".into(),
                "users.tenant is an extra NOT NULL column without a default (tweetflow does not \
                 fill it)"
                    .into(),
                "users has no primary key or unique index on id alone (needed by ON CONFLICT (id))"
                    .into(),
            ]
        );
        let view = TableRow {
            kind: 'v',
            ..as_created(USERS)
        };
        assert_eq!(
            table_problems("users", USERS, &view),
            vec!["users is not a table (relkind 'v')".to_string()]
        );
    }
}
