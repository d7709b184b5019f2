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

pub use crate::aggregate::{spawn_aggregator, AggConfig, AggSnapshot, AggStats, Aggregator};
pub use crate::app::{
    config_from_args, exit_code, parse_cli, run_cli, Cli, Command, LogFormat, RunArgs,
};
pub use crate::budget::{Budget, MemoryPermit, Wait};
pub use crate::emulator::{
    emotion_values, frame_event, unix_100us, Corpus, Emulator, EmulatorConfig, EmulatorConfigError,
    EmulatorError, EventKind, Malformed, ParseRateError, Rate, RateProfile, TweetGen, DEFAULT_BIND,
    DEFAULT_KILL_EVERY, DEFAULT_MAX_CONNECTIONS, DEFAULT_RETWEET_SHARE, DEFAULT_SEED,
    DEFAULT_USERS, KILL_PAYLOAD, ROOT_JSON,
};
pub use crate::engine::{
    spawn_core, AutoscaleConfig, Core, CoreConfig, CoreConfigError, CoreError, CoreSnapshot,
    CoreStats, CoreThread, Fatal, InFlight, PoolSnapshot, PoolStats, RestartPolicy, ThreadBound,
    ThreadLimits, WorkDelay, WorkDelayParseError,
};
pub use crate::jetstream::{
    names as jetstream_names, AckKind, Client as JetStreamClient, Delivery, Ensured, JsError,
    JsSnapshot, JsStats, Publisher, Pulled, StreamSpec,
};
pub use crate::model::{
    unix_micros, AggMsg, Ingest, Job, Record, ScoreKind, Seq, SeqGen, Tweet, User,
};
pub use crate::ops::{
    check_bearer, Access, Exposition, Handler, HistogramSample, Labels, ListenAddr,
    ListenAddrError, Method, OpsConfig, OpsError, OpsServer, Request, Response, Routes,
    METRICS_CONTENT_TYPE,
};
pub use crate::pipeline::{
    default_instance, readiness, run, run_ingest, start, stream_specs, IngestConfig, IngestSummary,
    JetStreamRun, JsProbe, MergedTop, NotReady, Pipeline, PipelineConfig, PipelineError, Probes,
    ReadyInput, StatusMeters, Summary,
};
pub use crate::score::{
    engagement, sentiment, Lexicon, LexiconError, AFINN_111, MAX_LEXICON_ENTRIES, MAX_PHRASE_WORDS,
};
pub use crate::shutdown::Shutdown;
pub use crate::sink::{
    connect_database, parse_twitter_time, spawn_sink, BreakerState, DatabaseProblem, ErrorClass,
    PauseOutcome, Sink, SinkConfig, SinkControl, SinkError, SinkFailure, SinkSnapshot, SinkState,
    SinkStats, SinkSummary, SinkThread, WriteError,
};
pub use crate::source::{
    decode, fetch_lexicon, spawn_reader, Decoded, DecodedTweets, SourceConfig, SourceError,
    SourceSnapshot, SourceStats, SseEvent, SseParser, DEFAULT_MAX_EVENT_BYTES, KILL_MESSAGE,
};
pub use crate::stats::{
    cpu_times, ended_cpu_times, CountMinSketch, CpuBudget, CpuTimes, Cumulative, GroupCpu,
    Histogram, ThreadGroup, TopHashtags,
};
pub use crate::supervise::{install_panic_hook, KillPanic};
