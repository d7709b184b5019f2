//! The Prometheus text exposition format (0.0.4), written.
//!
//! Each family is its `# HELP` line, its `# TYPE` line, then its samples, and
//! a family is written once (the format forbids a second block of the same
//! name). The rules kept here, from the format's specification
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>):
//!
//! - metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//!   `[a-zA-Z_][a-zA-Z0-9_]*` (checked in debug builds: they are constants);
//! - label values escape `\`, `"` and line feeds; HELP text escapes `\` and
//!   line feeds;
//! - a counter's name ends in `_total`;
//! - a histogram's `_bucket` samples are cumulative in `le` order and end
//!   with `le="+Inf"`, equal to its `_count`; `_sum` follows;
//! - values are decimal, or `NaN`, `+Inf`, `-Inf`.

use std::fmt::Write as _;

/// The `Content-Type` of the text format.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A sample's labels: `(name, value)` pairs.
pub(crate) type Labels<'a> = &'a [(&'a str, &'a str)];

/// One histogram, ready to write: cumulative counts at `bounds`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSample<'a> {
    /// Upper bounds of the buckets, ascending (in the metric's unit).
    pub bounds: &'a [f64],
    /// Observations ≤ each bound; as long as `bounds`.
    pub cumulative: &'a [u64],
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Their sum (in the metric's unit).
    pub sum: f64,
}

/// An exposition being written.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
    #[cfg(debug_assertions)]
    names: std::collections::BTreeSet<String>,
}

impl Exposition {
    /// An empty exposition.
    pub(crate) fn new() -> Exposition {
        Exposition::default()
    }

    /// A counter family; `name` ends in `_total`.
    pub(crate) fn counter(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, u64)]) {
        self.counter_head(name, help);
        for (labels, v) in samples {
            self.line(name, labels, None, &v.to_string());
        }
    }

    /// A counter family of fractional values (seconds); `name` ends in `_total`.
    pub(crate) fn float_counter(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, f64)]) {
        self.counter_head(name, help);
        for (labels, v) in samples {
            self.line(name, labels, None, &number(*v));
        }
    }

    /// A gauge family.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, samples: &[(Labels<'_>, f64)]) {
        self.head(name, "gauge", help);
        for (labels, v) in samples {
            self.line(name, labels, None, &number(*v));
        }
    }

    /// A histogram family of one series.
    pub(crate) fn histogram(&mut self, name: &str, help: &str, h: &HistogramSample<'_>) {
        self.histograms(name, help, &[(&[], h.clone())]);
    }

    /// A histogram family of one series per label set.
    pub(crate) fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[(Labels<'_>, HistogramSample<'_>)],
    ) {
        self.head(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (labels, h) in series {
            debug_assert_eq!(h.bounds.len(), h.cumulative.len());
            debug_assert!(h.bounds.windows(2).all(|w| w[0] < w[1]));
            for (le, c) in h.bounds.iter().zip(h.cumulative) {
                self.line(&bucket, labels, Some(&number(*le)), &c.to_string());
            }
            self.line(&bucket, labels, Some("+Inf"), &h.count.to_string());
            self.line(&format!("{name}_sum"), labels, None, &number(h.sum));
            self.line(&format!("{name}_count"), labels, None, &h.count.to_string());
        }
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn counter_head(&mut self, name: &str, help: &str) {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        self.head(name, "counter", help);
    }

    fn head(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(valid_name(name, true), "metric name {name:?}");
        #[cfg(debug_assertions)]
        debug_assert!(
            self.names.insert(name.to_string()),
            "family {name} written twice"
        );
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, labels: Labels<'_>, le: Option<&str>, value: &str) {
        self.out.push_str(name);
        let le = le.map(|v| ("le", v));
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le) {
            debug_assert!(valid_name(k, false), "label name {k:?}");
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }
}

/// A value as the format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn valid_name(s: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = s.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_and_values_are_escaped() {
        let mut e = Exposition::new();
        e.counter(
            "x_events_total",
            "Events \\ seen\nso far.",
            &[(&[("stream", "1")], 3), (&[("stream", "a\"b\\c\nd")], 0)],
        );
        e.gauge(
            "x_up",
            "Whether it is up.",
            &[(&[], 1.0), (&[("k", "v")], f64::NAN)],
        );
        e.gauge("x_big", "A big one.", &[(&[], 1e21), (&[], f64::INFINITY)]);
        let text = e.finish();
        let want = "\
# HELP x_events_total Events \\\\ seen\\nso far.
# TYPE x_events_total counter
x_events_total{stream=\"1\"} 3
x_events_total{stream=\"a\\\"b\\\\c\\nd\"} 0
# HELP x_up Whether it is up.
# TYPE x_up gauge
x_up 1
x_up{k=\"v\"} NaN
# HELP x_big A big one.
# TYPE x_big gauge
x_big 1000000000000000000000
x_big +Inf
";
        assert_eq!(text, want);
    }

    #[test]
    fn histograms_end_with_inf_sum_and_count() {
        let mut e = Exposition::new();
        e.histogram(
            "x_seconds",
            "Latency.",
            &HistogramSample {
                bounds: &[0.005, 0.5, 2.0],
                cumulative: &[1, 4, 4],
                count: 5,
                sum: 9.25,
            },
        );
        assert_eq!(
            e.finish(),
            "# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.005\"} 1\nx_seconds_bucket{le=\"0.5\"} 4\n\
             x_seconds_bucket{le=\"2\"} 4\nx_seconds_bucket{le=\"+Inf\"} 5\n\
             x_seconds_sum 9.25\nx_seconds_count 5\n"
        );
    }

    #[test]
    fn a_histogram_family_holds_one_series_per_label_set() {
        let mut e = Exposition::new();
        let h = |cumulative, count, sum| HistogramSample {
            bounds: &[0.1, 1.0],
            cumulative,
            count,
            sum,
        };
        e.histograms(
            "x_seconds",
            "Latency per pool.",
            &[
                (&[("pool", "a")], h(&[1, 2], 3, 4.5)),
                (&[("pool", "b")], h(&[0, 0], 0, 0.0)),
            ],
        );
        assert_eq!(
            e.finish(),
            "# HELP x_seconds Latency per pool.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{pool=\"a\",le=\"0.1\"} 1\nx_seconds_bucket{pool=\"a\",le=\"1\"} 2\n\
             x_seconds_bucket{pool=\"a\",le=\"+Inf\"} 3\nx_seconds_sum{pool=\"a\"} 4.5\n\
             x_seconds_count{pool=\"a\"} 3\n\
             x_seconds_bucket{pool=\"b\",le=\"0.1\"} 0\nx_seconds_bucket{pool=\"b\",le=\"1\"} 0\n\
             x_seconds_bucket{pool=\"b\",le=\"+Inf\"} 0\nx_seconds_sum{pool=\"b\"} 0\n\
             x_seconds_count{pool=\"b\"} 0\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("tweetflow_a:b_1", true));
        assert!(!valid_name("1abc", true));
        assert!(!valid_name("a-b", true));
        assert!(!valid_name("a:b", false));
        assert!(!valid_name("", false));
    }
}
