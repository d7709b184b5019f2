//! Counters, the status line, the stats file and the top-hashtags sketch (issue 6).
