//! The sink's test hooks and its writer session: make the encoder or the writer
//! panic on chosen records, to exercise what a bug must not do (lose a record,
//! or stop the sink without saying so); stand in for the spool's directory
//! fsync, to count or fail it; open the writer's database session as the writer
//! does; encode rows and send jsonb as the writer does, for the fuzzers and the
//! benches.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::types::{IsNull, ToSql, Type};
use postgres::Client;

use super::SeqPredicate;
use crate::model::{Record, Seq, User};
use crate::sink::db::batch::{self, Conn};
use crate::sink::db::connect::writer_pg_config;
use crate::sink::db::encode::{self, CopyBuf};
use crate::sink::db::error::{OpenError, Who};
use crate::sink::db::schema;
use crate::sink::db::tables::{ident, TWEETS, USERS};
use crate::sink::{SinkConfig, SinkError, SinkHook, WriteError};

/// What fsyncs a directory of the spool (called with the directory).
pub type DirSyncFn = dyn Fn(&Path) -> io::Result<()> + Send + Sync;

/// Where the sink fails on purpose, for tests (a [`SinkHook`]). `None` fields
/// do nothing.
#[derive(Clone, Default)]
pub struct SinkFault {
    /// The row encoder panics on the records this selects (the record is then
    /// rejected and the rest of its batch written).
    pub encode: Option<Arc<SeqPredicate>>,
    /// The writer loop panics before writing a batch holding a record this selects
    /// (asked once per batch attempt, so it may answer differently each time).
    pub batch: Option<Arc<SeqPredicate>>,
    /// Called instead of the spool's directory fsync (after the spool file or its
    /// target tag is created); what it returns is what the fsync returned.
    pub sync_dir: Option<Arc<DirSyncFn>>,
}

impl SinkHook for SinkFault {
    fn encode_panics(&self, seq: u64) -> bool {
        self.encode.as_ref().is_some_and(|f| f(seq))
    }

    fn batch_panics(&self, records: &[Record]) -> bool {
        match &self.batch {
            Some(f) => records.iter().any(|r| f(r.tweet.seq)),
            None => false,
        }
    }

    fn sync_dir(&self, dir: &Path) -> Option<io::Result<()>> {
        self.sync_dir.as_ref().map(|f| f(dir))
    }
}

impl fmt::Debug for SinkFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkFault")
            .field("encode", &self.encode.is_some())
            .field("batch", &self.batch.is_some())
            .field("sync_dir", &self.sync_dir.is_some())
            .finish()
    }
}

/// Creates the schema and the tables that are missing, as the sink does at
/// start (idempotent, safe concurrently).
pub fn create_schema(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    schema::create(client, schema)
}

/// The writer's prepared statements that have a plan (the COPYs have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Which of a batch's user ids are stored already.
    ExistingUsers,
    /// Which of a batch's tweet ids are stored already.
    ExistingTweets,
    /// Staging → users.
    UpsertUsers,
    /// Staging → tweets.
    UpsertTweets,
}

impl Prepared {
    /// Every one of them.
    pub const ALL: [Prepared; 4] = [
        Prepared::ExistingUsers,
        Prepared::ExistingTweets,
        Prepared::UpsertUsers,
        Prepared::UpsertTweets,
    ];

    /// Its SQL text, as the writer prepares it.
    fn sql(self, schema_name: &str) -> String {
        match self {
            Prepared::ExistingUsers => USERS.lookup_sql(schema_name),
            Prepared::ExistingTweets => TWEETS.lookup_sql(schema_name),
            Prepared::UpsertUsers => USERS.upsert_sql(schema_name),
            Prepared::UpsertTweets => TWEETS.upsert_sql(schema_name),
        }
    }
}

/// The writer's database session: the connection opened exactly as the writer
/// opens it (same settings, staging tables and prepared statements), batches
/// written through it, and the plan the writer's next execution of a statement
/// gets.
#[derive(Debug)]
pub struct WriterSession {
    conn: Conn,
    schema: String,
    spool_dir: PathBuf,
}

impl WriterSession {
    /// Connects as the writer does (creating the schema if it is missing).
    pub fn open(cfg: &SinkConfig) -> Result<WriterSession, WriteError> {
        let pg = writer_pg_config(cfg).map_err(|e| match e {
            SinkError::Config(e) => WriteError::from(e),
            // `writer_pg_config` fails only on the URL.
            other => WriteError::from_io(io::Error::other(other.to_string())),
        })?;
        let mut ready = false;
        let who = Who::new(&pg.config, &cfg.schema);
        let conn = batch::open(&pg, &cfg.schema, &mut ready, &who).map_err(|e| match e {
            OpenError::Connect(e) | OpenError::Setup(e) => WriteError::from(e),
            OpenError::Problem(p) => panic!("the test database does not fit: {p}"),
        })?;
        Ok(WriterSession {
            conn,
            schema: cfg.schema.clone(),
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
    /// execution of it gets from the plan cache. rust-postgres keeps statement
    /// names to itself, so the name is looked up in the session's
    /// `pg_prepared_statements` by the statement's text.
    pub fn explain(
        &mut self,
        stmt: Prepared,
        ids: &[i64],
    ) -> Result<serde_json::Value, WriteError> {
        let sql = stmt.sql(&self.schema);
        let client = self.conn.session();
        let name: String = client
            .query_one(
                "SELECT name FROM pg_prepared_statements WHERE statement = $1",
                &[&sql],
            )?
            .get(0);
        let args = match stmt {
            Prepared::ExistingUsers | Prepared::ExistingTweets => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!("('{{{}}}'::bigint[])", list.join(","))
            }
            Prepared::UpsertUsers | Prepared::UpsertTweets => String::new(),
        };
        let text = client
            .simple_query(&format!(
                "EXPLAIN (FORMAT JSON) EXECUTE {}{args}",
                ident(&name)
            ))?
            .into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default();
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }
}

/// Fields of a `users` row in the writer's COPY.
pub const USER_FIELDS: i16 = encode::USER_FIELDS;
/// Fields of a `tweets` row in the writer's COPY.
pub const TWEET_FIELDS: i16 = encode::TWEET_FIELDS;

/// One `users` row (of `u`, written by the record of `seq`) as the writer
/// encodes it, as a whole binary COPY payload; `None` when the encoder refuses
/// it.
pub fn user_row_copy(u: &User, seq: Seq) -> Option<Vec<u8>> {
    let mut c = CopyBuf::new(0);
    encode::encode_user_row(&mut c, u, seq, &mut 0).ok()?;
    Some(c.finish())
}

/// The `tweets` row of `r` as the writer encodes it, as a whole binary COPY
/// payload; `None` when the encoder refuses it.
pub fn tweet_row_copy(r: &Record) -> Option<Vec<u8>> {
    let mut c = CopyBuf::new(0);
    encode::encode_tweet_row(&mut c, r, &mut 0).ok()?;
    Some(c.finish())
}

/// JSON text sent in jsonb's binary format (version byte 1, then the text), as
/// the writer's COPY sends it; the server parses it, so invalid JSON is refused
/// there, as a data error.
#[derive(Debug)]
pub struct Jsonb<'a>(pub &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    postgres::types::to_sql_checked!();
}
