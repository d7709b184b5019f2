//! The one column list of the `users` and `tweets` tables ([`USERS`],
//! [`TWEETS`]), and every SQL text made from it: the tables' DDL, the staging
//! tables, the binary COPY statements, the id lookups and the upserts. The
//! compatibility check (`compat`) compares existing tables with the same list,
//! and the COPY encoder's rows have the list's copied columns, in its order
//! ([`Table::copied`]); a unit test of the encoder holds its fields against the
//! list's types.

/// Quotes an identifier (`"` doubled).
pub(in crate::sink) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the sink fills a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sink) enum Fill {
    /// Sent in the COPY rows, stored as sent.
    Copy,
    /// Sent in the COPY rows; the upsert stores this SQL default for a NULL (the
    /// column's DDL has the same default).
    CopyOr(&'static str),
    /// Not sent: the upsert stores `now()`.
    Now,
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
    /// How the sink fills it.
    pub(in crate::sink) fill: Fill,
}

impl Column {
    /// Whether the COPY rows carry it.
    pub(in crate::sink) const fn is_copied(&self) -> bool {
        !matches!(self.fill, Fill::Now)
    }
}

const fn col(
    name: &'static str,
    ty: &'static str,
    may_be_null: bool,
    ddl: &'static str,
    fill: Fill,
) -> Column {
    Column {
        name,
        ty,
        may_be_null,
        ddl,
        fill,
    }
}

const TSTZ: &str = "timestamp with time zone";
const COPY: Fill = Fill::Copy;

/// One of the sink's tables: its name and its columns.
#[derive(Debug, Clone, Copy)]
pub(in crate::sink) struct Table {
    /// Its name (inside the configured schema).
    pub(in crate::sink) name: &'static str,
    /// Its columns, in the order of the DDL and of the COPY rows.
    pub(in crate::sink) columns: &'static [Column],
}

/// The `users` table.
#[rustfmt::skip]
pub(in crate::sink) const USERS: Table = Table {
    name: "users",
    columns: &[
        col("id", "bigint", false, " PRIMARY KEY", COPY),
        col("screen_name", "text", true, "", COPY),
        col("name", "text", true, "", COPY),
        col("followers_count", "bigint", false, "", COPY),
        col("friends_count", "bigint", true, "", COPY),
        col("statuses_count", "bigint", true, "", COPY),
        col("verified", "boolean", true, "", COPY),
        col("lang", "text", true, "", COPY),
        col("created_at", TSTZ, true, "", COPY),
        col("raw", "jsonb", false, " NOT NULL", COPY),
        col("ingest_seq", "bigint", false, " NOT NULL", COPY),
        col("updated_at", TSTZ, false, " NOT NULL DEFAULT now()", Fill::Now),
    ],
};

/// The `tweets` table.
#[rustfmt::skip]
pub(in crate::sink) const TWEETS: Table = Table {
    name: "tweets",
    columns: &[
        col("id", "bigint", false, " PRIMARY KEY", COPY),
        col("user_id", "bigint", false, " NOT NULL", COPY),
        col("text", "text", false, "", COPY),
        col("lang", "text", true, "", COPY),
        col("created_at", TSTZ, true, "", COPY),
        col("favorite_count", "bigint", false, " NOT NULL DEFAULT 0", Fill::CopyOr("0")),
        col("retweet_count", "bigint", false, " NOT NULL DEFAULT 0", Fill::CopyOr("0")),
        col("retweeted_status_id", "bigint", true, "", COPY),
        col("hashtags", "text[]", false, " NOT NULL DEFAULT '{}'", Fill::CopyOr("'{}'")),
        col("sentiment", "double precision", true, "", COPY),
        col("engagement", "double precision", true, "", COPY),
        col("raw", "jsonb", false, " NOT NULL", COPY),
        col("ingest_seq", "bigint", false, " NOT NULL", COPY),
        col("received_at", TSTZ, true, "", COPY),
        col("ingested_at", TSTZ, false, " NOT NULL DEFAULT now()", Fill::Now),
    ],
};

/// The two tables.
pub(in crate::sink) const TABLES: [Table; 2] = [USERS, TWEETS];

/// Where a binary COPY goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sink) enum CopyInto {
    /// The connection's staging table (then the upsert).
    Staging,
    /// The table itself (the fast path for ids not in it yet).
    Table,
}

impl Table {
    /// The number of columns the COPY rows carry ([`Column::is_copied`]): the
    /// field count of each encoded row.
    pub(in crate::sink) const fn copied(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.columns.len() {
            if self.columns[i].is_copied() {
                n += 1;
            }
            i += 1;
        }
        n
    }

