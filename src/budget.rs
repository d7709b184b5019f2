//! The memory budget: how many bytes of tweets may be alive in memory at once,
//! and whether the spool has room. Ingest asks it before it takes a tweet in.
//!
//! Count bounds (channel capacities, the sink's `buffer_records`) do not
//! bound memory: with 1 MiB events, four 4,096-slot channels alone hold
//! gigabytes. So each tweet carries a [`MemoryPermit`] for its bytes, taken
//! by the stream reader before the tweet is sent on, inside the `Arc<Tweet>`
//! that every stage shares (the dispatcher, the inboxes and workers, the
//! aggregator's pending map, the tap, the sink's channel, memory buffer and
//! batch). The permit is released when the last copy of the tweet is dropped:
//! after its batch committed, after it was appended to the spool, or
//! wherever else it ends. No stage releases anything by hand, so nothing can
//! leak or release twice.
//!
//! A reader whose tweet does not fit waits (and stops reading its socket,
//! so TCP flow control holds the server back) until enough permits are
//! dropped. It also waits while the sink reports the spool full
//! ([`Budget::set_spool_full`]), and while the sink, in `--when-full block`,
//! reports that it is behind a database that is up ([`Budget::set_sink_behind`]):
//! its memory share is full and it does not spill. A tweet larger than the whole limit is let
//! in when nothing else is held, so it cannot wait forever.
//! [`Budget::force`] takes bytes without waiting: for what must not wait
//! (an event completely received when shutdown comes) and for clones.
//!
//! It imports nothing from the crate: it sits below the data model, which
//! holds the permits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Why [`Budget::acquire_timeout`] did not grant a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The tweets in memory hold the whole limit.
    Memory,
    /// The spool has reached its maximum size.
    SpoolFull,
    /// The sink's memory share is full while the database is up, and the sink
    /// does not spill (`--when-full block`).
    SinkBehind,
}

impl Wait {
    /// How the status shows it.
    pub fn name(self) -> &'static str {
        match self {
            Wait::Memory => "waiting: memory limit",
            Wait::SpoolFull => "waiting: spool full",
            Wait::SinkBehind => "waiting: sink behind",
        }
    }

    fn code(self) -> u64 {
        match self {
            Wait::Memory => 0,
            Wait::SpoolFull => 1,
            Wait::SinkBehind => 2,
        }
    }
}

