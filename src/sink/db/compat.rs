//! Whether existing `users` and `tweets` tables can take the sink's writes: the
//! one rule, used by the start-up check (`schema::prepare`) and by `tweetflow
//! check` ([`check_tables`]).
//!
//! The sink creates its tables only when they are missing (`CREATE TABLE IF
//! NOT EXISTS`), so a table made by someone else, or by an older tweetflow,
//! is used as it is. It is compatible when it is an ordinary or partitioned
//! table, has every column the sink writes ([`tables::USERS`](super::tables::USERS), [`tables::TWEETS`](super::tables::TWEETS),
//! the lists the DDL is generated from) with the same type, has a unique key on
//! `id` alone (the upserts' `ON CONFLICT (id)`), and has no extra `NOT NULL`
//! column without a default (the sink's rows would not fill it), nor `NOT NULL`
//! where the sink may write a NULL.
//!
//! [`mismatches`] is the pure rule over catalog rows, [`read_table`] reads the
//! rows from `pg_catalog` (`format_type` names types the way the DDL does,
//! `text[]` rather than information_schema's `ARRAY`). Each caller words the
//! findings its own way: [`Mismatch::check_message`] for `tweetflow check`,
//! [`Mismatch::startup_message`] for the start-up error.

use postgres::GenericClient;

use super::tables::{Column, TABLES};

/// A column of an existing table, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnRow {
    /// Column name.
    pub(crate) name: String,
    /// `format_type(atttypid, atttypmod)`.
    pub(crate) type_name: String,
    /// `attnotnull`.
    pub(crate) not_null: bool,
    /// Filled when not written: `atthasdef`, an identity or a generated column.
    pub(crate) has_default: bool,
}

/// An existing table, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRow {
    /// `relkind`: `r` table, `p` partitioned table, `v` view, …
    pub(crate) kind: char,
    /// A unique index (or primary key) on `id` alone, without a predicate.
    pub(crate) unique_id: bool,
    /// The role may SELECT, INSERT and UPDATE it.
    pub(crate) writable: bool,
    /// Its columns.
    pub(crate) columns: Vec<ColumnRow>,
}

/// One way an existing table does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Not an ordinary or partitioned table (its `relkind`).
    NotATable(char),
    /// An expected column is missing.
    Missing {
        /// The column.
        column: &'static str,
        /// Its expected type.
        ty: &'static str,
    },
    /// An expected column has another type.
    WrongType {
        /// The column.
        column: &'static str,
        /// Its type in the table.
        found: String,
        /// Its expected type.
        ty: &'static str,
    },
    /// `NOT NULL` where tweetflow may write NULL.
    NotNull {
        /// The column.
        column: &'static str,
    },
    /// An extra `NOT NULL` column without a default: tweetflow does not fill it.
    ExtraNotNull {
        /// The column.
        column: String,
    },
    /// No unique index on `id` alone (the upserts' `ON CONFLICT (id)` needs one).
    NoUniqueId,
}

impl Mismatch {
    /// As `tweetflow check` words it, naming the table.
    pub(crate) fn check_message(&self, table: &str) -> String {
        match self {
            Mismatch::NotATable(kind) => format!("{table} is not a table (relkind {kind:?})"),
            Mismatch::Missing { column, ty } => {
                format!("{table}.{column} is missing (expected {ty})")
            }
            Mismatch::WrongType { column, found, ty } => {
                format!("{table}.{column} is {found}, expected {ty}")
            }
            Mismatch::NotNull { column } => {
                format!("{table}.{column} is NOT NULL, but tweetflow may write NULL into it")
            }
            Mismatch::ExtraNotNull { column } => format!(
                "{table}.{column} is an extra NOT NULL column without a default (tweetflow does \
                 not fill it)"
            ),
            Mismatch::NoUniqueId => format!(
                "{table} has no primary key or unique index on id alone (needed by ON CONFLICT \
                 (id))"
            ),
        }
    }

    /// As the start-up error words it (the table is named beside it).
    pub(crate) fn startup_message(&self) -> String {
        match self {
            Mismatch::NotATable(kind) => format!("it is not a table (pg_class.relkind {kind})"),
            Mismatch::Missing { column, ty } => format!("column {column} ({ty}) is missing"),
            Mismatch::WrongType { column, found, ty } => {
                format!("column {column} is {found}, expected {ty}")
            }
            Mismatch::NotNull { column } => format!(
                "column {column} is NOT NULL, but tweetflow writes NULL when a tweet has no \
                 value for it"
            ),
            Mismatch::ExtraNotNull { column } => format!(
                "column {column} is NOT NULL without a default, and tweetflow does not write it"
            ),
            Mismatch::NoUniqueId => "no unique index on id alone (the upsert needs one)".into(),
        }
    }
}

