//! The recent past of the status, for the dashboard: one sample a second for
//! the last ten minutes.
//!
//! [`History`] is a ring buffer of [`Sample`]s: pushing onto a full history
//! drops the oldest sample, so memory stays bounded (600 samples of a few
//! dozen bytes) however long the pipeline runs. A sample is taken from the
//! same [`Status`] the status line and the stats file show, so the charts and
//! the line never disagree.
//!
//! The history serialises by columns (`{"t": [..], "in1": [..], ..}`, one
//! array per figure, oldest first), which is what a chart draws and a third
//! of the size of one object per sample. [`Live`] pairs the latest status with
//! the history; its JSON is the stats file's object plus `history`, the answer
//! of `GET /api/stats`. Everything here is pure: the status thread feeds it.

use std::collections::VecDeque;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::status::Status;

/// Samples kept: ten minutes at one a second.
pub(crate) const HISTORY_LEN: usize = 600;

/// The figures of one status that the dashboard charts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the pipeline started.
    pub(crate) t: f64,
    /// Tweets received per second on `/tweets/1` and `/tweets/2`.
    pub(crate) rate_in: [f64; 2],
    /// Records committed per second from `/tweets/1` and `/tweets/2`.
    pub(crate) rate_out: [f64; 2],
    /// Sentiment workers now, and the autoscaler's target.
    pub(crate) sentiment: [usize; 2],
    /// Engagement workers now, and the autoscaler's target.
    pub(crate) engagement: [usize; 2],
    /// Jobs in flight, both pools.
    pub(crate) in_flight: u64,
    /// The sink's batch size.
    pub(crate) batch_size: usize,
    /// The last batch's write time, ms.
    pub(crate) write_ms: f64,
    /// Records waiting in memory.
    pub(crate) buffered: u64,
    /// Records waiting in the spool file.
    pub(crate) spilled: u64,
    /// Kill messages so far.
    pub(crate) kills: u64,
    /// Worker restarts so far.
    pub(crate) restarts: u64,
}

impl Sample {
    /// The charted figures of `status`.
    pub(crate) fn of(status: &Status) -> Sample {
        Sample {
            t: status.t,
            rate_in: status.rate_in_streams,
            rate_out: status.rate_out_streams,
            sentiment: [status.sentiment_workers, status.sentiment_target],
            engagement: [status.engagement_workers, status.engagement_target],
            in_flight: status.in_flight,
            batch_size: status.batch_size,
            write_ms: status.write_ms,
            buffered: status.buffered,
            spilled: status.spilled,
            kills: status.kills,
            restarts: status.restarts,
        }
    }
}

/// One column of the serialised history: its name and how to read it from a sample.
type Column = (&'static str, fn(&Sample) -> f64);

/// The columns, in the order they are serialised. Values are rounded to
/// 0.01, which is finer than any chart shows.
const COLUMNS: [Column; 16] = [
    ("t", |s| s.t),
    ("in1", |s| s.rate_in[0]),
    ("in2", |s| s.rate_in[1]),
    ("out1", |s| s.rate_out[0]),
    ("out2", |s| s.rate_out[1]),
    ("sentiment_workers", |s| s.sentiment[0] as f64),
    ("sentiment_target", |s| s.sentiment[1] as f64),
    ("engagement_workers", |s| s.engagement[0] as f64),
    ("engagement_target", |s| s.engagement[1] as f64),
    ("in_flight", |s| s.in_flight as f64),
    ("batch_size", |s| s.batch_size as f64),
    ("write_ms", |s| s.write_ms),
    ("buffered", |s| s.buffered as f64),
    ("spilled", |s| s.spilled as f64),
    ("kills", |s| s.kills as f64),
    ("restarts", |s| s.restarts as f64),
];

/// The names of the serialised columns, in order.
#[cfg(test)]
pub(crate) fn column_names() -> impl Iterator<Item = &'static str> {
    COLUMNS.iter().map(|(name, _)| *name)
}

/// The last [`HISTORY_LEN`] samples (or fewer), oldest first.
#[derive(Debug, Clone)]
pub(crate) struct History {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Default for History {
    fn default() -> Self {
        History::with_capacity(HISTORY_LEN)
    }
}

impl History {
    /// An empty history that keeps the last `capacity` samples (at least one).
    pub(crate) fn with_capacity(capacity: usize) -> History {
        let capacity = capacity.max(1);
        History {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends `sample`, dropping the oldest one when the history is full.
    pub(crate) fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples, oldest first.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> {
        self.samples.iter()
    }
}

/// One column as a JSON array.
struct ColumnValues<'a>(&'a VecDeque<Sample>, fn(&Sample) -> f64);

impl Serialize for ColumnValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for s in self.0 {
            seq.serialize_element(&round(self.1(s)))?;
        }
        seq.end()
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COLUMNS.len()))?;
        for (name, read) in COLUMNS {
            map.serialize_entry(name, &ColumnValues(&self.samples, read))?;
        }
        map.end()
    }
}

