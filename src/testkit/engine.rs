//! The engine's test hook and tweet: a worker that panics on chosen tweets, and
//! a plain tweet to feed it.

use std::fmt;
use std::sync::Arc;

use crate::engine::WorkerHook;
use crate::model::{ScoreKind, Seq, Tweet, User};

/// A [`WorkerHook`]: a predicate that makes a worker panic (an *unexpected*
/// panic, not a kill) on the tweets it selects.
#[derive(Clone)]
pub struct Fault(
    /// The predicate.
    pub Arc<FaultFn>,
);

/// The predicate of a [`Fault`].
pub type FaultFn = dyn Fn(ScoreKind, &Tweet) -> bool + Send + Sync;

impl WorkerHook for Fault {
    fn panics(&self, kind: ScoreKind, tweet: &Tweet) -> bool {
        (self.0)(kind, tweet)
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fault(..)")
    }
}

/// A test hook: a predicate on (pool, slot) that makes the creation of that
/// worker's thread fail, as `pthread_create` does past a limit (a [`WorkerHook`]).
#[derive(Clone)]
pub struct SpawnFault(
    /// The predicate.
    pub Arc<dyn Fn(ScoreKind, usize) -> bool + Send + Sync>,
);

impl WorkerHook for SpawnFault {
    fn spawn_fails(&self, kind: ScoreKind, slot: usize) -> bool {
        (self.0)(kind, slot)
    }
}

impl fmt::Debug for SpawnFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpawnFault(..)")
    }
}

/// A tweet for tests: one favorite, one retweet, a user with 10 followers.
pub fn test_tweet(seq: Seq, text: &str) -> Tweet {
    Tweet {
        favorite_count: 1,
        retweet_count: 1,
        ..Tweet::minimal(seq, text, User::minimal(1, 10))
    }
}
