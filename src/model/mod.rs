//! The data that flows between pipeline stages.
//!
//! Every stage speaks these types, so they are the contract between modules:
//! `source` produces [`Ingest`], `dispatch` turns it into [`Job`]s for the worker
//! pools and [`AggMsg::Tweet`]s for the aggregator, workers answer with
//! [`AggMsg::Score`], and `aggregate` emits one [`Record`] per tweet to `sink`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::budget::MemoryPermit;

mod shared_str;

pub use shared_str::SharedStr;
pub(crate) use shared_str::{Buffers, Placed, SharedStrs};

/// Ingest sequence number.
///
/// Increases across both streams *and across runs*: the sink starts its
/// [`SeqGen`] above the highest `ingest_seq` already stored and above the
/// records waiting in its spool (the wall clock only when the database cannot
/// be asked at start, raised once it can), so a later run never loses to an
/// earlier one, whatever the clock does. It joins a tweet's results in the
/// aggregator and decides "latest received wins" in the database.
pub type Seq = u64;

/// Hands out [`Seq`] numbers; shared by the readers of both streams.
#[derive(Debug)]
pub struct SeqGen(AtomicU64);

impl SeqGen {
    /// Starts at the current wall-clock time in microseconds since the epoch.
    pub fn from_clock() -> SeqGen {
        SeqGen(AtomicU64::new(unix_micros()))
    }

    /// Starts at `first` (for tests).
    pub fn starting_at(first: Seq) -> SeqGen {
        SeqGen(AtomicU64::new(first))
    }

    /// Makes every later number at least `floor`; returns whether it moved.
    pub fn raise_to(&self, floor: Seq) -> bool {
        self.0.fetch_max(floor, Ordering::Relaxed) < floor
    }

    /// The next number; never returns the same number twice.
    pub fn next(&self) -> Seq {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A Twitter user, as far as the pipeline and the `users` table need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Twitter's user id.
    pub id: i64,
    /// Followers; engagement divides by it (0 when absent).
    pub followers_count: i64,
    /// The @handle.
    pub screen_name: Option<SharedStr>,
    /// The display name.
    pub name: Option<SharedStr>,
    /// Accounts the user follows.
    pub friends_count: Option<i64>,
    /// Tweets the user has posted.
    pub statuses_count: Option<i64>,
    /// The verified badge.
    pub verified: Option<bool>,
    /// The user's interface language.
    pub lang: Option<SharedStr>,
    /// Twitter's format, e.g. `Mon Apr 18 19:30:47 +0000 2016`.
    pub created_at: Option<SharedStr>,
    /// The user object exactly as received (compact JSON text).
    pub raw: SharedStr,
}

/// One tweet: a status from the stream, or the `retweeted_status` extracted from
/// a retweet (which then is a tweet of its own, with its own `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tweet {
    /// The ingest sequence number: unique and increasing across streams and
    /// runs; the newest version of a row wins in the database.
    pub seq: Seq,
    /// Which stream it came from (1 or 2).
    pub stream: u8,
    /// Wall clock at receipt, µs since the epoch; receipt-to-commit latency starts here.
    pub received_unix_us: u64,
    /// Twitter's tweet id.
    pub id: i64,
    /// The text as received.
    pub text: SharedStr,
    /// Twitter's guess of the text's language.
    pub lang: Option<SharedStr>,
    /// Twitter's format, e.g. `Mon Apr 18 19:30:47 +0000 2016`.
    pub created_at: Option<SharedStr>,
    /// 0 when absent.
    pub favorite_count: i64,
    /// 0 when absent.
    pub retweet_count: i64,
    /// The id of the original when this tweet is a retweet.
    pub retweeted_status_id: Option<i64>,
    /// `entities.hashtags[].text`, as received (not lower-cased).
    pub hashtags: Vec<SharedStr>,
    /// The author.
    pub user: User,
    /// The tweet object exactly as received (compact JSON text), `user` and any
    /// `retweeted_status` included. When `user.raw` is a range of it
    /// ([`SharedStr::within`]), that range is the value of its top-level `user`
    /// member: the decoder places it so, and the sink then replaces the user by
    /// its id without scanning the text.
    pub raw: SharedStr,
    /// Its bytes of the memory budget, taken by the stream reader and given
    /// back when the last copy of the tweet is dropped. Not stored anywhere
    /// (a tweet read back from the spool holds none).
    #[serde(skip)]
    pub memory: MemoryPermit,
}

