//! The writer's connection: its staging tables, prepared statements and the I/O of
//! one batch (binary COPY streams inside one transaction), with the bisection of
//! batches the database refuses.
//!
//! ```text
//! BEGIN
//! COPY tf_stage_users  FROM STDIN (FORMAT binary)      -- temp, ON COMMIT DELETE ROWS
//! COPY tf_stage_tweets FROM STDIN (FORMAT binary)
//! INSERT INTO users  AS t SELECT DISTINCT ON (id) … FROM tf_stage_users ORDER BY id, ingest_seq DESC
//!   ON CONFLICT (id) DO UPDATE SET … WHERE excluded.ingest_seq > t.ingest_seq
//! INSERT INTO tweets AS t SELECT DISTINCT ON (id) … FROM tf_stage_tweets ORDER BY id, ingest_seq DESC
//!   ON CONFLICT (id) DO UPDATE SET … WHERE excluded.ingest_seq > t.ingest_seq
//! COMMIT
//! ```
//!
//! Rows are encoded by hand ([`CopyBuf`]) and handed to the server every 64 KiB while
//! the rest is being encoded. The raw tweet's top-level `user` object is replaced by
//! the user id on the client ([`replace_user`]) and `raw` travels as binary jsonb, so
//! the server parses each JSON text exactly once. Rows are de-duplicated before the
//! COPY (highest seq per id, in id order); the SQL keeps `DISTINCT ON` as the rule
//! anyway. Ids not stored yet skip staging and go straight into the tables (the fast
//! path); if another writer inserts one of them meanwhile (`23505`), the batch is
//! written again through staging.
//!
//! Plans: the session runs with `plan_cache_mode = force_custom_plan`
//! ([`super::connect::writer_pg_config`]), so the lookups and upserts are planned for each
//! batch's own ids and the tables' size at that moment. A cached generic plan would
//! be made once on whatever the tables held then and kept until an ANALYZE; made on
//! tiny first batches it is a sequential scan with a per-row search of the id array,
//! and every later batch costs O(table × batch).
//!
//! A data error ([`WriteError::is_data`]) is the rows' fault: the batch is bisected
//! until the bad record is alone; then its user and its tweet are tried apart, and
//! what still fails is rejected: counted, logged and appended to the rejected file
//! ([`crate::sink::rejected`]). Any other error is returned to the writer loop, which keeps
//! the batch.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use postgres::{Client, Statement};

use super::connect::{Cancel, Db};
use super::encode::{encode_tweet_row, encode_user_row, CopyBuf, EncodeError};
use super::error::{ErrorClass, OpenError, Who, WriteError};
use super::schema;
use super::tables::{self, CopyInto, TWEETS, USERS};
use crate::model::{Record, User};
#[cfg(any(test, feature = "testkit"))]
use crate::sink::fault::SinkFault;
use crate::sink::rejected::{save_rejected, REJECTED_FILE};

/// One `COPY … FROM STDIN (FORMAT binary)` fed while it is encoded: rows are
/// encoded into a [`CopyBuf`] and handed to the connection every 64 KiB, so the
/// server parses one chunk while the next is being encoded.
struct CopyStream<'a> {
    writer: postgres::CopyInWriter<'a>,
    buf: CopyBuf,
}

const COPY_CHUNK: usize = 64 * 1024;

impl<'a> CopyStream<'a> {
    fn begin(
        tx: &'a mut postgres::Transaction<'_>,
        stmt: &Statement,
    ) -> Result<CopyStream<'a>, postgres::Error> {
        Ok(CopyStream {
            writer: tx.copy_in(stmt)?,
            buf: CopyBuf::new(COPY_CHUNK + 16 * 1024),
        })
    }

    /// Hands the encoded rows to the connection once a chunk is full.
    fn flush_if_full(&mut self) -> Result<(), WriteError> {
        if self.buf.bytes().len() < COPY_CHUNK {
            return Ok(());
        }
        let r = self.writer.write_all(self.buf.bytes());
        self.buf.clear();
        r.map_err(WriteError::from_io)
    }

    /// Sends the rest and the trailer; returns the number of rows copied.
    fn finish(self) -> Result<u64, WriteError> {
        let CopyStream { mut writer, buf } = self;
        writer
            .write_all(&buf.finish())
            .map_err(WriteError::from_io)?;
        Ok(writer.finish()?)
    }
}

