//! Test fixtures and fault hooks for the integration tests, the benches and the
//! fuzzers (the `testkit` feature, which they enable through a self
//! dev-dependency; the unit tests see it too); not part of the default API.
//!
//! The stages ask their hooks through small traits of their own
//! ([`WorkerHook`](crate::WorkerHook), [`LoopHook`](crate::LoopHook),
//! [`SinkHook`](crate::SinkHook)), carried as `fault` fields of their
//! settings, `None` in production; what answers them is defined here:
//!
//! * `engine`: [`Fault`] (a worker panics) and [`test_tweet`];
//! * `stage`: [`StageFault`] (the aggregator's or the tap's loop panics);
//! * `sink`: [`SinkFault`] (the encoder or the writer panics, the spool's
//!   directory fsync is stood in for), the writer's database session
//!   ([`WriterSession`]), and the row encoding as the writer does it;
//! * `records`: realistic records for the sink ([`records`]);
//! * `spool`: the spool's file and frames ([`spool_file_records`],
//!   [`SpoolBench`], [`next_frame`]);
//! * `source`: representative SSE events ([`tweet_json`], [`framed`]).

mod engine;
mod records;
mod sink;
mod source;
mod spool;
mod stage;

/// A predicate on a record's ingest sequence number: which records a test hook
/// picks.
pub type SeqPredicate = dyn Fn(u64) -> bool + Send + Sync;

pub use self::engine::{test_tweet, Fault, FaultFn, SpawnFault};
pub use self::records::{record, records, Spec};
pub use self::sink::{
    create_schema, tweet_row_copy, user_row_copy, DirSyncFn, Jsonb, Prepared, SinkFault,
    WriterSession, TWEET_FIELDS, USER_FIELDS,
};
pub use self::source::{event_data, framed, sample_datas, tweet_json, user_json};
pub use self::spool::{
    decode_frame, encode_frame, frame_payload, next_frame, spool_file_records, FrameNext,
    SpoolBench, SPOOL_FILE,
};
pub use self::stage::StageFault;
