//! Test fixtures and fault hooks of the engine; built only for tests and
//! with the `testkit` feature, never in the default API.

use std::fmt;
use std::sync::Arc;

use crate::model::{ScoreKind, Seq, Tweet, User};

/// A test hook: a predicate that makes a worker panic (an *unexpected* panic,
/// not a kill) on the tweets it selects. `None` in production.
#[derive(Clone)]
pub struct Fault(
    /// The predicate.
    pub Arc<FaultFn>,
);

/// The predicate of a [`Fault`].
pub type FaultFn = dyn Fn(ScoreKind, &Tweet) -> bool + Send + Sync;

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fault(..)")
    }
}

/// A test hook: a predicate on (pool, slot) that makes the creation of that
/// worker's thread fail, as `pthread_create` does past a limit. `None` in production.
#[derive(Clone)]
pub struct SpawnFault(
    /// The predicate.
    pub Arc<dyn Fn(ScoreKind, usize) -> bool + Send + Sync>,
);

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
