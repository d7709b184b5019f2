//! Keeps a long-lived stage loop alive in its own thread.
//!
//! A stage loop (the aggregator, the tap, a server's accept loop) returns
//! normally when its input disconnects. An unexpected panic in it is a bug,
//! but it must not silently end the stage: [`keep_alive`] logs it and runs the
//! loop again on the same channels, with whatever state the loop keeps outside
//! itself, after the crash-loop [`Backoff`]. More restarts than
//! [`StagePolicy::max_restarts`] within [`StagePolicy::window`] mean the stage
//! is broken for good: it gives up with a [`KeepAliveError`].

use std::time::{Duration, Instant};

use super::{panic_message, Backoff, RestartWindow};

/// Restart intensity and back-off of a stage under [`keep_alive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePolicy {
    /// At most this many restarts ... (default 500)
    pub max_restarts: usize,
    /// ... within this sliding window (default 5 s); beyond: give up.
    pub window: Duration,
    /// First back-off of a stage restarting again soon (default 10 ms).
    pub backoff_base: Duration,
    /// Back-off cap (default 1 s).
    pub backoff_max: Duration,
    /// A restart more than this after the previous one starts a new streak (default 2 s).
    pub backoff_reset: Duration,
}

impl Default for StagePolicy {
    fn default() -> Self {
        StagePolicy {
            max_restarts: 500,
            window: Duration::from_secs(5),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            backoff_reset: Duration::from_secs(2),
        }
    }
}

impl StagePolicy {
    /// The crash-loop [`Backoff`] of this policy.
    pub fn backoff(&self) -> Backoff {
        Backoff::crash_loop(self.backoff_base, self.backoff_max, self.backoff_reset)
    }
}

/// A stage under [`keep_alive`] panicked more often than its policy allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {restarts} restarts within {window:?}; giving up (last panic: {last_panic})")]
pub(crate) struct KeepAliveError {
    /// The stage's name, as given to [`keep_alive`].
    pub stage: String,
    /// Restarts counted in the window when it gave up.
    pub restarts: usize,
    /// The policy's window.
    pub window: Duration,
    /// The message of the last panic (see [`panic_message`]).
    pub last_panic: String,
}

/// Runs `body` until it returns normally (its input disconnected), restarting
/// it after a panic (see the module documentation).
pub(crate) fn keep_alive<F: FnMut()>(
    name: &str,
    policy: &StagePolicy,
    mut body: F,
) -> Result<(), KeepAliveError> {
    let mut window = RestartWindow::new(policy.max_restarts, policy.window);
    let mut backoff = policy.backoff();
    let mut rng = rand::thread_rng();
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut body)) {
            Ok(()) => return Ok(()),
            Err(payload) => {
                let msg = panic_message(payload.as_ref());
                let now = Instant::now();
                if window.record(now) {
                    let err = KeepAliveError {
                        stage: name.to_string(),
                        restarts: window.len(),
                        window: policy.window,
                        last_panic: msg,
                    };
                    log::error!("{err}");
                    return Err(err);
                }
                let pause = backoff.next(now, &mut rng);
                log::error!("{name} panicked: {msg}; restarting in {pause:?}");
                std::thread::sleep(pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{install_panic_hook, KillPanic};
    use super::*;
    use std::cell::Cell;

    #[test]
    fn restarts_a_panicking_loop_until_it_returns() {
        install_panic_hook();
        let runs = Cell::new(0);
        let r = keep_alive("test", &StagePolicy::default(), || {
            runs.set(runs.get() + 1);
            if runs.get() < 3 {
                std::panic::panic_any(KillPanic); // silent under the hook
            }
        });
        assert_eq!(r, Ok(()));
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn gives_up_beyond_the_restart_intensity() {
        install_panic_hook();
        let policy = StagePolicy {
            max_restarts: 2,
            window: Duration::from_secs(60),
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..StagePolicy::default()
        };
        let runs = Cell::new(0);
        let r = keep_alive("test", &policy, || {
            runs.set(runs.get() + 1);
            std::panic::panic_any(KillPanic);
        });
        assert_eq!(r.map_err(|e| e.last_panic), Err("killed".to_string()));
        assert_eq!(runs.get(), 3);
    }
}
