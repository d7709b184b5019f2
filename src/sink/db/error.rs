//! Why a write failed, and what the writer should do about it.
//!
//! [`WriteError`] is opaque, in the style of `postgres::Error`: callers question it
//! ([`WriteError::class`], [`WriteError::is_data`], [`WriteError::is_transient`],
//! [`WriteError::code`]) and never match on how it is built. It wraps either an error
//! of the client (which may carry the server's SQLSTATE) or an I/O error of the COPY
//! stream that carries none.
//!
//! The classification, by SQLSTATE ([`classify_code`]):
//!
//! | SQLSTATE | class | the writer |
//! |---|---|---|
//! | class `22` (data exception), `23` (integrity constraint), `54` (program limit) | [`ErrorClass::Data`] | the rows are at fault: bisect the batch until the bad record is alone, then reject what still fails |
//! | `42P01` (undefined table), `3F000` (invalid schema name) | [`ErrorClass::Schema`] | recreate the schema, then retry the batch |
//! | none (lost connection, COPY stream I/O), class `08` (connection), `57P01`–`57P04` (admin or crash shutdown, cannot connect now), `53300` (too many connections), `57014` (statement timeout) | [`ErrorClass::Connection`] | keep the batch, trip the breaker: the health probe decides when to retry |
//! | `53100` (disk full) | [`ErrorClass::DiskFull`] | keep the batch (spooled), wait with back-off and say so; the database is reachable, so the breaker is not tripped |
//! | `42501` (insufficient privilege), `25006` (read-only transaction), any other class `42` (`42703` undefined column, `42804` datatype mismatch, `42P10` no unique index for ON CONFLICT …), class `28` (authentication), `3D000` (no such database), `0A000` (feature not supported) | [`ErrorClass::Permanent`] | no retry can help: spool what is held, stop the pipeline with a message that says how to fix it (exit code 2) |
//! | anything else (`53000`/`53200` resources, `40001`/`40P01` serialization or deadlock, `55P03` lock, class `58` or `XX` server errors …) | [`ErrorClass::Busy`] | keep the batch (spooled), wait with back-off; logged with its SQLSTATE, never blamed on the network |
//!
//! When connecting, only authentication, a missing database and a missing
//! `CONNECT` privilege are permanent ([`classify_connect`]); any other failure to
//! connect (`55000` "not accepting connections" included) is an outage.
//!
//! Besides, a record the encoder could not turn into a row is
//! [`ErrorClass::Encode`]: it is rejected on its own, without asking the server.
//!
//! An error with no SQLSTATE is never the rows' fault: a record is only rejected when
//! the server said so, or when it cannot be encoded at all.

use postgres::error::SqlState;

use crate::sink::failure::DatabaseProblem;

/// How an error is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The rows are at fault: isolate them.
    Data,
    /// The network or the server's availability: keep the batch, trip the breaker.
    Connection,
    /// The server's disk is full: keep the batch, wait with back-off, say so.
    DiskFull,
    /// The server failed the statement for a reason of its own: keep the batch,
    /// wait with back-off.
    Busy,
    /// The schema vanished (undefined table/schema): recreate it, then retry.
    Schema,
    /// No retry can help (schema mismatch, privileges, read-only, login): stop.
    Permanent,
    /// One record could not be encoded: reject it, write the rest.
    Encode,
}

/// Classifies a SQLSTATE of a failed statement (`None`: the client saw no server
/// error, e.g. a lost connection); see the module docs for the table.
pub(in crate::sink) fn classify_code(code: Option<&str>) -> ErrorClass {
    let Some(c) = code else {
        return ErrorClass::Connection;
    };
    let class = c.get(..2).unwrap_or("");
    match (class, c) {
        ("22" | "23" | "54", _) => ErrorClass::Data,
        (_, "42P01" | "3F000") => ErrorClass::Schema,
        ("08", _) | (_, "57P01" | "57P02" | "57P03" | "57P04" | "53300" | "57014") => {
            ErrorClass::Connection
        }
        (_, "53100") => ErrorClass::DiskFull,
        ("42" | "28", _) | (_, "25006" | "3D000" | "0A000") => ErrorClass::Permanent,
        _ => ErrorClass::Busy,
    }
}

/// Classifies the failure to connect: only a refused login, a missing database and
/// a missing `CONNECT` privilege are permanent; anything else is an outage.
pub(in crate::sink) fn classify_connect(code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if c.starts_with("28") || c == "3D000" || c == "42501" => ErrorClass::Permanent,
        _ => ErrorClass::Connection,
    }
}

/// Classifies a PostgreSQL error of a statement.
fn classify(e: &postgres::Error) -> ErrorClass {
    classify_code(e.code().map(SqlState::code))
}

/// Who tweetflow is on which database, for messages that say how to fix things.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Who {
    /// The role.
    pub(crate) role: String,
    /// The database.
    pub(crate) database: String,
    /// The schema of the tables.
    pub(crate) schema: String,
}

