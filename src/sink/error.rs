//! Why a write failed, and what the writer should do about it.
//!
//! [`WriteError`] is opaque, in the style of `postgres::Error`: callers question it
//! ([`WriteError::class`], [`WriteError::is_data`], [`WriteError::is_transient`],
//! [`WriteError::code`]) and never match on how it is built. It wraps either an error
//! of the client (which may carry the server's SQLSTATE) or an I/O error of the COPY
//! stream that carries none.
//!
//! The classification, by SQLSTATE:
//!
//! | SQLSTATE | class | the writer |
//! |---|---|---|
//! | class `22` (data exception), `23` (integrity constraint), `54` (program limit) | [`ErrorClass::Data`] | the rows are at fault: bisect the batch until the bad record is alone, then reject what still fails |
//! | `42P01` (undefined table), `3F000` (invalid schema name) | [`ErrorClass::Schema`] | recreate the schema, then retry the batch |
//! | any other, or none (lost connection, timeout, server shutting down, COPY stream I/O) | [`ErrorClass::Transient`] | keep the batch, retry it after the breaker closes |
//!
//! An error with no SQLSTATE is never the rows' fault: a record is only rejected when
//! the server said so.

use postgres::error::SqlState;

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

/// Classifies a PostgreSQL error (see the module docs for the table).
fn classify(e: &postgres::Error) -> ErrorClass {
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
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError(Repr::Db(e))
    }
}

impl WriteError {
    /// An I/O error of the COPY stream. The COPY writer wraps the client's error in an
    /// I/O error; that one is unwrapped, so its SQLSTATE is seen.
    pub(super) fn from_io(e: std::io::Error) -> WriteError {
        if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
            if let Some(Ok(pe)) = e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
                return WriteError(Repr::Db(*pe));
            }
            return WriteError(Repr::Io(std::io::Error::other("COPY stream failed")));
        }
        WriteError(Repr::Io(e))
    }

    /// How to handle it.
    pub fn class(&self) -> ErrorClass {
        match &self.0 {
            Repr::Db(e) => classify(e),
            Repr::Io(_) => ErrorClass::Transient,
        }
    }

    /// Whether the rows are at fault (SQLSTATE class 22, 23 or 54): isolate them.
    pub fn is_data(&self) -> bool {
        self.class() == ErrorClass::Data
    }

    /// Whether the database or the network failed: keep the batch for a retry.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// Whether the tables or the schema are gone: recreate them, then retry.
    pub fn is_schema(&self) -> bool {
        self.class() == ErrorClass::Schema
    }

    /// The SQLSTATE, if the server sent one.
    pub fn code(&self) -> Option<&SqlState> {
        match &self.0 {
            Repr::Db(e) => e.code(),
            Repr::Io(_) => None,
        }
    }

    /// A one-line description (SQLSTATE and the server's message when there is one).
    pub fn message(&self) -> String {
        match &self.0 {
            Repr::Db(e) => db_message(e),
            Repr::Io(e) => format!("I/O error on the COPY stream: {e}"),
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
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.is_transient() && !e.is_data() && !e.is_schema());
        assert_eq!(e.code(), None);
        assert_eq!(e.message(), "I/O error on the COPY stream: broken pipe");
    }
}