/// What a batch write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WriteOutcome {
    /// Tweet rows sent (after de-duplication inside the batch).
    pub(crate) tweets: u64,
    /// User rows sent.
    pub(crate) users: u64,
    /// Rows inserted or updated (the others were older than what the table has).
    pub(crate) tweets_changed: u64,
    /// User rows inserted or updated.
    pub(crate) users_changed: u64,
    /// Rows rejected by the database and saved to the rejected file.
    pub(crate) rejected: u64,
    /// Records with a rejected part, or that could not be encoded.
    pub(crate) records_rejected: u64,
    /// Values cleaned of NULs.
    pub(crate) sanitized: u64,
    /// Extra transactions caused by isolating bad rows.
    pub(crate) isolation_attempts: u64,
}

impl WriteOutcome {
    fn add(&mut self, o: &WriteOutcome) {
        self.tweets += o.tweets;
        self.users += o.users;
        self.tweets_changed += o.tweets_changed;
        self.users_changed += o.users_changed;
        self.rejected += o.rejected;
        self.records_rejected += o.records_rejected;
        self.sanitized += o.sanitized;
        self.isolation_attempts += o.isolation_attempts;
    }
}

/// Which halves of a record to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    Both,
    UserOnly,
    TweetOnly,
}

/// One writer connection with its staging tables and prepared upserts.
pub(crate) struct Conn {
    client: Client,
    copy_users: Statement,
    copy_users_direct: Statement,
    existing_users: Statement,
    copy_tweets: Statement,
    copy_tweets_direct: Statement,
    existing_tweets: Statement,
    upsert_users: Statement,
    upsert_tweets: Statement,
    /// Fast path: tweets whose id is not in the table yet are COPYed straight into it.
    direct: bool,
    /// Cancels the statement in flight, from another thread.
    cancel: Cancel,
    /// The schema of the tables.
    #[cfg_attr(not(any(test, feature = "testkit")), allow(dead_code))]
    schema: String,
    /// Test hook.
    #[cfg(any(test, feature = "testkit"))]
    pub(in crate::sink) fault: Option<SinkFault>,
}

