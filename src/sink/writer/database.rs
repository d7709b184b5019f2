//! What the writer does to the database, behind [`Database`]: the one seam between
//! the writer's loop and PostgreSQL, so the loop also runs against a fake.

use std::path::PathBuf;

use super::policy::Failure;
use crate::model::Record;
use crate::sink::db::batch::{self, Conn, WriteOutcome};
use crate::sink::db::error::{OpenError, Who};
use crate::sink::drain::Drain;
use crate::sink::{DatabaseProblem, ErrorClass, WriteError};

/// A failed connect or write, with what the writer needs of it.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// How it is handled.
    pub(crate) class: ErrorClass,
    /// SQLSTATE 57014 (statement timeout or cancel).
    pub(crate) canceled: bool,
    /// The permanent problem behind it, if it is one.
    pub(crate) problem: Option<DatabaseProblem>,
    /// A one-line description.
    pub(crate) message: String,
}

impl Refusal {
    /// The plain data the policy decides on.
    pub(crate) fn failure(&self) -> Failure {
        Failure {
            class: self.class,
            canceled: self.canceled,
            problem: self.problem.is_some(),
        }
    }

    fn from_open(e: &OpenError, who: &Who) -> Refusal {
        let problem = e.problem(who);
        Refusal {
            class: if problem.is_some() {
                ErrorClass::Permanent
            } else {
                ErrorClass::Connection
            },
            canceled: false,
            problem,
            message: e.message(),
        }
    }

    fn from_write(e: &WriteError, who: &Who) -> Refusal {
        let class = e.class();
        let problem = match class {
            ErrorClass::Permanent => e.db().and_then(|d| who.problem(d, false)),
            _ => None,
        };
        Refusal {
            class,
            canceled: e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED),
            problem,
            message: e.message(),
        }
    }
}

/// The writer's database.
pub(crate) trait Database {
    /// Whether the write connection is open.
    fn is_connected(&self) -> bool;
    /// Opens the write connection; unless `*schema_ready` (which it then sets),
    /// first creates what is missing of the schema and checks the tables.
    fn connect(&mut self, schema_ready: &mut bool) -> Result<(), Refusal>;
    /// The highest `ingest_seq` stored, on the open connection.
    fn stored_seq_max(&mut self) -> Result<Option<u64>, String>;
    /// Drops the write connection.
    fn disconnect(&mut self);
    /// Writes a batch on the open connection (the drain may cancel it meanwhile).
    fn write(&mut self, records: &[Record]) -> Result<WriteOutcome, Refusal>;
}

/// PostgreSQL.
pub(crate) struct Postgres<'a> {
    pg: &'a crate::sink::Db,
    schema: &'a str,
    who: Who,
    drain: &'a Drain,
    spool_dir: PathBuf,
    conn: Option<Conn>,
    #[cfg(any(test, feature = "testkit"))]
    fault: Option<crate::sink::SinkFault>,
}

impl<'a> Postgres<'a> {
    /// The writer's connection to `pg`, its rejected rows saved under `spool_dir`,
    /// its writes cancellable by `drain`.
    pub(crate) fn new(
        cfg: &'a crate::sink::SinkConfig,
        pg: &'a crate::sink::Db,
        drain: &'a Drain,
        spool_dir: PathBuf,
    ) -> Postgres<'a> {
        Postgres {
            pg,
            schema: &cfg.schema,
            who: Who::new(&pg.config, &cfg.schema),
            drain,
            spool_dir,
            conn: None,
            #[cfg(any(test, feature = "testkit"))]
            fault: cfg.fault.clone(),
        }
    }
}

impl Database for Postgres<'_> {
    fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&mut self, schema_ready: &mut bool) -> Result<(), Refusal> {
        #[cfg_attr(not(any(test, feature = "testkit")), allow(unused_mut))]
        let mut c = batch::open(self.pg, self.schema, schema_ready, &self.who)
            .map_err(|e| Refusal::from_open(&e, &self.who))?;
        #[cfg(any(test, feature = "testkit"))]
        {
            c.fault = self.fault.clone();
        }
        self.conn = Some(c);
        Ok(())
    }

    fn stored_seq_max(&mut self) -> Result<Option<u64>, String> {
        match self.conn.as_mut() {
            Some(c) => c.stored_seq_max(self.schema).map_err(|e| e.message()),
            None => Err("no connection".into()),
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }

    fn write(&mut self, records: &[Record]) -> Result<WriteOutcome, Refusal> {
        let Some(c) = self.conn.as_mut() else {
            return Err(Refusal {
                class: ErrorClass::Connection,
                canceled: false,
                problem: None,
                message: "no connection".into(),
            });
        };
        #[cfg(any(test, feature = "testkit"))]
        if let Some(f) = &self.fault {
            if f.batch_panics(records.iter().map(|r| r.tweet.seq)) {
                panic!("test fault: writer panic on a batch of {}", records.len());
            }
        }
        self.drain.begin(c.cancel_token());
        let written = c.write_batch(records, &self.spool_dir);
        self.drain.end();
        written.map_err(|e| Refusal::from_write(&e, &self.who))
    }
}
