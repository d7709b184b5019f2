//! An emulator of the lab's rtp-server (issue 2): `GET /`, the two SSE tweet
//! streams `/tweets/1` and `/tweets/2`, and the AFINN-111 lexicon at
//! `/emotion_values`, framed byte for byte like the real server.
//!
//! - [`gen`]: the tweet generator ([`TweetGen`], [`Corpus`], [`frame_event`]),
//!   reusable without a server (benches feed pipelines with it).
//! - [`rate`]: the rate profile and absolute-deadline pacing.
//! - [`server`]: the HTTP server ([`Emulator`]).
//!
//! ```no_run
//! use tweetflow::emulator::{Emulator, EmulatorConfig, Rate};
//! let emu = Emulator::start(EmulatorConfig {
//!     bind: "127.0.0.1:0".parse().unwrap(),
//!     rate: Rate::Max,
//!     ..EmulatorConfig::default()
//! })
//! .unwrap();
//! println!("streams at {}/tweets/1 and {}/tweets/2", emu.url(), emu.url());
//! emu.stop();
//! ```

#![warn(missing_docs)]

pub mod gen;
pub mod json;
pub mod rate;
pub mod server;
mod vocab;

use std::net::SocketAddr;
use std::time::Duration;

pub use gen::{
    frame_event, unix_100us, Corpus, EventKind, Malformed, TweetGen, DEFAULT_RETWEET_SHARE,
    DEFAULT_USERS, KILL_PAYLOAD,
};
pub use rate::{Rate, RateProfile};
pub use server::{emotion_values, Emulator, ROOT_JSON};

/// Default address: loopback, the real server's port.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";
/// Default kill rate: on average one event in 300 is `{"message": panic}`.
pub const DEFAULT_KILL_EVERY: u64 = 300;
/// Default seed.
pub const DEFAULT_SEED: u64 = 2016;
/// Default limit of simultaneous connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address cannot be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The accept thread could not be spawned.
    #[error("cannot start the emulator's accept thread: {0}")]
    Spawn(std::io::Error),
}

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
        let bad = |m: String| Err(EmulatorError::Config(m));
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(format!("time scale must be > 0, not {}", self.time_scale));
        }
        if !(0.0..=1.0).contains(&self.retweet_share) {
            return bad(format!(
                "retweet share must be within 0..=1, not {}",
                self.retweet_share
            ));
        }
        match &self.rate {
            Rate::Constant(r) if !(r.is_finite() && *r > 0.0) => {
                return bad(format!("rate must be > 0 events/s, not {r}"));
            }
            Rate::Profile(p) => p.validate().map_err(EmulatorError::Config)?,
            _ => {}
        }
        if self.max_connections == 0 {
            return bad("max connections must be at least 1".into());
        }
        Ok(())
    }
}

/// `tweetflow emulate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_BIND, env = "TWEETFLOW_EMULATE_BIND")]
    pub bind: SocketAddr,
    /// Seed of everything generated (users, tweets, kills, rate levels).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// `profile` (levels swinging between ~100 and a few thousand events/s per
    /// stream), a constant number of events/s per stream, or `max`.
    #[arg(long, default_value = "profile")]
    pub rate: Rate,
    /// On average one event in N is a kill message `{"message": panic}`; 0 = never.
    #[arg(long, default_value_t = DEFAULT_KILL_EVERY)]
    pub kill_every: u64,
    /// Cut each connection in the middle of an event after N events.
    #[arg(long)]
    pub cut_after: Option<u64>,
    /// On average one event in N is malformed (truncated JSON, no user, wrong
    /// types, not JSON).
    #[arg(long)]
    pub malformed_every: Option<u64>,
    /// Add `id:` to every event and resume after `Last-Event-ID` on reconnect.
    #[arg(long)]
    pub ids: bool,
    /// Split events over several HTTP chunks at random byte positions and join
    /// some with the next event (the real server sends one event per chunk).
    #[arg(long)]
    pub split_chunks: bool,
    /// Run the rate profile this many times faster (for tests and demos).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Share of retweets among tweet events.
    #[arg(long, default_value_t = DEFAULT_RETWEET_SHARE)]
    pub retweet_share: f64,
    /// Number of users in the generated population.
    #[arg(long, default_value_t = DEFAULT_USERS)]
    pub users: usize,
    /// Refuse connections beyond this many (503).
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl From<EmulateArgs> for EmulatorConfig {
    fn from(a: EmulateArgs) -> EmulatorConfig {
        EmulatorConfig {
            bind: a.bind,
            seed: a.seed,
            rate: a.rate,
            kill_every: (a.kill_every > 0).then_some(a.kill_every),
            cut_after: a.cut_after,
            malformed_every: a.malformed_every.filter(|&m| m > 0),
            ids: a.ids,
            split_chunks: a.split_chunks,
            time_scale: a.time_scale,
            retweet_share: a.retweet_share,
            users: a.users,
            max_connections: a.max_connections,
        }
    }
}

/// Runs the emulator in the foreground until Ctrl-C or SIGTERM (a second
/// Ctrl-C exits at once).
pub fn run_cli(args: EmulateArgs) -> anyhow::Result<()> {
    let cfg = EmulatorConfig::from(args);
    let stop = crate::shutdown::Shutdown::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled terminates the process.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.flag())?;
        signal_hook::flag::register(sig, stop.flag())?;
    }
    let summary = format!(
        "seed {}, rate {}, kill every {}, cut after {}, malformed every {}, ids {}, split chunks {}, time scale {}",
        cfg.seed,
        cfg.rate,
        cfg.kill_every.map_or("never".into(), |k| k.to_string()),
        cfg.cut_after.map_or("never".into(), |k| k.to_string()),
        cfg.malformed_every
            .map_or("never".into(), |k| k.to_string()),
        cfg.ids,
        cfg.split_chunks,
        cfg.time_scale,
    );
    let emu = Emulator::start(cfg)?;
    let url = emu.url();
    log::info!("emulating rtp-server at {url} ({summary})");
    log::info!("try: curl -N {url}/tweets/1   (Ctrl-C stops)");
    while !stop.sleep(Duration::from_secs(3600)) {}
    log::info!("stopping the emulator");
    emu.stop();
    Ok(())
}