/// Bytes of tweets in memory against a limit, plus the spool-full hold.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
    spool_full: AtomicBool,
    sink_behind: AtomicBool,
    /// Readers waiting now.
    waiting: AtomicU64,
    /// What the last reader to wait was waiting for ([`Wait::code`]).
    waiting_for: AtomicU64,
    lock: Mutex<()>,
    freed: Condvar,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit: limit.max(1),
            used: AtomicU64::new(0),
            spool_full: AtomicBool::new(false),
            sink_behind: AtomicBool::new(false),
            waiting: AtomicU64::new(0),
            waiting_for: AtomicU64::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        })
    }

    /// A budget that never makes anyone wait (tests, tools).
    pub fn unlimited() -> Arc<Budget> {
        Budget::new(u64::MAX)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held by permits now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// What readers wait for now, if any reader waits.
    pub fn waiting(&self) -> Option<Wait> {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return None;
        }
        Some(match self.waiting_for.load(Ordering::Relaxed) {
            1 => Wait::SpoolFull,
            2 => Wait::SinkBehind,
            _ => Wait::Memory,
        })
    }

    /// Holds ingest back while `full` (the sink's spool reached its maximum).
    pub fn set_spool_full(&self, full: bool) {
        self.hold(&self.spool_full, full);
    }

    /// Sets a hold on ingest; waiting readers look again once it is lifted.
    fn hold(&self, flag: &AtomicBool, on: bool) {
        if flag.swap(on, Ordering::SeqCst) && !on {
            let _g = self.lock.lock();
            self.freed.notify_all();
        }
    }

    /// Whether the spool is reported full.
    pub fn spool_full(&self) -> bool {
        self.spool_full.load(Ordering::SeqCst)
    }

    /// Holds ingest back while `behind` (the sink's memory share is full, the
    /// database is up and the sink does not spill: `--when-full block`).
    pub fn set_sink_behind(&self, behind: bool) {
        self.hold(&self.sink_behind, behind);
    }

    /// Whether the sink reports that it is behind.
    pub fn sink_behind(&self) -> bool {
        self.sink_behind.load(Ordering::SeqCst)
    }

    fn try_take(&self, bytes: u64) -> Result<(), Wait> {
        if self.spool_full() {
            return Err(Wait::SpoolFull);
        }
        if self.sink_behind() {
            return Err(Wait::SinkBehind);
        }
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            // Alone, a tweet larger than the limit still gets in.
            if used > 0 && used.saturating_add(bytes) > self.limit {
                return Err(Wait::Memory);
            }
            match self.used.compare_exchange_weak(
                used,
                used.saturating_add(bytes),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// A permit for `bytes`, waiting up to `timeout` for room; the caller
    /// loops (checking its shutdown flag in between).
    pub fn acquire_timeout(
        self: &Arc<Self>,
        bytes: u64,
        timeout: Duration,
    ) -> Result<MemoryPermit, Wait> {
        let why = match self.try_take(bytes) {
            Ok(()) => return Ok(self.permit(bytes)),
            Err(why) => why,
        };
        self.waiting_for.store(why.code(), Ordering::Relaxed);
        let mut g = self.lock.lock();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let result = loop {
            match self.try_take(bytes) {
                Ok(()) => break Ok(self.permit(bytes)),
                Err(why) => {
                    self.waiting_for.store(why.code(), Ordering::Relaxed);
                    if self.freed.wait_for(&mut g, timeout).timed_out() {
                        break self.try_take(bytes).map(|()| self.permit(bytes));
                    }
                }
            }
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// A permit for `bytes` at once, beyond the limit if need be.
    pub fn force(self: &Arc<Self>, bytes: u64) -> MemoryPermit {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.permit(bytes)
    }

    fn permit(self: &Arc<Self>, bytes: u64) -> MemoryPermit {
        MemoryPermit {
            budget: Some(Arc::clone(self)),
            bytes,
        }
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let _g = self.lock.lock();
            self.freed.notify_all();
        }
    }
}

/// Bytes of a [`Budget`] held by one tweet; given back when dropped.
///
/// The default permit holds nothing (a tweet read back from the spool, or made
/// by a test). Equality ignores permits: they are bookkeeping, not data. A
/// clone takes the same bytes again from the same budget (without waiting),
/// since the clone holds its own copy of the tweet.
#[derive(Debug, Default)]
pub struct MemoryPermit {
    budget: Option<Arc<Budget>>,
    bytes: u64,
}

impl MemoryPermit {
    /// The bytes it holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Clone for MemoryPermit {
    fn clone(&self) -> Self {
        match &self.budget {
            Some(b) => b.force(self.bytes),
            None => MemoryPermit::default(),
        }
    }
}

impl PartialEq for MemoryPermit {
    fn eq(&self, _: &MemoryPermit) -> bool {
        true
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        if let Some(b) = self.budget.take() {
            b.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(20);

    #[test]
    fn waits_at_the_limit_and_resumes_when_a_permit_drops() {
        let b = Budget::new(100);
        let p1 = b.acquire_timeout(60, T).unwrap();
        let p2 = b.acquire_timeout(40, T).unwrap();
        assert_eq!(b.used(), 100);
        assert_eq!(b.acquire_timeout(1, T).unwrap_err(), Wait::Memory);
        let b2 = Arc::clone(&b);
        let waiter = std::thread::spawn(move || b2.acquire_timeout(50, Duration::from_secs(30)));
        while b.waiting().is_none() {
            std::thread::yield_now();
        }
        assert_eq!(b.waiting(), Some(Wait::Memory));
        drop(p1);
        let p3 = waiter.join().unwrap().unwrap();
        assert_eq!(b.used(), 90);
        drop((p2, p3));
        assert_eq!(b.used(), 0);
        assert_eq!(b.waiting(), None);
    }

    #[test]
    fn a_tweet_larger_than_the_limit_gets_in_alone() {
        let b = Budget::new(100);
        let big = b.acquire_timeout(500, T).unwrap();
        assert_eq!(b.acquire_timeout(1, T).unwrap_err(), Wait::Memory);
        drop(big);
        assert!(b.acquire_timeout(1, T).is_ok());
    }

    #[test]
    fn force_never_waits_and_clones_hold_the_same_bytes() {
        let b = Budget::new(10);
        let p = b.force(50);
        let q = p.clone();
        assert_eq!((q.bytes(), b.used()), (50, 100));
        assert_eq!(p, MemoryPermit::default(), "equality ignores permits");
        drop((p, q));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_full_spool_holds_ingest_back_until_cleared() {
        let b = Budget::new(100);
        b.set_spool_full(true);
        assert_eq!(b.acquire_timeout(1, T).unwrap_err(), Wait::SpoolFull);
        let b2 = Arc::clone(&b);
        let waiter = std::thread::spawn(move || b2.acquire_timeout(1, Duration::from_secs(30)));
        while b.waiting().is_none() {
            std::thread::yield_now();
        }
        assert_eq!(b.waiting(), Some(Wait::SpoolFull));
        b.set_spool_full(false);
        assert!(waiter.join().unwrap().is_ok());
    }

    #[test]
    fn a_sink_behind_holds_ingest_back_until_cleared() {
        let b = Budget::new(100);
        b.set_sink_behind(true);
        assert_eq!(b.acquire_timeout(1, T).unwrap_err(), Wait::SinkBehind);
        let b2 = Arc::clone(&b);
        let waiter = std::thread::spawn(move || b2.acquire_timeout(1, Duration::from_secs(30)));
        while b.waiting().is_none() {
            std::thread::yield_now();
        }
        assert_eq!(b.waiting(), Some(Wait::SinkBehind));
        assert_eq!(Wait::SinkBehind.name(), "waiting: sink behind");
        b.set_sink_behind(false);
        assert!(waiter.join().unwrap().is_ok());
        assert_eq!(b.waiting(), None);
    }
}
