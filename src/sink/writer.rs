//! Writing batches: binary COPY into per-connection staging tables, then one upsert
//! per table, users and tweets of a batch in one transaction.
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
//! The COPY payload is encoded by hand ([`CopyBuf`]) into one buffer. The raw tweet's
//! top-level `user` object is replaced by the user id on the client
//! ([`replace_user`], a one-pass scanner, no JSON tree), and `raw` travels as binary
//! jsonb, so the server parses each JSON text exactly once. Rows are also
//! de-duplicated in Rust before the COPY (highest seq per id, in id order); the SQL
//! keeps `DISTINCT ON` as the rule anyway.
//!
//! Errors are classified ([`classify`]): a data error (SQLSTATE class 22 or 23, or
//! 54 "program limit") is the rows' fault, so the batch is bisected until the bad
//! record is alone; then its user and its tweet are tried apart and what still fails
//! is rejected: counted, logged and appended to `rejected.jsonl` in the spool dir.
//! `42P01`/`3F000` (table or schema gone) recreate the schema. Everything else (lost
//! connection, timeout, server shutting down, …) is transient: the caller keeps the
//! batch and retries it after the breaker closes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::types::{ToSql, Type};
use postgres::{Client, Statement};

use super::schema;
use crate::model::{Record, Tweet, User};

/// How an error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The rows are at fault: isolate them.
    Data,
    /// The database or the network: keep the batch, retry after recovery.
    Transient,
    /// The schema vanished (undefined table/schema): recreate it, then retry.
    Schema,
}

/// Classifies a PostgreSQL error.
pub fn classify(e: &postgres::Error) -> ErrorClass {
    match e.code() {
        None => ErrorClass::Transient,
        Some(code) => {
            let c = code.code();
            if c == "42P01" || c == "3F000" {
                ErrorClass::Schema
            } else if c.starts_with("22") || c.starts_with("23") || c.starts_with("54") {
                ErrorClass::Data
            } else {
                ErrorClass::Transient
            }
        }
    }
}

/// Parses Twitter's `Mon Apr 18 19:30:47 +0000 2016`. `None` if it does not parse
/// or is not a real date.
pub fn parse_twitter_time(s: &str) -> Option<SystemTime> {
    let mut it = s.split_ascii_whitespace();
    let _weekday = it.next()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let day: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let se: i64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() {
        return None;
    }
    let off = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || off.len() != 5 {
        return None;
    }
    let sign = match &off[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let oh: i64 = off[1..3].parse().ok()?;
    let om: i64 = off[3..5].parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=9999).contains(&year)
        || day < 1
        || day > mdays[month as usize - 1]
        || h > 23
        || mi > 59
        || se > 60
        || oh > 23
        || om > 59
        || h < 0
        || mi < 0
        || se < 0
    {
        return None;
    }
    // Days from civil (H. Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        Some(UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()))
    }
}

/// Removes NUL characters (PostgreSQL text cannot hold them).
pub fn strip_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// Replaces the JSON escape `\u0000` (which jsonb refuses) by `\ufffd`, leaving
/// escaped backslashes (`\\u0000` is text, not a NUL) alone. Raw NUL bytes cannot
/// occur in valid JSON text; they are removed too.
pub fn sanitize_json(s: &str) -> Cow<'_, str> {
    if !s.contains("\\u0000") && !s.contains('\0') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                if b[i + 1] == b'u' && b.get(i + 2..i + 6) == Some(b"0000") {
                    out.push_str(&s[last..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    last = i;
                } else {
                    i += 2;
                }
            }
            0 => {
                out.push_str(&s[last..i]);
                i += 1;
                last = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[last..]);
    Cow::Owned(out)
}

fn sanitized<'a>(s: &'a str, n: &mut u64) -> Cow<'a, str> {
    let c = strip_nul(s);
    if matches!(c, Cow::Owned(_)) {
        *n += 1;
    }
    c
}

fn sanitized_json<'a>(s: &'a str, n: &mut u64) -> Cow<'a, str> {
    let c = sanitize_json(s);
    if matches!(c, Cow::Owned(_)) {
        *n += 1;
    }
    c
}

