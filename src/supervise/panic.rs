//! Kill panics and the process-wide panic hook.
//!
//! A kill (`std::panic::panic_any(KillPanic)`) is routine: the lab server
//! sends kill messages all the time, and each one must make a worker panic for
//! real. The hook installed by [`install_panic_hook`] prints nothing for that
//! payload and hands every other panic to the previous hook, so an unexpected
//! panic keeps its message, location and (if enabled) backtrace.

use std::any::Any;
use std::sync::Once;

/// The payload of a kill panic (`std::panic::panic_any(KillPanic)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillPanic;

/// Installs (once) a panic hook that prints nothing for [`KillPanic`] and
/// hands every other panic to the previous hook (the default output).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().is::<KillPanic>() {
                return;
            }
            prev(info);
        }));
    });
}

/// The text of a panic payload: `"killed"` for a [`KillPanic`], the message
/// of a `&str` or `String` payload, else a placeholder.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if p.is::<KillPanic>() {
        "killed".to_string()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(&KillPanic), "killed");
        assert_eq!(panic_message(&"boom"), "boom");
        assert_eq!(panic_message(&String::from("bang")), "bang");
        assert_eq!(panic_message(&42u8), "non-string panic payload");
    }
}