/// The writer's prepared statements that have a plan (the COPYs have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(test, feature = "testkit")), allow(unreachable_pub))]
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
    #[cfg(any(test, feature = "testkit"))]
    pub const ALL: [Prepared; 4] = [
        Prepared::ExistingUsers,
        Prepared::ExistingTweets,
        Prepared::UpsertUsers,
        Prepared::UpsertTweets,
    ];

    /// Its SQL text, as prepared.
    fn sql(self, schema_name: &str) -> String {
        match self {
            Prepared::ExistingUsers => USERS.lookup_sql(schema_name),
            Prepared::ExistingTweets => TWEETS.lookup_sql(schema_name),
            Prepared::UpsertUsers => USERS.upsert_sql(schema_name),
            Prepared::UpsertTweets => TWEETS.upsert_sql(schema_name),
        }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Creates the staging tables and prepares the statements on a connected client.
    /// The schema (`schema::create`) must exist.
    pub(in crate::sink) fn from_client(
        mut client: Client,
        schema_name: &str,
        cancel: Cancel,
    ) -> Result<Conn, postgres::Error> {
        let lz4 = schema::has_lz4(&mut client)?;
        client.batch_execute(&tables::staging_sql(lz4))?;
        let copy_users = client.prepare(&USERS.copy_sql(schema_name, CopyInto::Staging))?;
        let copy_users_direct = client.prepare(&USERS.copy_sql(schema_name, CopyInto::Table))?;
        let existing_users = client.prepare(&Prepared::ExistingUsers.sql(schema_name))?;
        let copy_tweets = client.prepare(&TWEETS.copy_sql(schema_name, CopyInto::Staging))?;
        let copy_tweets_direct = client.prepare(&TWEETS.copy_sql(schema_name, CopyInto::Table))?;
        let existing_tweets = client.prepare(&Prepared::ExistingTweets.sql(schema_name))?;
        let upsert_users = client.prepare(&Prepared::UpsertUsers.sql(schema_name))?;
        let upsert_tweets = client.prepare(&Prepared::UpsertTweets.sql(schema_name))?;
        Ok(Conn {
            client,
            copy_users,
            copy_users_direct,
            existing_users,
            copy_tweets,
            copy_tweets_direct,
            existing_tweets,
            upsert_users,
            upsert_tweets,
            direct: true,
            cancel,
            schema: schema_name.to_string(),
            #[cfg(any(test, feature = "testkit"))]
            fault: None,
        })
    }

    /// What cancels the statement this connection runs (from another thread, with
    /// the connection's TLS).
    pub(in crate::sink) fn cancel_token(&self) -> Cancel {
        self.cancel.clone()
    }

    /// The highest `ingest_seq` stored ([`schema::stored_seq_max`]).
    pub(in crate::sink) fn stored_seq_max(
        &mut self,
        schema_name: &str,
    ) -> Result<Option<u64>, WriteError> {
        Ok(schema::stored_seq_max(&mut self.client, schema_name)?)
    }

    /// Writes records in one transaction.
    fn write_set(
        &mut self,
        recs: &[&Record],
        parts: Parts,
        direct: bool,
    ) -> Result<WriteOutcome, WriteError> {
        let mut out = WriteOutcome::default();
        // Newest version per id inside the batch (the SQL's DISTINCT ON keeps the rule too).
        let mut users: BTreeMap<i64, (&User, u64)> = BTreeMap::new();
        let mut tweets: BTreeMap<i64, &Record> = BTreeMap::new();
        for r in recs {
            let t = &r.tweet;
            if parts != Parts::TweetOnly {
                let e = users.entry(t.user.id).or_insert((&t.user, t.seq));
                if t.seq > e.1 {
                    *e = (&t.user, t.seq);
                }
            }
            if parts != Parts::UserOnly {
                let e = tweets.entry(t.id).or_insert(r);
                if t.seq > e.tweet.seq {
                    *e = r;
                }
            }
        }
        let prof = log::log_enabled!(log::Level::Trace);
        let mut marks = vec![std::time::Instant::now()];
        let mut enc = RowEncoder {
            #[cfg(any(test, feature = "testkit"))]
            fault: self.fault.clone(),
            sanitized: 0,
        };
        let mut tx = self.client.transaction()?;
        // Fast path as for tweets below: users not stored yet go straight in.
        let mut direct_users: Vec<(&User, u64)> = Vec::new();
        let mut staged_users: Vec<(&User, u64)> = Vec::with_capacity(users.len());
        if direct && !users.is_empty() {
            let ids: Vec<i64> = users.keys().copied().collect();
            let existing: std::collections::HashSet<i64> = tx
                .query(&self.existing_users, &[&ids])?
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect();
            for (id, v) in &users {
                if existing.contains(id) {
                    staged_users.push(*v);
                } else {
                    direct_users.push(*v);
                }
            }
        } else {
            staged_users.extend(users.values().copied());
        }
        for (rows, stmt) in [
            (&direct_users, &self.copy_users_direct),
            (&staged_users, &self.copy_users),
        ] {
            if rows.is_empty() {
                continue;
            }
            let mut cs = CopyStream::begin(&mut tx, stmt)?;
            for (u, seq) in rows.iter() {
                enc.row(&mut cs.buf, *seq, |c, n| encode_user_row(c, u, *seq, n))?;
                cs.flush_if_full()?;
            }
            let n = cs.finish()?;
            if std::ptr::eq(stmt, &self.copy_users_direct) {
                out.users_changed += n;
            }
        }
        marks.push(std::time::Instant::now());
        // Fast path: ids not in the table yet go straight into it (no second pass);
        // the others through staging + upsert. A concurrent writer inserting one of
        // them in between makes the COPY fail with 23505; the caller then retries the
        // batch without the fast path.
        let mut direct_rows: Vec<&Record> = Vec::new();
        let mut staged_rows: Vec<&Record> = Vec::with_capacity(tweets.len());
        if direct && !tweets.is_empty() {
            let ids: Vec<i64> = tweets.keys().copied().collect();
            let existing: std::collections::HashSet<i64> = tx
                .query(&self.existing_tweets, &[&ids])?
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect();
            for (id, r) in &tweets {
                if existing.contains(id) {
                    staged_rows.push(r);
                } else {
                    direct_rows.push(r);
                }
            }
        } else {
            staged_rows.extend(tweets.values().copied());
        }
        for (rows, stmt) in [
            (&direct_rows, &self.copy_tweets_direct),
            (&staged_rows, &self.copy_tweets),
        ] {
            if rows.is_empty() {
                continue;
            }
            let mut cs = CopyStream::begin(&mut tx, stmt)?;
            for r in rows.iter() {
                enc.row(&mut cs.buf, r.tweet.seq, |c, n| encode_tweet_row(c, r, n))?;
                cs.flush_if_full()?;
            }
            let n = cs.finish()?;
            if std::ptr::eq(stmt, &self.copy_tweets_direct) {
                out.tweets_changed += n;
            }
        }
        marks.push(std::time::Instant::now());
        if !staged_users.is_empty() {
            out.users_changed += tx.execute(&self.upsert_users, &[])?;
        }
        marks.push(std::time::Instant::now());
        if !staged_rows.is_empty() {
            out.tweets_changed += tx.execute(&self.upsert_tweets, &[])?;
        }
        marks.push(std::time::Instant::now());
        tx.commit()?;
        marks.push(std::time::Instant::now());
        if prof {
            let d: Vec<String> = marks
                .windows(2)
                .map(|w| format!("{:.1}", (w[1] - w[0]).as_secs_f64() * 1e3))
                .collect();
            log::trace!(
                "sink: {} tweets, {} users; ms (probe+)copy users, (probe+)copy tweets, upsert \
                 users, upsert tweets, commit = {}",
                tweets.len(),
                users.len(),
                d.join(" ")
            );
        }
        out.sanitized = enc.sanitized;
        out.users = users.len() as u64;
        out.tweets = tweets.len() as u64;
        Ok(out)
    }

    /// Writes a batch; bisects on data errors so only the bad records are rejected
    /// (saved under `spool_dir`). Returns the first non-data error.
    pub(crate) fn write_batch(
        &mut self,
        recs: &[Record],
        spool_dir: &Path,
    ) -> Result<WriteOutcome, WriteError> {
        let refs: Vec<&Record> = recs.iter().collect();
        let mut out = WriteOutcome::default();
        self.write_isolating(&refs, spool_dir, &mut out)?;
        Ok(out)
    }

    fn write_isolating(
        &mut self,
        recs: &[&Record],
        spool_dir: &Path,
        out: &mut WriteOutcome,
    ) -> Result<(), WriteError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut res = self.write_set(recs, Parts::Both, self.direct);
        if self.direct {
            if let Err(e) = &res {
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    // Another writer inserted one of the "new" ids meanwhile.
                    log::debug!(
                        "sink: a tweet or user id was inserted concurrently ({}); retrying the batch \
                         through staging",
                        e.message()
                    );
                    res = self.write_set(recs, Parts::Both, false);
                }
            }
        }
        match res {
            Ok(o) => {
                out.add(&o);
                Ok(())
            }
            Err(e) if e.class() == ErrorClass::Encode => {
                // One record cannot become a row: reject it, write the others.
                let (seq, reason) = e.encode_failure().unwrap_or((0, "cannot be encoded"));
                let (bad, rest): (Vec<&Record>, Vec<&Record>) =
                    recs.iter().partition(|r| r.tweet.seq == seq);
                if bad.is_empty() {
                    // Cannot happen (the seq comes from this set); never loop on it.
                    return Err(e);
                }
                for rec in bad {
                    reject(rec, "record", reason, spool_dir);
                    out.records_rejected += 1;
                }
                out.isolation_attempts += 1;
                self.write_isolating(&rest, spool_dir, out)
            }
            Err(e) if e.is_data() => {
                out.isolation_attempts += 1;
                if recs.len() > 1 {
                    if out.isolation_attempts == 1 {
                        log::warn!(
                            "sink: the database refused a batch of {} records ({}); isolating \
                             the bad rows",
                            recs.len(),
                            e.message()
                        );
                    }
                    let (a, b) = recs.split_at(recs.len() / 2);
                    self.write_isolating(a, spool_dir, out)?;
                    self.write_isolating(b, spool_dir, out)
                } else {
                    self.write_single(recs[0], spool_dir, out)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// One record the database refused as a whole: try its user and its tweet apart.
    fn write_single(
        &mut self,
        rec: &Record,
        spool_dir: &Path,
        out: &mut WriteOutcome,
    ) -> Result<(), WriteError> {
        let mut any = false;
        for (parts, what) in [(Parts::UserOnly, "user"), (Parts::TweetOnly, "tweet")] {
            out.isolation_attempts += 1;
            match self.write_set(&[rec], parts, false) {
                Ok(o) => out.add(&o),
                Err(e) if e.is_data() => {
                    out.rejected += 1;
                    any = true;
                    let msg = e.message();
                    log::error!(
                        "sink: the database rejected the {what} of tweet {} (user {}, seq {}): \
                         {msg}; saved to {}",
                        rec.tweet.id,
                        rec.tweet.user.id,
                        rec.tweet.seq,
                        spool_dir.join(REJECTED_FILE).display()
                    );
                    let body = serde_json::to_string(rec).unwrap_or_default();
                    save_rejected(spool_dir, what, &msg, &body);
                }
                Err(e) if e.class() == ErrorClass::Encode => {
                    let reason = e.encode_failure().map_or("cannot be encoded", |(_, r)| r);
                    reject(rec, what, reason, spool_dir);
                    any = true;
                }
                Err(e) => return Err(e),
            }
        }
        if any {
            out.records_rejected += 1;
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Conn {
    /// `EXPLAIN (FORMAT JSON) EXECUTE` of a prepared statement on this session: the
    /// plan its next execution gets from the plan cache. rust-postgres keeps statement
    /// names to itself, so the name is looked up in the session's
    /// `pg_prepared_statements` by the statement's text.
    pub(in crate::sink) fn explain(
        &mut self,
        stmt: Prepared,
        ids: &[i64],
    ) -> Result<serde_json::Value, postgres::Error> {
        let sql = stmt.sql(&self.schema);
        let name: String = self
            .client
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
        let text = self
            .client
            .simple_query(&format!(
                "EXPLAIN (FORMAT JSON) EXECUTE {}{args}",
                tables::ident(&name)
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

/// Opens the write connection; unless `schema_ready` (which it then sets) first
/// creates what is missing of the schema and checks the tables ([`schema::check`]).
pub(in crate::sink) fn open(
    pg: &Db,
    schema_name: &str,
    schema_ready: &mut bool,
    who: &Who,
) -> Result<Conn, OpenError> {
    let mut client = pg.connect().map_err(OpenError::Connect)?;
    if !*schema_ready {
        schema::prepare(&mut client, schema_name, who)?;
        *schema_ready = true;
        log::info!("sink: schema {schema_name:?} ready");
    }
    let cancel = pg.cancel_of(&client);
    Conn::from_client(client, schema_name, cancel).map_err(OpenError::Setup)
}

/// Rejects a record the encoder could not turn into a row: counted, logged and
/// saved with its reason.
fn reject(rec: &Record, what: &str, reason: &str, spool_dir: &Path) {
    log::error!(
        "sink: the {what} of tweet {} (user {}, seq {}) {reason}; saved to {}",
        rec.tweet.id,
        rec.tweet.user.id,
        rec.tweet.seq,
        spool_dir.join(REJECTED_FILE).display()
    );
    let body = serde_json::to_string(rec).unwrap_or_default();
    save_rejected(spool_dir, what, reason, &body);
}

/// Encodes rows one at a time so that one record cannot spoil a COPY: on an
/// [`EncodeError`] or a panic (a bug, caught here so one record cannot take the
/// writer down) the bytes of the row are dropped and the record, known by its
/// `seq`, is named in the error so the caller rejects it and writes the rest.
struct RowEncoder {
    /// Test hook: panics inside the encoder for the records it selects.
    #[cfg(any(test, feature = "testkit"))]
    fault: Option<SinkFault>,
    /// Values cleaned of NULs.
    sanitized: u64,
}

impl RowEncoder {
    fn row(
        &mut self,
        c: &mut CopyBuf,
        seq: u64,
        f: impl FnOnce(&mut CopyBuf, &mut u64) -> Result<(), EncodeError>,
    ) -> Result<(), WriteError> {
        let mark = c.mark();
        #[cfg(any(test, feature = "testkit"))]
        let fault = self.fault.as_ref().is_some_and(|f| f.encode_panics(seq));
        let sanitized = &mut self.sanitized;
        let res = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(any(test, feature = "testkit"))]
            if fault {
                panic!("test fault: encoder panic on seq {seq}");
            }
            f(c, sanitized)
        }));
        let reason = match res {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("cannot be encoded: {e}"),
            Err(p) => format!(
                "the encoder panicked on it: {}",
                crate::supervise::panic_message(p.as_ref())
            ),
        };
        c.truncate(mark);
        Err(WriteError::encode(seq, reason))
    }
}
