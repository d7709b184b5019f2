//! Worker pools: sentiment and engagement workers on OS threads (issue 4).
