//! The integration tests, one binary with a module per area (one link of the
//! crate instead of one per file). Each area runs against the emulator and, where
//! it writes, a private schema or database of the local PostgreSQL.
//!
//! `tests/panic_hook.rs` stays a binary of its own: the panic hook it checks is
//! process-wide.

mod aggregate;
mod check;
#[allow(dead_code)]
mod child;
mod config_file;
mod dashboard;
mod db_tls;
mod docs;
mod emulator;
mod engine;
mod https_source;
mod ingest;
mod ingest_reader;
mod instance;
mod jetstream;
mod layout;
mod memory;
#[allow(dead_code)]
mod nats_util;
mod ops;
#[allow(dead_code)]
mod pg_proxy;
mod pipeline;
#[allow(dead_code)]
mod script_server;
mod server_wait;
mod silent_db;
mod sink;
mod sink_db_errors;
mod sink_hardening;
mod sink_outage;
mod sink_overload;
mod sink_plans;
#[allow(dead_code)]
mod sink_util;
mod stage_failure;
mod thread_limits;
#[allow(dead_code)]
mod tls_util;
