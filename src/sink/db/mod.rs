//! PostgreSQL: the connections, the tables and the batch write.

pub(super) mod batch;
pub(super) mod compat;
pub(super) mod connect;
pub(super) mod encode;
pub(super) mod error;
pub(super) mod raw_json;
pub(super) mod schema;
pub(super) mod tables;
