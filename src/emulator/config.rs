//! What the emulator can be told, with the defaults that stand in for what
//! is not known of the real server (how often kill messages come, the share
//! of retweets, the rates).

use std::net::SocketAddr;

use super::corpus::DEFAULT_USERS;
use super::error::{EmulatorConfigError, EmulatorError};
use super::rate::Rate;
use super::tweet::DEFAULT_RETWEET_SHARE;

/// Default address: loopback, the real server's port.
pub(crate) const DEFAULT_BIND: &str = "127.0.0.1:4000";
/// Default kill rate: on average one event in 300 is `{"message": panic}`.
pub(crate) const DEFAULT_KILL_EVERY: u64 = 300;
/// Default seed.
pub const DEFAULT_SEED: u64 = 2016;
/// Default limit of simultaneous connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Everything the emulator can be told.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Address to listen on (port 0: a free port). Default `127.0.0.1:4000`.
    pub bind: SocketAddr,
    /// Seed of users, tweets, kills, malformed events and the rate profile.
    pub seed: u64,
    /// Send rate per stream (and per connection). Default: the swinging profile.
    pub rate: Rate,
    /// Each event is `{"message": panic}` with probability `1/N` (None or 0: never).
    /// Default `Some(300)`.
    pub kill_every: Option<u64>,
    /// Each connection is cut in the middle of the event after `N` complete events.
    pub cut_after: Option<u64>,
    /// Each event is malformed with probability `1/N`.
    pub malformed_every: Option<u64>,
    /// Adds `id: N` to every event and resumes after `Last-Event-ID`.
    pub ids: bool,
    /// Splits events over several HTTP chunks at random byte positions and
    /// joins some with the next event (the real server sends one event per
    /// chunk; this tests clients that must not rely on it).
    pub split_chunks: bool,
    /// Runs the rate profile this many times faster (levels last `1/scale` as
    /// long and rates, a constant one too, are `scale` times higher). 1.0 = real time.
    pub time_scale: f64,
    /// Share of retweets among tweet events (default 1/3).
    pub retweet_share: f64,
    /// Number of users in the population (default 10,000).
    pub users: usize,
    /// Connections beyond this get `503` (default 256).
    pub max_connections: usize,
}

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 4000)),
            seed: DEFAULT_SEED,
            rate: Rate::default(),
            kill_every: Some(DEFAULT_KILL_EVERY),
            cut_after: None,
            malformed_every: None,
            ids: false,
            split_chunks: false,
            time_scale: 1.0,
            retweet_share: DEFAULT_RETWEET_SHARE,
            users: DEFAULT_USERS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl EmulatorConfig {
    /// Checks the numeric fields.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(EmulatorConfigError::TimeScale(self.time_scale).into());
        }
        if !(0.0..=1.0).contains(&self.retweet_share) {
            return Err(EmulatorConfigError::RetweetShare(self.retweet_share).into());
        }
        match &self.rate {
            Rate::Constant(r) if !(r.is_finite() && *r > 0.0) => {
                return Err(EmulatorConfigError::Rate(*r).into());
            }
            Rate::Profile(p) => p.validate()?,
            _ => {}
        }
        if self.max_connections == 0 {
            return Err(EmulatorConfigError::MaxConnections.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::RateProfile;

    #[test]
    fn validation_names_the_bad_value() {
        assert!(EmulatorConfig::default().validate().is_ok());
        let bad = |f: fn(&mut EmulatorConfig)| {
            let mut cfg = EmulatorConfig::default();
            f(&mut cfg);
            match cfg.validate() {
                Err(EmulatorError::Config(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            bad(|c| c.time_scale = 0.0),
            EmulatorConfigError::TimeScale(0.0)
        );
        assert_eq!(
            bad(|c| c.retweet_share = 1.5),
            EmulatorConfigError::RetweetShare(1.5)
        );
        assert_eq!(
            bad(|c| c.rate = Rate::Constant(-1.0)),
            EmulatorConfigError::Rate(-1.0)
        );
        assert_eq!(
            bad(|c| c.max_connections = 0),
            EmulatorConfigError::MaxConnections
        );
        let e = bad(|c| {
            c.rate = Rate::Profile(RateProfile {
                mid_hold: (5.0, 1.0),
                ..RateProfile::default()
            })
        });
        assert_eq!(
            e,
            EmulatorConfigError::ProfileRange {
                range: "mid_hold",
                low: 5.0,
                high: 1.0
            }
        );
        assert_eq!(
            EmulatorError::Config(EmulatorConfigError::TimeScale(0.0)).to_string(),
            "invalid emulator configuration: time scale must be > 0, not 0"
        );
    }
}
