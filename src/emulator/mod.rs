//! An emulator of the lab's tweet server (rtp-server), which cannot run on our
//! machines: tweetflow's tests, benches and demos read from it instead.
//!
//! # What it must reproduce
//!
//! **The routes.** `GET /` answers the real server's compact JSON
//! ([`ROOT_JSON`]) listing `/tweets/1`, `/tweets/2`, `/emotion_values` and `/`.
//! `/tweets/1` and `/tweets/2` are two SSE streams (`text/event-stream`,
//! chunked). `/emotion_values` is the AFINN-111 lexicon in file order, one
//! `word<TAB>score` per line, lines joined by `\r\n`, no trailing newline
//! ([`emotion_values`]).
//!
//! **The framing, byte for byte.** Clients of the real server compare whole
//! HTTP chunks with fixed strings, so every event is
//! `event: "message"\n\ndata: <payload>\n\n` (the event name in quotes, a blank
//! line before `data:`, LF only, no `id:` or comments), written and flushed as
//! one HTTP chunk; a kill message is exactly `{"message": panic}`
//! ([`frame_event`], [`KILL_PAYLOAD`]). The payload is
//! `{"message": {"tweet": {...}, "unix_timestamp_100us": N}}`, the tweet a
//! compact Twitter v1.1 status of April 2016 and `N` the server's clock in
//! units of 100 µs.
//!
//! **Determinism.** Event `N` of a stream is a function of the seed, the
//! stream and `N` alone: the same seed gives the same users and tweets on any
//! machine, the two streams differ, any event can be produced on its own, and
//! whether event `N` is a kill or malformed depends on `(seed, stream, N)` too,
//! without changing the tweets around it. A connection starts at event 0
//! (with `--ids`, after its `Last-Event-ID`).
//!
//! **The rate profile.** The lab sheet says only that the rate "varies by up
//! to an order of magnitude, from 100s to 1000s" per second. By default each
//! stream swings between levels of about 100 and a few thousand events/s,
//! each held for seconds, in a sequence fixed by the seed ([`RateProfile`]);
//! a constant rate or `max` can be asked for instead ([`Rate`]). Sending keeps
//! to absolute deadlines, so the rate does not drift with the cost of writing.
//!
//! What is not known of the real server (how often kills come, the share of
//! retweets, whether connections end) is an explicit, documented knob of
//! [`EmulatorConfig`]; knobs that break things on purpose (cuts, malformed
//! events, split chunks) are off by default.
//!
//! # Layout
//!
//! - `corpus`: the [`Corpus`], everything a seed determines once (users,
//!   popular originals, hashtags, places, words).
//! - `tweet`: [`TweetGen`], the events of one stream ([`EventKind`],
//!   [`Malformed`]), reusable without a server (benches feed pipelines with
//!   it).
//! - `frame`: SSE framing. `clock`: the virtual 2016 clock and the server's.
//!   `random`: seed derivation and distributions. `json`: hand-written JSON
//!   output. `vocab`: the word lists.
//! - `rate`: the rate profile and absolute-deadline pacing.
//! - `server`: the HTTP server ([`Emulator`]). `config`, `error`: what
//!   it can be told and what can go wrong (`tweetflow emulate` is in the app shell).
//!
//! ```no_run
//! use tweetflow::{Emulator, EmulatorConfig, Rate};
//! let emu = Emulator::start(EmulatorConfig {
//!     bind: "127.0.0.1:0".parse().unwrap(),
//!     rate: Rate::Max,
//!     ..EmulatorConfig::default()
//! })
//! .unwrap();
//! println!("streams at {}/tweets/1 and {}/tweets/2", emu.url(), emu.url());
//! emu.stop();
//! ```

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod clock;
mod config;
mod corpus;
mod error;
mod frame;
mod json;
mod random;
mod rate;
mod server;
mod tweet;
mod vocab;

pub use config::{EmulatorConfig, DEFAULT_SEED};
pub(crate) use config::{DEFAULT_BIND, DEFAULT_KILL_EVERY, DEFAULT_MAX_CONNECTIONS};
pub use corpus::Corpus;
pub(crate) use corpus::DEFAULT_USERS;
pub use error::{EmulatorConfigError, EmulatorError, ParseRateError};
pub use frame::frame_event;
pub use rate::{Rate, RateProfile};
pub use server::Emulator;
pub(crate) use tweet::DEFAULT_RETWEET_SHARE;
pub use tweet::{EventKind, Malformed, TweetGen};
