//! The writer's database session, for tests (only with `cfg(test)` or the
//! `testkit` feature): the connection opened exactly as the writer opens it (same
//! settings, staging tables and prepared statements), batches written through it,
//! and the plan the writer's next execution of a statement gets.

use std::path::PathBuf;

use super::config::SinkConfig;
use super::db::batch::{self, Conn, Prepared};
use super::db::connect::writer_pg_config;
use super::db::error::{OpenError, Who, WriteError};
use super::failure::SinkError;
use crate::model::Record;

/// One writer session on the database of a [`SinkConfig`].
#[derive(Debug)]
pub struct WriterSession {
    conn: Conn,
    spool_dir: PathBuf,
}

impl WriterSession {
    /// Connects as the writer does (creating the schema if it is missing).
    pub fn open(cfg: &SinkConfig) -> Result<WriterSession, WriteError> {
        let pg = writer_pg_config(cfg).map_err(|e| match e {
            SinkError::Config(e) => WriteError::from(e),
            other => unreachable_config(other),
        })?;
        let mut ready = false;
        let who = Who::new(&pg.config, &cfg.schema);
        let conn = batch::open(&pg, &cfg.schema, &mut ready, &who).map_err(|e| match e {
            OpenError::Connect(e) | OpenError::Setup(e) => WriteError::from(e),
            OpenError::Problem(p) => panic!("the test database does not fit: {p}"),
        })?;
        Ok(WriterSession {
            conn,
            spool_dir: cfg.spool_dir.clone(),
        })
    }

    /// Writes one batch as the writer does; returns the tweet rows it changed.
    pub fn write(&mut self, records: &[Record]) -> Result<u64, WriteError> {
        Ok(self
            .conn
            .write_batch(records, &self.spool_dir)?
            .tweets_changed)
    }

    /// `EXPLAIN (FORMAT JSON) EXECUTE` of one of the session's prepared statements
    /// (a lookup with `ids`), on the session itself: the plan that the writer's next
    /// execution of it gets from the plan cache.
    pub fn explain(
        &mut self,
        stmt: Prepared,
        ids: &[i64],
    ) -> Result<serde_json::Value, WriteError> {
        Ok(self.conn.explain(stmt, ids)?)
    }
}

/// `writer_pg_config` fails only on the URL.
fn unreachable_config(e: SinkError) -> WriteError {
    WriteError::from_io(std::io::Error::other(e.to_string()))
}