/// JSON text sent in jsonb's binary format (version byte 1, then the text); the
/// server parses it, so invalid JSON is refused there, as a data error.
#[derive(Debug)]
pub struct Jsonb<'a>(pub &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    postgres::types::to_sql_checked!();
}

/// Skips one JSON value starting at `i` (after whitespace); returns the index after it,
/// or `None` if the text is not well-formed there.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' | b':' if depth > 0 => i += 1,
            b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' => return Some(i),
            _ => i += 1,
        }
        if depth == 0
            && !matches!(b.get(i), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+'))
        {
            return Some(i);
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The raw tweet with its top-level `user` member replaced by the user id (added if
/// missing). Text that is not a well-formed JSON object is returned unchanged; the
/// database then refuses it and the record is isolated as a rejected row.
pub fn replace_user(raw: &str, user_id: i64) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Cow::Borrowed(raw);
    }
    let open = i;
    i += 1;
    let mut spans = Vec::new();
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b'"') => {}
            _ => return Cow::Borrowed(raw),
        }
        let key_start = i;
        let Some(key_end) = skip_value(b, i) else {
            return Cow::Borrowed(raw);
        };
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Cow::Borrowed(raw);
        }
        let vstart = skip_ws(b, i + 1);
        let Some(vend) = skip_value(b, vstart) else {
            return Cow::Borrowed(raw);
        };
        if vend == vstart {
            return Cow::Borrowed(raw);
        }
        if &b[key_start..key_end] == b"\"user\"" {
            spans.push((vstart, vend));
        }
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Cow::Borrowed(raw),
        }
    }
    if skip_ws(b, i + 1) != b.len() {
        return Cow::Borrowed(raw);
    }
    let id = user_id.to_string();
    if spans.is_empty() {
        let rest = skip_ws(b, open + 1);
        let sep = if b.get(rest) == Some(&b'}') { "" } else { "," };
        return Cow::Owned(format!("{{\"user\":{id}{sep}{}", &raw[open + 1..]));
    }
    let mut out = String::with_capacity(raw.len());
    let mut last = 0;
    for (s, e) in spans {
        out.push_str(&raw[last..s]);
        out.push_str(&id);
        last = e;
    }
    out.push_str(&raw[last..]);
    Cow::Owned(out)
}

/// A binary COPY payload, encoded by hand in one buffer (PostgreSQL's binary COPY
/// format: signature, flags, extension; per row a field count, then per field a
/// length (-1 for NULL) and the value in the type's binary send format). One
/// buffer sent in 64 KiB writes costs far less than a runtime round trip per row.
#[derive(Debug)]
pub struct CopyBuf {
    buf: Vec<u8>,
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

impl CopyBuf {
    /// An empty payload (header only).
    pub fn new(capacity: usize) -> CopyBuf {
        let mut buf = Vec::with_capacity(capacity + 32);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuf { buf }
    }

    fn len_prefixed(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.len_prefixed(&v.to_be_bytes()),
            None => self.null(),
        }
    }

    pub fn float8(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.len_prefixed(&v.to_bits().to_be_bytes()),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: Option<bool>) {
        match v {
            Some(v) => self.len_prefixed(&[v as u8]),
            None => self.null(),
        }
    }

