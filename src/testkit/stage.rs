//! The test hook of the stage loops under `keep_alive` (the aggregator, the
//! tap).

use std::fmt;
use std::sync::Arc;

use super::SeqPredicate;
use crate::aggregate::LoopHook;
use crate::model::Seq;

/// A [`LoopHook`]: the loop panics each time it takes in a message of a
/// sequence number the predicate selects, before handling it — a bug that a
/// restart does not cure, so the stage ends up giving up for good.
#[derive(Clone)]
pub struct StageFault(
    /// The predicate (asked on every take-in, so it may answer differently each time).
    pub Arc<SeqPredicate>,
);

impl LoopHook for StageFault {
    fn panics(&self, seq: Seq) -> bool {
        (self.0)(seq)
    }
}

impl fmt::Debug for StageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StageFault(..)")
    }
}
