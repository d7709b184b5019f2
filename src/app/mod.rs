//! The application shell: what `main` calls.

pub mod cli;
