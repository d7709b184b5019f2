//! `tweetflow emulate`: the flags and the foreground run until a signal.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::emulator::{
    Emulator, EmulatorConfig, Rate, DEFAULT_BIND, DEFAULT_KILL_EVERY, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_RETWEET_SHARE, DEFAULT_SEED, DEFAULT_USERS,
};
use crate::shutdown::Shutdown;

/// `tweetflow emulate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulateArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_BIND, env = "TWEETFLOW_EMULATE_BIND")]
    pub bind: SocketAddr,
    /// Seed of everything generated (users, tweets, kills, rate levels).
    #[arg(long, env = "TWEETFLOW_EMULATE_SEED", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// `profile` (levels swinging between ~100 and a few thousand events/s per
    /// stream), a constant number of events/s per stream, or `max`.
    #[arg(long, env = "TWEETFLOW_EMULATE_RATE", default_value = "profile")]
    pub rate: Rate,
    /// On average one event in N is a kill message `{"message": panic}`; 0 = never.
    #[arg(long, env = "TWEETFLOW_EMULATE_KILL_EVERY", default_value_t = DEFAULT_KILL_EVERY)]
    pub kill_every: u64,
    /// Cut each connection in the middle of an event after N events.
    #[arg(long, env = "TWEETFLOW_EMULATE_CUT_AFTER")]
    pub cut_after: Option<u64>,
    /// On average one event in N is malformed (truncated JSON, no user, wrong
    /// types, not JSON).
    #[arg(long, env = "TWEETFLOW_EMULATE_MALFORMED_EVERY")]
    pub malformed_every: Option<u64>,
    /// Add `id:` to every event and resume after `Last-Event-ID` on reconnect.
    #[arg(long, env = "TWEETFLOW_EMULATE_IDS")]
    pub ids: bool,
    /// Split events over several HTTP chunks at random byte positions and join
    /// some with the next event (the real server sends one event per chunk).
    #[arg(long, env = "TWEETFLOW_EMULATE_SPLIT_CHUNKS")]
    pub split_chunks: bool,
    /// Run the rate profile this many times faster (for tests and demos).
    #[arg(long, env = "TWEETFLOW_EMULATE_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Share of retweets among tweet events.
    #[arg(long, env = "TWEETFLOW_EMULATE_RETWEET_SHARE", default_value_t = DEFAULT_RETWEET_SHARE)]
    pub retweet_share: f64,
    /// Number of users in the generated population.
    #[arg(long, env = "TWEETFLOW_EMULATE_USERS", default_value_t = DEFAULT_USERS)]
    pub users: usize,
    /// Refuse connections beyond this many (503).
    #[arg(long, env = "TWEETFLOW_EMULATE_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
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
/// signal exits at once).
pub(super) fn run(args: EmulateArgs) -> anyhow::Result<()> {
    let cfg = EmulatorConfig::from(args);
    let stop = Shutdown::new();
    super::signals::install(&stop)?;
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
    let emu = Emulator::start(cfg).context("starting the emulator")?;
    let url = emu.url();
    log::info!("emulating rtp-server at {url} ({summary})");
    log::info!("try: curl -N {url}/tweets/1   (Ctrl-C stops)");
    while !stop.sleep(Duration::from_secs(3600)) {}
    log::info!("stopping the emulator");
    emu.stop();
    Ok(())
}
