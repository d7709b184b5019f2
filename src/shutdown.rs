//! A cooperative stop signal shared by the threads that *originate* work
//! (stream readers, tickers). Everything downstream stops because its input
//! channel disconnects, not because of this flag.
//!
//! The token is a shared flag: cloning it shares it, triggering it is
//! idempotent and cannot be undone. It is a leaf: it imports nothing from the
//! crate, so every module may hold one. Sleeps wake within 50 ms of a trigger,
//! which bounds how long a reader or ticker takes to notice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared stop flag; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A token that is not triggered yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks every holder to stop. Idempotent.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Shutdown::trigger`] was called on this token or a clone.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, waking early when triggered. Returns `true` if triggered.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if self.is_triggered() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// The underlying flag, for `signal_hook::flag::register`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_wakes_early_when_triggered() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        s.trigger();
        assert!(t.join().unwrap_or(false));
        assert!(s.is_triggered());
        assert!(!Shutdown::new().sleep(Duration::from_millis(1)));
    }
}
