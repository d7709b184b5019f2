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

pub mod aggregate;
pub mod app;
pub mod emulator;
pub mod engine;
pub mod log_limit;
pub mod model;
pub mod pipeline;
pub mod score;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod stats;
pub mod supervise;