/// `v` to 0.01; a value that is not finite (never produced, but JSON has no
/// NaN) as 0.
fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// The latest status and the history that leads to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    status: Status,
    history: History,
}

/// The JSON shape of [`Live`]: the stats file's keys, then `history`.
#[derive(Serialize)]
struct LiveJson<'a> {
    #[serde(flatten)]
    status: &'a Status,
    /// Seconds between two samples.
    history_interval_s: u32,
    /// Samples kept at most.
    history_len: usize,
    history: &'a History,
}

impl Live {
    /// Makes `status` the latest and appends its sample to the history.
    pub(crate) fn record(&mut self, status: Status) {
        self.history.push(Sample::of(&status));
        self.status = status;
    }

    /// The latest status and the history as one JSON object.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let json = LiveJson {
            status: &self.status,
            history_interval_s: 1,
            history_len: self.history.capacity,
            history: &self.history,
        };
        // Numbers, strings and arrays of them always serialise.
        serde_json::to_vec(&json).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn status(t: f64) -> Status {
        Status {
            t,
            rate_in_streams: [10.0 * t, 20.0 * t],
            rate_out_streams: [9.0 * t, 19.0 * t],
            sentiment_workers: 3,
            sentiment_target: 4,
            engagement_workers: 5,
            engagement_target: 6,
            in_flight: 7,
            batch_size: 100,
            write_ms: 1.234_567,
            buffered: 11,
            spilled: 12,
            kills: 13,
            restarts: 26,
            sink: "up".into(),
            ..Status::default()
        }
    }

    #[test]
    fn a_full_history_drops_the_oldest_sample() {
        let mut h = History::with_capacity(3);
        for t in 1..=5 {
            h.push(Sample::of(&status(f64::from(t))));
        }
        let ts: Vec<f64> = h.samples().map(|s| s.t).collect();
        assert_eq!(ts, [3.0, 4.0, 5.0]);
        assert_eq!(History::default().capacity, 600);
        // A capacity of 0 would drop every sample: it keeps one.
        let mut one = History::with_capacity(0);
        one.push(Sample::of(&status(1.0)));
        one.push(Sample::of(&status(2.0)));
        assert_eq!(one.samples().map(|s| s.t).collect::<Vec<_>>(), [2.0]);
    }

    #[test]
    fn a_sample_takes_every_charted_figure_from_the_status() {
        let s = Sample::of(&status(2.0));
        assert_eq!(
            s,
            Sample {
                t: 2.0,
                rate_in: [20.0, 40.0],
                rate_out: [18.0, 38.0],
                sentiment: [3, 4],
                engagement: [5, 6],
                in_flight: 7,
                batch_size: 100,
                write_ms: 1.234_567,
                buffered: 11,
                spilled: 12,
                kills: 13,
                restarts: 26,
            }
        );
    }

    #[test]
    fn the_history_serialises_by_columns_oldest_first() {
        let mut h = History::with_capacity(2);
        for t in [1.0, 2.0, 3.0] {
            h.push(Sample::of(&status(t)));
        }
        let v: Value = serde_json::to_value(&h).unwrap();
        assert_eq!(
            v,
            json!({
                "t": [2.0, 3.0],
                "in1": [20.0, 30.0], "in2": [40.0, 60.0],
                "out1": [18.0, 27.0], "out2": [38.0, 57.0],
                "sentiment_workers": [3.0, 3.0], "sentiment_target": [4.0, 4.0],
                "engagement_workers": [5.0, 5.0], "engagement_target": [6.0, 6.0],
                "in_flight": [7.0, 7.0], "batch_size": [100.0, 100.0],
                "write_ms": [1.23, 1.23], "buffered": [11.0, 11.0], "spilled": [12.0, 12.0],
                "kills": [13.0, 13.0], "restarts": [26.0, 26.0],
            })
        );
    }

    #[test]
    fn live_json_is_the_stats_file_object_plus_the_history() {
        let mut live = Live::default();
        let empty: Value = serde_json::from_slice(&live.to_json()).unwrap();
        assert_eq!(empty["history"]["t"], json!([]));
        assert_eq!(empty["history_len"], 600);

        live.record(status(1.0));
        live.record(status(2.0));
        let v: Value = serde_json::from_slice(&live.to_json()).unwrap();
        let file: Value = serde_json::from_str(&status(2.0).json()).unwrap();
        for (key, value) in file.as_object().unwrap() {
            assert_eq!(&v[key], value, "stats file key {key}");
        }
        assert_eq!(v["history"]["t"], json!([1.0, 2.0]));
        assert_eq!(v["history_interval_s"], 1);
    }

    #[test]
    fn numbers_that_are_not_finite_serialise_as_zero() {
        let mut h = History::with_capacity(1);
        h.push(Sample {
            write_ms: f64::NAN,
            t: f64::INFINITY,
            ..Sample::default()
        });
        let v: Value = serde_json::to_value(&h).unwrap();
        assert_eq!(v["write_ms"], json!([0.0]));
        assert_eq!(v["t"], json!([0.0]));
    }
}
