//! Where records wait for the writer: the memory buffer, then the append-only
//! spool on disk, whose records are binary frames.

pub(crate) mod frame;
mod memory;
pub(crate) mod spool;

pub(in crate::sink) use self::memory::{Batch, Buffer, Limits, Source};
