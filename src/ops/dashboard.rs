//! The live dashboard: one self-contained page, embedded in the binary, and
//! the JSON it polls.
//!
//! `GET /` answers [`PAGE`] (`dashboard.html`: inline CSS and JavaScript, the
//! charts drawn by hand on `<canvas>`), which fetches `GET /api/stats` once a
//! second and charts the last ten minutes of it
//! ([`crate::stats::history`]): received vs committed tweets per second per
//! stream, the pools against the autoscaler's targets, in-flight jobs, batch
//! size and write time, buffer and spool, kills and restarts, and the top-10
//! hashtags as a table.
//!
//! The page requests nothing but tweetflow's own URLs, and the answer says so
//! to the browser: its `Content-Security-Policy` allows scripts and styles
//! only inline and connections only to the page's own origin, so a stray
//! external reference fails loudly (a console error) instead of leaking
//! requests.

use super::Response;

/// The page, as built into the binary.
pub(crate) const PAGE: &str = include_str!("dashboard.html");

/// What the page may load: its own inline code and its own origin, nothing else.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The answer to `GET /`.
pub(crate) fn page() -> Response {
    Response::html(200, PAGE).with_header("Content-Security-Policy", CSP)
}

/// The answer to `GET /api/stats`: `json`, the live status and its history
/// ([`crate::stats::history::Live::to_json`]).
pub(crate) fn stats(json: Vec<u8>) -> Response {
    Response::new(200, "application/json", json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::history::column_names;

    /// Every `col: "name"` the page charts.
    fn charted_columns() -> Vec<&'static str> {
        PAGE.split("col: \"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn the_page_charts_only_columns_the_history_has_and_every_one_of_them() {
        let charted = charted_columns();
        let names: Vec<&str> = column_names().collect();
        for c in &charted {
            assert!(
                names.contains(c),
                "the page charts {c:?}, which the history lacks"
            );
        }
        for n in names.iter().filter(|n| **n != "t") {
            assert!(
                charted.contains(n),
                "the history column {n:?} is not charted"
            );
        }
    }

    #[test]
    fn the_page_refers_to_no_other_site() {
        for needle in [
            "http:",
            "https:",
            "src=\"//",
            "href=\"//",
            "@import",
            "url(",
        ] {
            assert!(!PAGE.contains(needle), "the page contains {needle:?}");
        }
        let r = page();
        assert_eq!(r.status, 200);
        assert!(r.content_type.starts_with("text/html"));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Content-Security-Policy" && v.contains("connect-src 'self'")));
    }
}
