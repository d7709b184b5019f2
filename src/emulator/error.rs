//! The emulator's errors: one for starting and running it, one for a
//! configuration value out of range, one for a rate that does not parse.
//!
//! Each variant carries the value or the OS error it is about, and an OS
//! error is a `source`, not part of the message, so a chain printed with
//! `{:#}` says each thing once.

use std::io;
use std::net::SocketAddr;

/// Errors starting or running the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address cannot be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid emulator configuration: {0}")]
    Config(EmulatorConfigError),
    /// The accept thread could not be spawned.
    #[error("cannot start the emulator's accept thread")]
    Spawn(#[source] io::Error),
}

impl From<EmulatorConfigError> for EmulatorError {
    fn from(e: EmulatorConfigError) -> EmulatorError {
        EmulatorError::Config(e)
    }
}

/// A configuration value out of range (what [`EmulatorConfig::validate`]
/// rejects).
///
/// [`EmulatorConfig::validate`]: super::EmulatorConfig::validate
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmulatorConfigError {
    /// The time scale is not a finite number > 0.
    #[error("time scale must be > 0, not {0}")]
    TimeScale(f64),
    /// The retweet share is not within `0..=1`.
    #[error("retweet share must be within 0..=1, not {0}")]
    RetweetShare(f64),
    /// A constant rate is not a finite number of events/s > 0.
    #[error("rate must be > 0 events/s, not {0}")]
    Rate(f64),
    /// A band or hold range of the rate profile is not `0 < low <= high`.
    #[error("rate profile {range} range {low}..{high} is not 0 < a <= b")]
    ProfileRange {
        /// Which range: `low`, `mid`, `high`, `low_hold`, `mid_hold` or `high_hold`.
        range: &'static str,
        /// Its lower end.
        low: f64,
        /// Its upper end.
        high: f64,
    },
    /// The connection limit is 0.
    #[error("max connections must be at least 1")]
    MaxConnections,
}

/// A `--rate` that is neither `profile`, `max` nor a number of events/s > 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a rate: use `profile`, `max` or a number of events/s > 0")]
pub struct ParseRateError {
    /// The text given.
    pub input: String,
}