impl Who {
    /// Who logs in where, from the connection settings.
    pub(crate) fn new(pg: &postgres::Config, schema: &str) -> Who {
        let role = pg.get_user().unwrap_or("postgres").to_string();
        Who {
            database: pg.get_dbname().unwrap_or(&role).to_string(),
            role,
            schema: schema.to_string(),
        }
    }

    /// The privileges the sink needs, as a sentence of `GRANT`s.
    pub(crate) fn needs(&self) -> String {
        let s = super::tables::ident(&self.schema);
        let r = super::tables::ident(&self.role);
        let d = super::tables::ident(&self.database);
        format!(
            "what it needs: `GRANT USAGE, CREATE ON SCHEMA {s} TO {r}` (CREATE only while the \
             tables do not exist), `GRANT SELECT, INSERT, UPDATE ON {s}.users, {s}.tweets TO \
             {r}` and `GRANT TEMPORARY ON DATABASE {d} TO {r}` (staging tables)"
        )
    }

    /// The problem a permanent server error stands for (`None` if it is not one).
    pub(crate) fn problem(&self, e: &postgres::Error, connecting: bool) -> Option<DatabaseProblem> {
        let code = e.code().map(SqlState::code);
        let class = if connecting {
            classify_connect(code)
        } else {
            classify_code(code)
        };
        if class != ErrorClass::Permanent {
            return None;
        }
        let message = db_message(e);
        let code = code.unwrap_or("");
        Some(if code == "42501" {
            DatabaseProblem::Privilege {
                role: self.role.clone(),
                message,
                needs: self.needs(),
            }
        } else if code == "25006" {
            DatabaseProblem::ReadOnly {
                database: self.database.clone(),
                message,
            }
        } else if code.starts_with("28") {
            DatabaseProblem::Authentication { message }
        } else if code == "3D000" {
            DatabaseProblem::NoDatabase {
                database: self.database.clone(),
                message,
            }
        } else if code.starts_with("42") {
            let table = e
                .as_db_error()
                .and_then(|d| d.table().map(|t| format!("{}.{t}", self.schema)))
                .unwrap_or_else(|| format!("{0}.users or {0}.tweets", self.schema));
            DatabaseProblem::SchemaMismatch {
                table,
                problems: vec![message],
            }
        } else {
            DatabaseProblem::Other { message }
        })
    }
}

/// A failed write: a client/server error, or an I/O error of the COPY stream that
/// does not carry one (treated as a lost connection).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct WriteError(Repr);

#[derive(Debug, thiserror::Error)]
enum Repr {
    #[error(transparent)]
    Db(postgres::Error),
    #[error("I/O error on the COPY stream: {0}")]
    Io(std::io::Error),
    #[error("record of seq {seq} {reason}")]
    Encode { seq: u64, reason: String },
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError(Repr::Db(e))
    }
}

impl WriteError {
    /// An I/O error of the COPY stream. The COPY writer wraps the client's error in an
    /// I/O error; that one is unwrapped, so its SQLSTATE is seen.
    pub(in crate::sink) fn from_io(e: std::io::Error) -> WriteError {
        if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
            if let Some(Ok(pe)) = e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
                return WriteError(Repr::Db(*pe));
            }
            return WriteError(Repr::Io(std::io::Error::other("COPY stream failed")));
        }
        WriteError(Repr::Io(e))
    }

    /// The record of `seq` cannot be encoded, for `reason`.
    pub(in crate::sink) fn encode(seq: u64, reason: String) -> WriteError {
        WriteError(Repr::Encode { seq, reason })
    }

    /// The record the encoder failed on, and why ([`ErrorClass::Encode`] only).
    pub(in crate::sink) fn encode_failure(&self) -> Option<(u64, &str)> {
        match &self.0 {
            Repr::Encode { seq, reason } => Some((*seq, reason)),
            _ => None,
        }
    }

    /// The client's error, if it is one (to build a [`DatabaseProblem`]).
    pub(in crate::sink) fn db(&self) -> Option<&postgres::Error> {
        match &self.0 {
            Repr::Db(e) => Some(e),
            _ => None,
        }
    }

    /// How to handle it.
    pub fn class(&self) -> ErrorClass {
        match &self.0 {
            Repr::Db(e) => classify(e),
            Repr::Io(_) => ErrorClass::Connection,
            Repr::Encode { .. } => ErrorClass::Encode,
        }
    }

    /// Whether the rows are at fault (SQLSTATE class 22, 23 or 54): isolate them.
    pub fn is_data(&self) -> bool {
        self.class() == ErrorClass::Data
    }

    /// Whether waiting can help (connection, disk full, a server error of its own):
    /// keep the batch for a retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Connection | ErrorClass::DiskFull | ErrorClass::Busy
        )
    }

    /// Whether the tables or the schema are gone: recreate them, then retry.
    pub fn is_schema(&self) -> bool {
        self.class() == ErrorClass::Schema
    }

    /// The SQLSTATE, if the server sent one.
    pub fn code(&self) -> Option<&SqlState> {
        match &self.0 {
            Repr::Db(e) => e.code(),
            Repr::Io(_) | Repr::Encode { .. } => None,
        }
    }

    /// A one-line description (SQLSTATE and the server's message when there is one).
    pub fn message(&self) -> String {
        match &self.0 {
            Repr::Db(e) => db_message(e),
            Repr::Io(e) => format!("I/O error on the COPY stream: {e}"),
            Repr::Encode { seq, reason } => format!("record of seq {seq} {reason}"),
        }
    }
}

