//! The operator's endpoint: one small blocking HTTP listener that answers
//! the probes, the metrics and the control requests of a running pipeline.
//!
//! What it must do:
//!
//! - listen on one address (`--metrics-addr`, default `127.0.0.1:9464`:
//!   loopback unless told otherwise); when that port is taken, listen on a
//!   free port of the same address and log it; [`ListenAddr::Off`] disables it;
//! - answer each request from a table of [`Routes`]: a method and a path map
//!   to one plain function of the shared state, so adding a route is one line
//!   where the pipeline wires them (`src/pipeline/endpoint.rs`);
//! - never die of a request: malformed HTTP is answered 400 by the parser, an
//!   unknown path 404, a known path with another method 405 with `Allow`, and
//!   a handler that panics 500 — the listener goes on;
//! - end when stopped: [`OpsServer`] unblocks and joins its threads when it
//!   is dropped.
//!
//! HTTP parsing is `tiny_http`'s (blocking, OS threads, no async of ours).
//! Its buffered responses suit these small request/response routes; the
//! emulator keeps its own server because SSE needs one write per event.
//!
//! The live dashboard (`GET /` and the JSON it polls) is [`dashboard`].
//!
//! Pure parts, apart from the I/O of [`server`]: the listen address
//! ([`ListenAddr`]), the route table ([`Routes`]), the bearer check
//! ([`check_bearer`]) and the exposition text ([`Exposition`]).
//!
//! Nothing here knows the pipeline: what each route answers, readiness and
//! the catalogue of metrics are the pipeline's (`src/pipeline/endpoint.rs`,
//! `readiness.rs`, `metrics.rs`).

mod addr;
mod auth;
pub(crate) mod dashboard;
mod exposition;
mod routes;
mod server;

pub(crate) use addr::ListenAddr;
pub use auth::{check_bearer, Access};
pub(crate) use exposition::{Exposition, HistogramSample, METRICS_CONTENT_TYPE};
pub use routes::{Method, Request, Response, Routes};
pub use server::{OpsError, OpsServer};

/// Settings of the operator's endpoint.
#[derive(Clone, Default)]
pub struct OpsConfig {
    /// Where to listen; `None` disables the endpoint (the library's default,
    /// so tests and embedders bind nothing unless asked).
    pub addr: Option<std::net::SocketAddr>,
    /// When `addr`'s port is taken: `true` listens on a free port of the same
    /// address instead (for a default address nobody chose), `false` fails.
    pub fallback_port: bool,
    /// The bearer token of the control routes; `None` (or empty) disables
    /// them (they answer 403).
    pub control_token: Option<String>,
}

impl std::fmt::Debug for OpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("OpsConfig")
            .field("addr", &self.addr)
            .field("fallback_port", &self.fallback_port)
            .field(
                "control_token",
                &self.control_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}
