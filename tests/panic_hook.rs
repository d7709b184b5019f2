//! The panic hook silences kill panics only (own binary: hooks are process-wide).

use std::panic::{catch_unwind, panic_any, set_hook};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tweetflow::{install_panic_hook, KillPanic};

#[test]
fn kill_panics_are_silent_other_panics_reach_the_previous_hook() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&seen);
    // Stands in for the default hook (which prints); the core's hook chains to it.
    set_hook(Box::new(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    }));
    install_panic_hook();
    install_panic_hook(); // idempotent: does not chain twice
    assert!(catch_unwind(|| panic_any(KillPanic)).is_err());
    assert_eq!(seen.load(Ordering::SeqCst), 0, "a kill reached the hook");
    assert!(catch_unwind(|| panic!("unexpected")).is_err());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "an unexpected panic was silenced"
    );
    let _ = std::panic::take_hook();
}
