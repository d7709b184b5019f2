//! Hand-written supervisor: restarts panicking workers through catch_unwind (issue 4).
