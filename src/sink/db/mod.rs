//! PostgreSQL: the connections, the tables and the batch write.

//!
//! The testkit reaches in too: its writer session opens and uses a [`batch::Conn`]
//! as the writer does, and the fuzzers and benches encode rows through it.

pub(crate) mod batch;
mod civil;
pub(super) mod compat;
pub(crate) mod connect;
pub(crate) mod encode;
pub(crate) mod error;
pub(super) mod raw_json;
pub(crate) mod schema;
pub(crate) mod tables;
mod tls;