/// Every way the existing table `have` does not fit the columns `want` (empty:
/// compatible), in order: the kind, each expected column (its type, then its
/// nullability), the extra columns, the unique key.
pub(crate) fn mismatches(want: &[Column], have: &TableRow) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if have.kind != 'r' && have.kind != 'p' {
        out.push(Mismatch::NotATable(have.kind));
    }
    for c in want {
        match have.columns.iter().find(|h| h.name == c.name) {
            None => out.push(Mismatch::Missing {
                column: c.name,
                ty: c.ty,
            }),
            Some(h) => {
                if h.type_name != c.ty {
                    out.push(Mismatch::WrongType {
                        column: c.name,
                        found: h.type_name.clone(),
                        ty: c.ty,
                    });
                }
                if h.not_null && c.may_be_null {
                    out.push(Mismatch::NotNull { column: c.name });
                }
            }
        }
    }
    for h in &have.columns {
        if h.not_null && !h.has_default && !want.iter().any(|c| c.name == h.name) {
            out.push(Mismatch::ExtraNotNull {
                column: h.name.clone(),
            });
        }
    }
    if !have.unique_id {
        out.push(Mismatch::NoUniqueId);
    }
    out
}

/// Reads `schema`.`table` from the catalog (`None`: there is no such relation).
pub(crate) fn read_table(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<Option<TableRow>, postgres::Error> {
    let rel = client.query_opt(
        "SELECT c.oid, c.relkind::text, EXISTS (
             SELECT 1 FROM pg_index i JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
                AND i.indpred IS NULL AND a.attname = 'id'),
                has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
                AND has_table_privilege(c.oid, 'UPDATE')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2",
        &[&schema, &table],
    )?;
    let Some(rel) = rel else { return Ok(None) };
    let oid: postgres::types::Oid = rel.get(0);
    let kind: String = rel.get(1);
    let columns = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull,
                    (atthasdef OR attidentity::text <> '' OR attgenerated::text <> '')
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
    Ok(Some(TableRow {
        kind: kind.chars().next().unwrap_or('?'),
        unique_id: rel.get(2),
        writable: rel.get(3),
        columns,
    }))
}

/// `tweetflow check`: reads `schema`.`users` and `schema`.`tweets` and checks
/// them; a missing table is fine (the sink creates it). Returns the problems of
/// both tables, worded for the check, and the names of those that exist. A
/// relation that is no table is reported as that alone.
pub(crate) fn check_tables(
    client: &mut impl GenericClient,
    schema: &str,
) -> Result<(Vec<String>, Vec<&'static str>), postgres::Error> {
    let mut problems = Vec::new();
    let mut present = Vec::new();
    for t in TABLES {
        let (table, want) = (t.name, t.columns);
        let Some(row) = read_table(client, schema, table)? else {
            continue;
        };
        present.push(table);
        problems.extend(check_messages(table, &mismatches(want, &row)));
    }
    Ok((problems, present))
}

/// The check's wording of `found`: a relation that is no table is reported as that
/// alone, and a column of the wrong type not also for its nullability.
fn check_messages(table: &str, found: &[Mismatch]) -> Vec<String> {
    if let Some(m) = found.iter().find(|m| matches!(m, Mismatch::NotATable(_))) {
        return vec![m.check_message(table)];
    }
    found
        .iter()
        .filter(|m| match m {
            Mismatch::NotNull { column } => !found
                .iter()
                .any(|w| matches!(w, Mismatch::WrongType { column: c, .. } if c == column)),
            _ => true,
        })
        .map(|m| m.check_message(table))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tables::{TWEETS, USERS};
    use super::*;

    fn as_created(want: &[Column]) -> TableRow {
        TableRow {
            kind: 'r',
            unique_id: true,
            writable: true,
            columns: want
                .iter()
                .map(|c| ColumnRow {
                    name: c.name.to_string(),
                    type_name: c.ty.to_string(),
                    not_null: !c.may_be_null,
                    has_default: false,
                })
                .collect(),
        }
    }

    fn table_problems(table: &str, want: &[Column], have: &TableRow) -> Vec<String> {
        check_messages(table, &mismatches(want, have))
    }

    #[test]
    fn a_table_as_created_is_compatible_and_extras_with_defaults_are_fine() {
        let mut t = as_created(TWEETS.columns);
        assert_eq!(
            table_problems("tweets", TWEETS.columns, &t),
            Vec::<String>::new()
        );
        t.columns.push(ColumnRow {
            name: "note".into(),
            type_name: "text".into(),
            not_null: true,
            has_default: true,
        });
        assert!(table_problems("tweets", TWEETS.columns, &t).is_empty());
    }

    #[test]
    fn each_incompatibility_is_named() {
        let mut t = as_created(USERS.columns);
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
        let p = table_problems("users", USERS.columns, &t);
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
            ..as_created(USERS.columns)
        };
        assert_eq!(
            table_problems("users", USERS.columns, &view),
            vec!["users is not a table (relkind 'v')".to_string()]
        );
    }

    #[test]
    fn the_start_up_wording_reports_every_finding() {
        let mut t = as_created(TWEETS.columns);
        t.kind = 'v';
        t.columns[0].type_name = "text".into();
        t.columns[0].not_null = true;
        let found: Vec<String> = mismatches(TWEETS.columns, &t)
            .iter()
            .map(Mismatch::startup_message)
            .collect();
        assert_eq!(
            found,
            vec![
                "it is not a table (pg_class.relkind v)".to_string(),
                "column id is text, expected bigint".into(),
            ]
        );
    }
}
