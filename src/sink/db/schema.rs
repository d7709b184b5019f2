//! The tables, the staging tables and the upserts.
//!
//! `create` runs in one transaction under `pg_advisory_xact_lock`, so two instances
//! starting at once do not race on `CREATE … IF NOT EXISTS` (which alone can fail
//! with a unique violation on the catalog). It creates only what is missing.
//! `prepare` then checks what exists against the one column list
//! ([`TABLES`](super::tables::TABLES)) the DDL is generated from, with the one compatibility rule that
//! `tweetflow check` uses too (`compat`), so a table of another application with
//! the same name is reported before a single record is read, not discovered
//! batch by batch.

use postgres::Client;

use super::compat;
use super::error::{OpenError, Who};
use super::tables::{ident, seq_index_sql, seq_max_sql, table_sql, TABLES};
use crate::sink::failure::DatabaseProblem;

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
    for t in TABLES {
        let table = t.name;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
                &[&schema, &table],
            )?
            .get(0);
        if !exists {
            tx.batch_execute(&table_sql(schema, &t, lz4))?;
            tx.batch_execute(&seq_index_sql(schema, table))?;
        }
    }
    tx.commit()
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
    for table in TABLES.map(|t| t.name) {
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
    let max: Option<i64> = client.query_one(&seq_max_sql(schema), &[])?.get(0);
    Ok(max.map(|m| u64::try_from(m).unwrap_or(0)))
}

/// The checks of [`prepare`] on existing tables: the one compatibility rule
/// ([`compat::mismatches`], worded for the start-up error), then the privileges.
fn check(client: &mut Client, schema: &str, who: &Who) -> Result<(), OpenError> {
    let setup = OpenError::Setup;
    let mut denied = Vec::new();
    for t in TABLES {
        let (table, columns) = (t.name, t.columns);
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