    pub fn text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.len_prefixed(v.as_bytes()),
            None => self.null(),
        }
    }

    /// jsonb: version byte 1, then the JSON text (parsed by the server).
    pub fn jsonb(&mut self, v: &str) {
        self.buf
            .extend_from_slice(&(v.len() as i32 + 1).to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(v.as_bytes());
    }

    pub fn timestamptz(&mut self, v: Option<SystemTime>) {
        let us = v.map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i64,
            Err(e) => -(e.duration().as_micros() as i64),
        });
        self.int8(us.map(|u| u - PG_EPOCH_US));
    }

    /// A one-dimensional `text[]` without NULLs (empty: zero dimensions).
    pub fn text_array<S: AsRef<str>>(&mut self, items: impl Iterator<Item = S>) {
        let items: Vec<S> = items.collect();
        let mut a = Vec::with_capacity(20 + items.len() * 16);
        let ndim: i32 = if items.is_empty() { 0 } else { 1 };
        a.extend_from_slice(&ndim.to_be_bytes());
        a.extend_from_slice(&0i32.to_be_bytes()); // no NULLs
        a.extend_from_slice(&(Type::TEXT.oid() as i32).to_be_bytes());
        if ndim == 1 {
            a.extend_from_slice(&(items.len() as i32).to_be_bytes());
            a.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            for it in &items {
                let b = it.as_ref().as_bytes();
                a.extend_from_slice(&(b.len() as i32).to_be_bytes());
                a.extend_from_slice(b);
            }
        }
        self.len_prefixed(&a);
    }

    /// The payload with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

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
        if self.buf.buf.len() < COPY_CHUNK {
            return Ok(());
        }
        let r = self.writer.write_all(&self.buf.buf);
        self.buf.buf.clear();
        r.map_err(WriteError::from_io)
    }

    /// Sends the rest and the trailer; returns the number of rows copied.
    fn finish(mut self) -> Result<u64, WriteError> {
        self.buf.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.writer
            .write_all(&self.buf.buf)
            .map_err(WriteError::from_io)?;
        Ok(self.writer.finish()?)
    }
}

/// A failed write: a client/server error, or an I/O error of the COPY stream that
/// does not carry one (treated as a lost connection).
#[derive(Debug)]
pub enum WriteError {
    Db(postgres::Error),
    Io(std::io::Error),
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError::Db(e)
    }
}

impl WriteError {
    /// The COPY writer wraps the client's error in an I/O error; unwrap it.
    fn from_io(e: std::io::Error) -> WriteError {
        if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
            if let Some(Ok(pe)) = e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
                return WriteError::Db(*pe);
            }
            return WriteError::Io(std::io::Error::other("COPY stream failed"));
        }
        WriteError::Io(e)
    }

    /// How to handle it.
    pub fn class(&self) -> ErrorClass {
        match self {
            WriteError::Db(e) => classify(e),
            WriteError::Io(_) => ErrorClass::Transient,
        }
    }

    /// The SQLSTATE, if the server sent one.
    pub fn code(&self) -> Option<&postgres::error::SqlState> {
        match self {
            WriteError::Db(e) => e.code(),
            WriteError::Io(_) => None,
        }
    }

    /// A one-line description (SQLSTATE and the server's message when there is one).
    pub fn message(&self) -> String {
        match self {
            WriteError::Db(e) => db_message(e),
            WriteError::Io(e) => format!("I/O error on the COPY stream: {e}"),
        }
    }
}

/// What a batch write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Tweet rows sent (after de-duplication inside the batch).
    pub tweets: u64,
    /// User rows sent.
    pub users: u64,
    /// Rows inserted or updated (the others were older than what the table has).
    pub tweets_changed: u64,
    pub users_changed: u64,
    /// Rows rejected by the database and saved to the rejected file.
    pub rejected: u64,
    /// Values cleaned of NULs.
    pub sanitized: u64,
    /// Extra transactions caused by isolating bad rows.
    pub isolation_attempts: u64,
}

impl WriteOutcome {
    fn add(&mut self, o: &WriteOutcome) {
        self.tweets += o.tweets;
        self.users += o.users;
        self.tweets_changed += o.tweets_changed;
        self.users_changed += o.users_changed;
        self.rejected += o.rejected;
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
pub struct Conn {
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
    pub direct: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects, creates the staging tables and prepares the statements. The schema
    /// (`schema::create`) must exist.
    pub fn open(config: &postgres::Config, schema_name: &str) -> Result<Conn, postgres::Error> {
        Conn::from_client(config.connect(postgres::NoTls)?, schema_name)
    }

    /// As [`Conn::open`], on an existing client.
    pub fn from_client(mut client: Client, schema_name: &str) -> Result<Conn, postgres::Error> {
        let lz4 = schema::has_lz4(&mut client)?;
        client.batch_execute(&schema::staging_sql(lz4))?;
        let copy_users = client.prepare(schema::COPY_USERS)?;
        let copy_users_direct = client.prepare(&schema::copy_users_direct_sql(schema_name))?;
        let existing_users = client.prepare(&schema::existing_users_sql(schema_name))?;
        let copy_tweets = client.prepare(schema::COPY_TWEETS)?;
        let copy_tweets_direct = client.prepare(&schema::copy_tweets_direct_sql(schema_name))?;
        let existing_tweets = client.prepare(&schema::existing_tweets_sql(schema_name))?;
        let upsert_users = client.prepare(&schema::upsert_users_sql(schema_name))?;
        let upsert_tweets = client.prepare(&schema::upsert_tweets_sql(schema_name))?;
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
        })
    }

