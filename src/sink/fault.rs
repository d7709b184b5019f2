//! Test hooks of the sink (the `testkit` feature only): make the encoder or the
//! writer loop panic on chosen records, to exercise what a bug must not do (lose
//! a record, or stop the sink without saying so); and stand in for the spool's
//! directory fsync, to count or fail it.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use crate::aggregate::SeqPredicate;

/// What fsyncs a directory of the spool (called with the directory).
pub type DirSyncFn = dyn Fn(&Path) -> io::Result<()> + Send + Sync;

/// Where the sink panics on purpose, for tests. `None` fields do nothing.
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

impl SinkFault {
    /// Whether the encoder panics on the record of `seq`.
    pub(crate) fn encode_panics(&self, seq: u64) -> bool {
        self.encode.as_ref().is_some_and(|f| f(seq))
    }

    /// Whether the writer panics on a batch holding these records.
    pub(crate) fn batch_panics(&self, seqs: impl IntoIterator<Item = u64>) -> bool {
        match &self.batch {
            Some(f) => seqs.into_iter().any(|s| f(s)),
            None => false,
        }
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
