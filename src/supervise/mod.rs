//! Generic restart tools for long-lived threads: the pieces every supervised
//! loop in tweetflow is built from.
//!
//! This module imports nothing from the rest of the crate, so every stage
//! (the engine's worker pools, the aggregator, the tap, the emulator) can use
//! it without creating a dependency cycle.
//!
//! - [`KillPanic`], [`install_panic_hook`] and [`panic_message`]: a kill is a
//!   real panic with a known payload; the hook keeps it silent while every
//!   other panic keeps the default output.
//! - [`RestartWindow`]: OTP-style restart intensity, the restarts within a
//!   sliding window.
//! - [`Backoff`]: the one capped, jittered exponential back-off, used both for
//!   a worker's crash loop and for a stream reader's reconnects.
//! - [`keep_alive`]: runs a stage loop under `catch_unwind`, restarting it
//!   after a panic until it returns or exceeds its restart intensity.

mod backoff;
mod keep_alive;
mod panic;
mod window;

pub(crate) use backoff::Backoff;
pub(crate) use keep_alive::{keep_alive, StagePolicy};
pub(crate) use panic::panic_message;
pub use panic::{install_panic_hook, KillPanic};
pub(crate) use window::RestartWindow;