impl User {
    /// A user with only the required fields set, raw `{}` (tests and fixtures).
    pub fn minimal(id: i64, followers_count: i64) -> User {
        User {
            id,
            followers_count,
            screen_name: None,
            name: None,
            friends_count: None,
            statuses_count: None,
            verified: None,
            lang: None,
            created_at: None,
            raw: "{}".into(),
        }
    }
}

impl Tweet {
    /// What the tweet takes in memory, as counted against the memory budget:
    /// the struct, its raw JSON text and every string held outside it (decoded
    /// strings are ranges of the raw text unless JSON escapes changed them).
    pub fn heap_bytes(&self) -> u64 {
        let raw = &self.raw;
        let outside = |s: &SharedStr| if s.within(raw) { 0 } else { s.len() };
        let opt = |s: &Option<SharedStr>| s.as_ref().map_or(0, outside);
        let u = &self.user;
        let bytes = std::mem::size_of::<Tweet>()
            + raw.len()
            + outside(&self.text)
            + opt(&self.lang)
            + opt(&self.created_at)
            + self.hashtags.capacity() * std::mem::size_of::<SharedStr>()
            + self.hashtags.iter().map(outside).sum::<usize>()
            + outside(&u.raw)
            + opt(&u.screen_name)
            + opt(&u.name)
            + opt(&u.lang)
            + opt(&u.created_at);
        bytes as u64
    }

    /// A tweet with only the required fields set: `id` = `seq`, stream 1, no
    /// counts, no hashtags, raw `{}` (tests and fixtures).
    pub fn minimal(seq: Seq, text: &str, user: User) -> Tweet {
        Tweet {
            seq,
            stream: 1,
            received_unix_us: 0,
            id: seq as i64,
            text: text.into(),
            lang: None,
            created_at: None,
            favorite_count: 0,
            retweet_count: 0,
            retweeted_status_id: None,
            hashtags: Vec::new(),
            user,
            raw: "{}".into(),
            memory: MemoryPermit::default(),
        }
    }
}

/// What a stream reader hands to the dispatcher.
#[derive(Debug, Clone)]
pub enum Ingest {
    /// A tweet to score.
    Tweet(Arc<Tweet>),
    /// The server's `{"message": panic}`: crash one worker of each pool.
    Kill {
        /// Which stream it came from (1 or 2).
        stream: u8,
    },
}

/// What the dispatcher hands to one worker.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// Score this tweet.
    Tweet(Arc<Tweet>),
    /// The worker that receives this panics for real; its supervisor restarts it.
    Kill,
}

/// Which worker pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScoreKind {
    /// The sentiment pool (lexicon score of the text).
    Sentiment,
    /// The engagement pool ((favorites + retweets) / followers).
    Engagement,
}

impl ScoreKind {
    /// Both pools, in a fixed order.
    pub const ALL: [ScoreKind; 2] = [ScoreKind::Sentiment, ScoreKind::Engagement];

    /// The pool's name as logs, threads and the stats file spell it.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Sentiment => "sentiment",
            ScoreKind::Engagement => "engagement",
        }
    }
}

/// The aggregator's single input channel carries both halves of the join.
#[derive(Debug, Clone)]
pub enum AggMsg {
    /// Sent by the dispatcher *before* the tweet's jobs go to the workers.
    Tweet(Arc<Tweet>),
    /// Sent by a worker. `value` is `None` when the score is undefined
    /// (engagement of a user with 0 followers).
    Score {
        /// The seq of the tweet it scores.
        seq: Seq,
        /// Which pool scored it.
        kind: ScoreKind,
        /// The score.
        value: Option<f64>,
    },
}

/// One merged tweet, ready for the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The tweet with its user.
    pub tweet: Arc<Tweet>,
    /// `None` when the score never arrived (aggregator timeout).
    pub sentiment: Option<f64>,
    /// `None` when undefined (0 followers) or when it never arrived.
    pub engagement: Option<f64>,
}
