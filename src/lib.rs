//! tweetflow: reads the two SSE tweet streams of an rtp-server, scores every
//! tweet for sentiment and engagement in supervised, autoscaled worker pools,
//! and loads users and tweets into PostgreSQL in adaptive batches.
//!
//! The modules follow the data flow:
//!
//! ```text
//! source ──Ingest──▶ dispatch ──Job──▶ workers (sentiment, engagement)
//!                       │                    │
//!                       └──AggMsg::Tweet──▶ aggregate ◀──AggMsg::Score
//!                                              │
//!                                           Record ──▶ sink (buffer, spool, writer, health)
//! ```
//!
//! `engine` holds the dispatcher and the worker pools, restarts panicking
//! workers and sizes the pools (with the generic
//! tools of `supervise`), `score` holds the pure scoring,
//! `stats` shows what happens, `emulator` stands in for the lab's server, and
//! `pipeline` wires all of it with bounded crossbeam channels.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

// The toolkit every layer may use; these import nothing of the layers above.
mod budget;
mod log_limit;
mod model;
mod pace;
mod shutdown;
mod supervise;

mod stats;

// The data flow, front to back.
mod aggregate;
mod engine;
mod jetstream;
mod score;
mod sink;
mod source;

mod emulator;
mod ops;
mod pipeline;

mod app;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

// The public API: what the binary, the tests, the benches and the fuzzers use,
// and the types that their signatures name (so that a caller can name them).
pub use crate::aggregate::{
    spawn_aggregator, AggConfig, AggSnapshot, AggStats, Aggregator, LoopHook,
};
pub use crate::app::{exit_code, parse_cli, run_cli, Cli};
pub use crate::budget::{Budget, MemoryPermit, Wait};
pub use crate::emulator::{
    frame_event, Corpus, Emulator, EmulatorConfig, EmulatorConfigError, EmulatorError, EventKind,
    Malformed, ParseRateError, Rate, RateProfile, TweetGen, DEFAULT_SEED,
};
pub use crate::engine::{
    spawn_core, AutoscaleConfig, Core, CoreConfig, CoreConfigError, CoreError, CoreSnapshot,
    CoreStats, CoreThread, Fatal, InFlight, PoolSnapshot, PoolStats, RestartPolicy, WorkDelay,
    WorkDelayParseError, WorkerHook,
};
pub use crate::jetstream::{
    AckKind, Client as JetStreamClient, Delivery, Ensured, JsError, JsSnapshot, JsStats, Publisher,
    Pulled, StreamSpec,
};
pub use crate::model::{
    unix_micros, AggMsg, Ingest, Record, ScoreKind, Seq, SeqGen, SharedStr, Tweet, User,
};
pub use crate::ops::{
    check_bearer, Access, Method, OpsConfig, OpsError, OpsServer, Request, Response, Routes,
};
pub use crate::pipeline::{
    run, start, stream_specs, JetStreamRun, JsProbe, Pipeline, PipelineConfig, PipelineError,
    Probes, StatusMeters, Summary,
};
pub use crate::score::{
    engagement, sentiment, Lexicon, LexiconError, AFINN_111, MAX_LEXICON_ENTRIES, MAX_PHRASE_WORDS,
};
pub use crate::shutdown::Shutdown;
pub use crate::sink::{
    connect_database, parse_twitter_time, spawn_sink, BreakerState, DatabaseProblem, ErrorClass,
    PauseOutcome, Sink, SinkConfig, SinkControl, SinkError, SinkFailure, SinkHook, SinkSnapshot,
    SinkState, SinkStats, SinkSummary, SinkThread, WhenFull, WriteError,
};
pub use crate::source::{
    decode, fetch_lexicon, spawn_reader, Decoded, DecodedTweets, SourceConfig, SourceError,
    SourceSnapshot, SourceStats, SseEvent, SseEvents, SseParser,
};
pub use crate::stats::{
    cpu_times, CountMinSketch, CpuBudget, CpuTimes, Cumulative, GroupCpu, Histogram, ThreadGroup,
    TopHashtags,
};
pub use crate::supervise::{install_panic_hook, KillPanic};
