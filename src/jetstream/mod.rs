//! NATS JetStream: the durable log between `tweetflow ingest` and any number of
//! `tweetflow run --jetstream` instances.
//!
//! `async-nats` is async-only; [`Client`] is a small blocking facade over it, the way
//! `postgres` wraps `tokio-postgres`. One thread (`nats-runtime`) owns a current-thread
//! tokio runtime and the connection; the pipeline's threads send it commands on
//! crossbeam channels and wait for the answer on another. This module is the only place
//! in the crate with `.await`.
//!
//! - `client`: the facade (connect and version check, streams, last-message-by-subject,
//!   windowed publishing, the durable pull consumer, acks) and its live counters;
//! - `names`: the pure part: stream and subject names, the `Nats-Msg-Id` of an event,
//!   the stream's sequence offset, the encodings of what the meta stream holds.
//!
//! Server versions: everything here uses only what nats-server 2.9 offers. The lexicon,
//! the sequence offset and the per-instance hashtag sketches live on a plain stream
//! (`<stream>_meta`) with `max_msgs_per_subject = 1`, read back with
//! get-last-message-by-subject, instead of the KV API (whose bucket creation fails against
//! 2.9 with this client).

mod client;
pub(crate) mod names;

pub use client::{
    AckKind, Client, Delivery, Ensured, JsSnapshot, JsStats, Publisher, Pulled, StreamSpec,
};

use std::time::Duration;

/// Errors of the JetStream facade.
#[derive(Debug, thiserror::Error)]
pub enum JsError {
    /// The server runs without JetStream (`-js`).
    #[error(
        "the NATS server at {url} (version {version}) has JetStream disabled; start it with \
         -js (or `jetstream {{}}` in its config)"
    )]
    NoJetStream {
        /// The URL connected to.
        url: String,
        /// The server's version.
        version: String,
    },
    /// The server is older than anything this client was checked against.
    #[error("the NATS server at {url} is version {version}; tweetflow needs 2.9 or newer")]
    TooOld {
        /// The URL connected to.
        url: String,
        /// The server's version.
        version: String,
    },
    /// A stream exists under the name with a configuration that is not the one asked for.
    #[error(
        "the stream {stream} exists with another configuration ({differences}); it is not \
         reused: delete it (`nats stream rm {stream}`) or choose another --stream"
    )]
    StreamMismatch {
        /// The stream's name.
        stream: String,
        /// What differs, `field: existing != wanted`, comma-separated.
        differences: String,
    },
    /// A JetStream request failed.
    #[error("JetStream: {what}: {cause}")]
    Api {
        /// What was asked.
        what: &'static str,
        /// The client's error.
        cause: String,
    },
    /// The URL cannot be used.
    #[error("the NATS URL {url} is not usable: {cause}")]
    Url {
        /// The URL given.
        url: String,
        /// Why.
        cause: String,
    },
    /// Shutdown was triggered before the operation could finish.
    #[error("shut down before NATS answered")]
    Stopped,
    /// The runtime thread has ended (it panicked, or the client was dropped).
    #[error("the NATS client thread has ended")]
    Gone,
    /// The thread could not be started.
    #[error("cannot start the NATS client thread: {0}")]
    Spawn(#[source] std::io::Error),
}

impl JsError {
    /// Whether waiting and asking again may help (the server away, a request timed out).
    pub fn is_transient(&self) -> bool {
        matches!(self, JsError::Api { .. })
    }
}

/// How long one JetStream API request may take before it fails (and is retried).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
