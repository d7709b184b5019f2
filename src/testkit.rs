//! Test fixtures and fault hooks for the integration tests and benches (the
//! `testkit` feature, which they enable through a self dev-dependency); not part
//! of the default API.

pub use crate::aggregate::StageFault;
pub use crate::engine::{test_tweet, Fault, FaultFn, SpawnFault};
pub use crate::sink::fixture::{record, records, Spec};
pub use crate::sink::{
    create_schema, decode_frame, encode_frame, encode_tweet_row, encode_user_row, frame_payload,
    next_frame, spool_file_records, CopyBuf, DirSyncFn, EncodeError, FrameError, FrameNext, Jsonb,
    Prepared, SeqPredicate, SinkFault, SpoolBench, WriterSession, SPOOL_FILE, TWEET_FIELDS,
    USER_FIELDS,
};
pub use crate::source::fixture::{event_data, framed, sample_datas, tweet_json, user_json};