    /// The underlying client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the connection is known to be dead.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
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
                let c = &mut cs.buf;
                let screen_name = u
                    .screen_name
                    .as_deref()
                    .map(|s| sanitized(s, &mut out.sanitized));
                let name = u.name.as_deref().map(|s| sanitized(s, &mut out.sanitized));
                let lang = u.lang.as_deref().map(|s| sanitized(s, &mut out.sanitized));
                let created = u.created_at.as_deref().and_then(parse_twitter_time);
                let raw = sanitized_json(&u.raw, &mut out.sanitized);
                c.row(11);
                c.int8(Some(u.id));
                c.text(screen_name.as_deref());
                c.text(name.as_deref());
                c.int8(Some(u.followers_count));
                c.int8(u.friends_count);
                c.int8(u.statuses_count);
                c.bool(u.verified);
                c.text(lang.as_deref());
                c.timestamptz(created);
                c.jsonb(&raw);
                c.int8(Some(*seq as i64));
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
                let c = &mut cs.buf;
                let t: &Tweet = &r.tweet;
                let text = sanitized(&t.text, &mut out.sanitized);
                let lang = t.lang.as_deref().map(|s| sanitized(s, &mut out.sanitized));
                let created = t.created_at.as_deref().and_then(parse_twitter_time);
                let raw = sanitized_json(&t.raw, &mut out.sanitized);
                let raw = replace_user(&raw, t.user.id);
                let received = UNIX_EPOCH + Duration::from_micros(t.received_unix_us);
                c.row(14);
                c.int8(Some(t.id));
                c.int8(Some(t.user.id));
                c.text(Some(&text));
                c.text(lang.as_deref());
                c.timestamptz(created);
                c.int8(Some(t.favorite_count));
                c.int8(Some(t.retweet_count));
                c.int8(t.retweeted_status_id);
                c.text_array(t.hashtags.iter().map(|h| sanitized(h, &mut out.sanitized)));
                c.float8(r.sentiment);
                c.float8(r.engagement);
                c.jsonb(&raw);
                c.int8(Some(t.seq as i64));
                c.timestamptz(Some(received));
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
        out.users = users.len() as u64;
        out.tweets = tweets.len() as u64;
        Ok(out)
    }

    /// Writes a batch; bisects on data errors so only the bad records are rejected
    /// (saved under `spool_dir`). Returns the first non-data error.
    pub fn write_batch(
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
            Err(e) if e.class() == ErrorClass::Data => {
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
        for (parts, what) in [(Parts::UserOnly, "user"), (Parts::TweetOnly, "tweet")] {
            out.isolation_attempts += 1;
            match self.write_set(&[rec], parts, false) {
                Ok(o) => out.add(&o),
                Err(e) if e.class() == ErrorClass::Data => {
                    out.rejected += 1;
                    let msg = e.message();
                    log::error!(
                        "sink: the database rejected the {what} of tweet {} (user {}, seq {}): \
                         {msg}; saved to {}",
                        rec.tweet.id,
                        rec.tweet.user.id,
                        rec.tweet.seq,
                        spool_dir.join("rejected.jsonl").display()
                    );
                    let body = serde_json::to_string(rec).unwrap_or_default();
                    save_rejected(spool_dir, what, &msg, &body);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The server's message of an error (or its display).
pub fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {}", d.code().code(), d.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(": ");
                s.push_str(&x.to_string());
                src = x.source();
            }
            s
        }
    }
}

/// Appends one rejected item to `rejected.jsonl` under `dir`:
/// `{"at_unix_us":…, "part":…, "error":…, "record":<record JSON or the raw line>}`.
pub fn save_rejected(dir: &Path, part: &str, error: &str, body: &str) {
    let record: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned()));
    let line = serde_json::json!({
        "at_unix_us": crate::model::unix_micros(),
        "part": part,
        "error": error,
        "record": record,
    });
    let res = std::fs::create_dir_all(dir).and_then(|_| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rejected.jsonl"))?;
        let mut s = line.to_string();
        s.push('\n');
        f.write_all(s.as_bytes())?;
        f.sync_data()
    });
    if let Err(e) = res {
        log::error!(
            "sink: cannot write the rejected file in {}: {e}",
            dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> i64 {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    #[test]
    fn parses_twitter_times() {
        let t = parse_twitter_time("Mon Apr 18 19:30:47 +0000 2016").unwrap();
        assert_eq!(secs(t), 1_461_007_847);
        let t = parse_twitter_time("Thu Jan 01 00:00:00 +0100 1970").unwrap();
        assert_eq!(secs(t), -3600);
        let t = parse_twitter_time("Tue Feb 29 12:00:00 -0230 2000").unwrap();
        assert_eq!(secs(t), 951_825_600 + 9000);
        for bad in [
            "",
            "Mon Apr 18 19:30:47 +0000",
            "Mon Foo 18 19:30:47 +0000 2016",
            "Mon Feb 30 19:30:47 +0000 2016",
            "Mon Apr 18 24:30:47 +0000 2016",
            "Mon Apr 18 19:30 +0000 2016",
            "Mon Apr 18 19:30:47 0000 2016",
            "Mon Apr 18 19:30:47 +0000 2016 x",
            "2016-04-18T19:30:47Z",
        ] {
            assert_eq!(parse_twitter_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn replaces_the_top_level_user_only() {
        let raw = r#"{"id":1,"user":{"id":7,"name":"a}\"b","x":[1,{"user":2}]},"retweeted_status":{"user":{"id":8}},"n":-1.5e3,"t":true}"#;
        let got = replace_user(raw, 7);
        assert_eq!(
            got,
            r#"{"id":1,"user":7,"retweeted_status":{"user":{"id":8}},"n":-1.5e3,"t":true}"#
        );
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["user"], 7);
        assert_eq!(
            replace_user(r#" { "user" : null } "#, 3),
            r#" { "user" : 3 } "#
        );
        assert_eq!(replace_user(r#"{"id":1}"#, 3), r#"{"user":3,"id":1}"#);
        assert_eq!(replace_user(r#"{}"#, 3), r#"{"user":3}"#);
        for bad in [
            r#"{"id":1"#,
            "[1]",
            "",
            r#"{"user":}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
        ] {
            assert_eq!(replace_user(bad, 3), bad, "{bad:?}");
        }
        let fx = crate::sink::fixture::records(1, 1, 1).remove(0);
        let v: serde_json::Value =
            serde_json::from_str(&replace_user(&fx.tweet.raw, fx.tweet.user.id)).unwrap();
        assert_eq!(v["user"], fx.tweet.user.id);
        assert_eq!(v["text"], fx.tweet.text.as_str());
    }

    #[test]
    fn sanitizes_nul() {
        assert_eq!(strip_nul("a\0b"), "ab");
        assert!(matches!(strip_nul("ab"), Cow::Borrowed(_)));
        assert_eq!(sanitize_json(r#"{"t":"a\u0000b"}"#), r#"{"t":"a\ufffdb"}"#);
        assert_eq!(
            sanitize_json(r#"{"t":"a\\u0000b"}"#),
            r#"{"t":"a\\u0000b"}"#
        );
        assert_eq!(sanitize_json(r#"{"t":"\\\u0000"}"#), r#"{"t":"\\\ufffd"}"#);
        assert!(matches!(sanitize_json(r#"{"t":1}"#), Cow::Borrowed(_)));
    }
}
