//! Least-connected dispatcher (issue 4).