    /// The columns the COPY rows carry, in order.
    pub(in crate::sink) fn copied_columns(&self) -> impl Iterator<Item = &'static Column> {
        self.columns.iter().filter(|c| c.is_copied())
    }

    /// The names of the copied columns, comma-separated.
    fn copy_list(&self) -> String {
        let names: Vec<&str> = self.copied_columns().map(|c| c.name).collect();
        names.join(", ")
    }

    /// The name of its per-connection staging table.
    pub(in crate::sink) fn stage(&self) -> String {
        format!("tf_stage_{}", self.name)
    }

    /// `schema`.`table`, the schema quoted.
    fn qualified(&self, schema: &str) -> String {
        format!("{}.{}", ident(schema), self.name)
    }

    /// Binary COPY of its rows into `into`.
    pub(in crate::sink) fn copy_sql(&self, schema: &str, into: CopyInto) -> String {
        let target = match into {
            CopyInto::Staging => self.stage(),
            CopyInto::Table => self.qualified(schema),
        };
        format!(
            "COPY {target} ({}) FROM STDIN (FORMAT binary)",
            self.copy_list()
        )
    }

    /// Which of the given ids are already stored.
    pub(in crate::sink) fn lookup_sql(&self, schema: &str) -> String {
        format!(
            "SELECT id FROM {} WHERE id = ANY($1::bigint[])",
            self.qualified(schema)
        )
    }

    /// Staging → table: the newest version per id, and only if newer than the
    /// stored row. A column the COPY does not carry gets `now()`; one with a
    /// default gets it for a NULL.
    pub(in crate::sink) fn upsert_sql(&self, schema: &str) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let select: Vec<String> = self
            .columns
            .iter()
            .map(|c| match c.fill {
                Fill::Copy => c.name.to_string(),
                Fill::CopyOr(default) => format!("coalesce({}, {default})", c.name),
                Fill::Now => "now()".to_string(),
            })
            .collect();
        let set: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.name != "id")
            .map(|c| format!("{0} = excluded.{0}", c.name))
            .collect();
        format!(
            "INSERT INTO {} AS t ({})\nSELECT DISTINCT ON (id) {}\nFROM {}\n\
             ORDER BY id, ingest_seq DESC\nON CONFLICT (id) DO UPDATE SET {}\n\
             WHERE excluded.ingest_seq > t.ingest_seq",
            self.qualified(schema),
            names.join(", "),
            select.join(", "),
            self.stage(),
            set.join(", ")
        )
    }
}

/// The DDL of one table. With `lz4`, the `raw` column uses PostgreSQL 14+'s lz4
/// TOAST compression (several times faster than the default pglz on ~2 KB tweets).
pub(in crate::sink) fn table_sql(schema: &str, table: &Table, lz4: bool) -> String {
    let cols: Vec<String> = table
        .columns
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
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n);",
        table.qualified(schema),
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

/// The per-connection staging tables (temporary, emptied at each commit): the
/// copied columns of each table, with their types, without constraints.
///
/// The `jsonb` columns are compressed with lz4 when available: the upsert then
/// copies the compressed value into the (also lz4) table without compressing it
/// again. Without lz4 they are stored uncompressed (`EXTERNAL`), so pglz runs only
/// once, in the final table.
pub(in crate::sink) fn staging_sql(lz4: bool) -> String {
    let mut sql = String::new();
    for t in TABLES {
        let cols: Vec<String> = t
            .copied_columns()
            .map(|c| format!("    {} {}", c.name, c.ty))
            .collect();
        sql.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (\n{}\n) ON COMMIT DELETE ROWS;\n",
            t.stage(),
            cols.join(",\n")
        ));
    }
    for t in TABLES {
        for c in t.copied_columns().filter(|c| c.ty == "jsonb") {
            let storage = if lz4 {
                "SET COMPRESSION lz4"
            } else {
                "SET STORAGE EXTERNAL"
            };
            sql.push_str(&format!(
                "ALTER TABLE {} ALTER {} {storage};\n",
                t.stage(),
                c.name
            ));
        }
    }
    sql
}

/// The highest `ingest_seq` stored in either table.
pub(in crate::sink) fn seq_max_sql(schema: &str) -> String {
    let each: Vec<String> = TABLES
        .iter()
        .map(|t| format!("(SELECT max(ingest_seq) FROM {})", t.qualified(schema)))
        .collect();
    format!("SELECT greatest({})", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names inside the first parentheses after `after` in `sql`.
    fn names_after(sql: &str, after: &str) -> Vec<String> {
        let rest = &sql[sql.find(after).expect(after) + after.len()..];
        let open = rest.find('(').expect("(");
        let close = rest.find(')').expect(")");
        rest[open + 1..close]
            .split(',')
            .map(|c| c.split_whitespace().next().expect("a name").to_string())
            .collect()
    }

    fn names(cols: impl Iterator<Item = &'static Column>) -> Vec<String> {
        cols.map(|c| c.name.to_string()).collect()
    }

    #[test]
    fn every_statement_names_the_columns_of_the_list() {
        let staging = staging_sql(false);
        for t in TABLES {
            let copied = names(t.copied_columns());
            let all = names(t.columns.iter());
            for into in [CopyInto::Staging, CopyInto::Table] {
                assert_eq!(names_after(&t.copy_sql("s", into), "COPY"), copied);
            }
            let stage = format!("CREATE TEMP TABLE IF NOT EXISTS {}", t.stage());
            assert_eq!(names_after(&staging, &stage), copied, "{}", t.name);
            let upsert = t.upsert_sql("s");
            assert_eq!(names_after(&upsert, "INSERT INTO"), all, "{}", t.name);
            for c in t.columns.iter().filter(|c| c.name != "id") {
                let set = format!("{0} = excluded.{0}", c.name);
                assert!(upsert.contains(&set), "{}: no {set}", t.name);
            }
            // Every column the COPY leaves out is one the upsert fills itself.
            for c in t.columns.iter().filter(|c| !c.is_copied()) {
                assert!(c.ddl.ends_with("DEFAULT now()"), "{}.{}", t.name, c.name);
            }
            assert_eq!(t.copied(), copied.len());
        }
    }

    #[test]
    fn the_upserts_defaults_are_the_tables_defaults() {
        for t in TABLES {
            for c in t.columns {
                if let Fill::CopyOr(default) = c.fill {
                    let ddl = format!("NOT NULL DEFAULT {default}");
                    assert!(c.ddl.ends_with(&ddl), "{}.{}: {}", t.name, c.name, c.ddl);
                }
            }
        }
    }
}
