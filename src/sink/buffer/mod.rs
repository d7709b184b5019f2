//! Where records wait for the writer: the memory buffer, then the append-only
//! spool on disk.

mod memory;
pub(super) mod spool;

pub(in crate::sink) use self::memory::{Batch, Buffer, Limits, Source};