/// Why the write connection could not be opened.
#[derive(Debug)]
pub(in crate::sink) enum OpenError {
    /// Connecting failed.
    Connect(postgres::Error),
    /// Creating the schema, the staging tables or the statements failed.
    Setup(postgres::Error),
    /// The tables do not fit, or the role may not write them.
    Problem(DatabaseProblem),
}

impl OpenError {
    /// The permanent problem behind it, if it is one.
    pub(in crate::sink) fn problem(&self, who: &Who) -> Option<DatabaseProblem> {
        match self {
            OpenError::Connect(e) => who.problem(e, true),
            OpenError::Setup(e) => who.problem(e, false),
            OpenError::Problem(p) => Some(p.clone()),
        }
    }

    /// A one-line description.
    pub(in crate::sink) fn message(&self) -> String {
        match self {
            OpenError::Connect(e) | OpenError::Setup(e) => db_message(e),
            OpenError::Problem(p) => p.to_string(),
        }
    }
}

/// The server's message of an error (`SQLSTATE message`), or its display with the
/// chain of its sources.
pub(crate) fn db_message(e: &postgres::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_stream_io_errors_are_transient_and_have_no_code() {
        let e = WriteError::from_io(std::io::Error::other("broken pipe"));
        assert_eq!(e.class(), ErrorClass::Connection);
        assert!(e.is_transient() && !e.is_data() && !e.is_schema());
        assert_eq!(e.code(), None);
        assert_eq!(e.message(), "I/O error on the COPY stream: broken pipe");
    }

    #[test]
    fn sqlstates_are_classified_as_the_table_says() {
        use ErrorClass::*;
        for (code, class) in [
            (None, Connection),
            (Some("08006"), Connection),
            (Some("08001"), Connection),
            (Some("57P01"), Connection),
            (Some("57P03"), Connection),
            (Some("53300"), Connection),
            (Some("57014"), Connection),
            (Some("53100"), DiskFull),
            (Some("22P02"), Data),
            (Some("23505"), Data),
            (Some("54000"), Data),
            (Some("42P01"), Schema),
            (Some("3F000"), Schema),
            (Some("42501"), Permanent),
            (Some("25006"), Permanent),
            (Some("42703"), Permanent),
            (Some("42804"), Permanent),
            (Some("42P10"), Permanent),
            (Some("28P01"), Permanent),
            (Some("3D000"), Permanent),
            (Some("0A000"), Permanent),
            (Some("53200"), Busy),
            (Some("40001"), Busy),
            (Some("40P01"), Busy),
            (Some("58030"), Busy),
            (Some("XX000"), Busy),
            (Some("55000"), Busy),
            (Some(""), Busy),
            (Some("é"), Busy),
        ] {
            assert_eq!(classify_code(code), class, "{code:?}");
        }
        for (code, class) in [
            (None, Connection),
            (Some("55000"), Connection),
            (Some("57P03"), Connection),
            (Some("53300"), Connection),
            (Some("28P01"), Permanent),
            (Some("28000"), Permanent),
            (Some("3D000"), Permanent),
            (Some("42501"), Permanent),
        ] {
            assert_eq!(classify_connect(code), class, "{code:?}");
        }
    }

    #[test]
    fn problems_say_what_is_wrong_and_how_to_fix_it() {
        let who = Who {
            role: "app".into(),
            database: "db1".into(),
            schema: "s".into(),
        };
        let p = DatabaseProblem::Privilege {
            role: who.role.clone(),
            message: "42501 permission denied for schema s".into(),
            needs: who.needs(),
        };
        let m = p.to_string();
        assert!(m.contains("permission denied for schema s"), "{m}");
        assert!(
            m.contains(r#"GRANT USAGE, CREATE ON SCHEMA "s" TO "app""#),
            "{m}"
        );
        let m = DatabaseProblem::ReadOnly {
            database: "db1".into(),
            message: "default_transaction_read_only is on".into(),
        }
        .to_string();
        assert!(
            m.contains("read-only") && m.contains("ALTER DATABASE db1"),
            "{m}"
        );
        let m = DatabaseProblem::SchemaMismatch {
            table: "s.tweets".into(),
            problems: vec!["column user_id (bigint) is missing".into()],
        }
        .to_string();
        assert!(
            m.contains("s.tweets") && m.contains("user_id") && m.contains("--schema"),
            "{m}"
        );
    }
}
