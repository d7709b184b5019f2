//! The CPU budget per stage: CPU time per thread group, and per tweet.
//!
//! Every thread of the pipeline is named after its stage (`source-1`,
//! `dispatcher`, `sentiment-17`, `sink-writer`, …); the part of the name
//! before its first `-` says the group ([`ThreadGroup::of_thread`], the one
//! table). [`CpuTimes`] holds nanoseconds of CPU per group; the difference of
//! two samples over the tweets received in between is the [`CpuBudget`]: the
//! CPU µs each group spent per tweet, as the exit summary and the benches show it.
//!
//! Pure: the samples come from [`cpu_times`](super::cpu_times) (the I/O is in
//! `threads.rs`); the parsers of the kernel's per-thread files are here, so
//! they are tested on any bytes.

use std::fmt;

use serde::Serialize;

/// A stage's threads, as their names identify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadGroup {
    /// The stream readers (`source-1`, `source-2`); with `--jetstream` the fetchers
    /// (`fetch-N`), the NATS client (`nats-runtime`, `nats-relay*`), `acker` and
    /// `hashtags-share`.
    Readers,
    /// The least-connected dispatcher.
    Dispatcher,
    /// Every sentiment and engagement worker.
    Workers,
    /// The pool supervisor and autoscaler.
    Supervisor,
    /// The aggregator (`aggregate`).
    Aggregator,
    /// The hashtag tap.
    Tap,
    /// The sink's threads (`sink-writer`, `sink-ingest`, `sink-health`).
    Sink,
    /// The built-in emulator's threads (`emulator-accept`, `emulator-conn-N`).
    Emulator,
    /// The status ticker.
    Status,
    /// The operations endpoint's HTTP threads (`ops-http-N`).
    Ops,
    /// The process's main thread.
    Main,
    /// Any thread whose name names no group.
    Other,
}

/// Name prefixes (the part before the first `-`) and their groups.
const PREFIXES: &[(&str, ThreadGroup)] = &[
    ("source", ThreadGroup::Readers),
    // With --jetstream the readers are the fetchers and the NATS client's threads
    // (runtime, relays), the acker and the hashtag sharer.
    ("fetch", ThreadGroup::Readers),
    ("nats", ThreadGroup::Readers),
    ("acker", ThreadGroup::Readers),
    ("hashtags", ThreadGroup::Readers),
    ("dispatcher", ThreadGroup::Dispatcher),
    ("sentiment", ThreadGroup::Workers),
    ("engagement", ThreadGroup::Workers),
    ("supervisor", ThreadGroup::Supervisor),
    ("aggregate", ThreadGroup::Aggregator),
    ("tap", ThreadGroup::Tap),
    ("sink", ThreadGroup::Sink),
    ("emulator", ThreadGroup::Emulator),
    ("status", ThreadGroup::Status),
    ("ops", ThreadGroup::Ops),
    ("main", ThreadGroup::Main),
];

/// The name a counted thread takes once its CPU is in the ledger, so a sample
/// that still lists it does not count it twice.
pub(super) const EXITED_NAME: &str = "tf~exited";

impl ThreadGroup {
    /// Every group, in display order.
    pub const ALL: [ThreadGroup; 12] = [
        ThreadGroup::Readers,
        ThreadGroup::Dispatcher,
        ThreadGroup::Workers,
        ThreadGroup::Supervisor,
        ThreadGroup::Aggregator,
        ThreadGroup::Tap,
        ThreadGroup::Sink,
        ThreadGroup::Emulator,
        ThreadGroup::Status,
        ThreadGroup::Ops,
        ThreadGroup::Main,
        ThreadGroup::Other,
    ];

    /// The group's name as the summary prints it.
    pub fn name(self) -> &'static str {
        match self {
            ThreadGroup::Readers => "readers",
            ThreadGroup::Dispatcher => "dispatcher",
            ThreadGroup::Workers => "workers",
            ThreadGroup::Supervisor => "supervisor",
            ThreadGroup::Aggregator => "aggregator",
            ThreadGroup::Tap => "tap",
            ThreadGroup::Sink => "sink",
            ThreadGroup::Emulator => "emulator",
            ThreadGroup::Status => "status",
            ThreadGroup::Ops => "ops",
            ThreadGroup::Main => "main",
            ThreadGroup::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The group of a thread named `name` (also a kernel `comm`, cut to 15
    /// bytes); `None` for a thread already counted at its exit.
    pub fn of_thread(name: &str) -> Option<ThreadGroup> {
        if name == EXITED_NAME {
            return None;
        }
        let prefix = name.split('-').next().unwrap_or(name);
        Some(
            PREFIXES
                .iter()
                .find(|(p, _)| *p == prefix)
                .map_or(ThreadGroup::Other, |(_, g)| *g),
        )
    }
}

/// CPU time per thread group, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    ns: [u64; ThreadGroup::ALL.len()],
}

impl CpuTimes {
    /// The CPU time of `group`, ns.
    pub fn get(&self, group: ThreadGroup) -> u64 {
        self.ns[group.index()]
    }

    /// Adds `ns` to `group`.
    pub fn add(&mut self, group: ThreadGroup, ns: u64) {
        let v = &mut self.ns[group.index()];
        *v = v.saturating_add(ns);
    }

    /// All groups together, ns.
    pub fn total(&self) -> u64 {
        self.ns.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// What was spent between `earlier` and this sample (never negative: a
    /// group that shrank, e.g. a thread lost between two samples, is 0).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        let mut d = CpuTimes::default();
        for (i, v) in d.ns.iter_mut().enumerate() {
            *v = self.ns[i].saturating_sub(earlier.ns[i]);
        }
        d
    }

    /// These times as a budget over `tweets` tweets and `wall_seconds` of wall time.
    pub fn budget(&self, tweets: u64, wall_seconds: f64) -> CpuBudget {
        let groups = ThreadGroup::ALL
            .iter()
            .filter(|g| self.get(**g) > 0)
            .map(|&group| {
                let secs = self.get(group) as f64 / 1e9;
                GroupCpu {
                    group,
                    cpu_seconds: secs,
                    us_per_tweet: (tweets > 0).then(|| secs * 1e6 / tweets as f64),
                    cores: if wall_seconds > 0.0 {
                        secs / wall_seconds
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        CpuBudget {
            tweets,
            wall_seconds,
            cpu_seconds: self.total() as f64 / 1e9,
            groups,
        }
    }
}

/// CPU of one thread group over a run or a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCpu {
    /// The group.
    pub group: ThreadGroup,
    /// Its CPU time, seconds.
    pub cpu_seconds: f64,
    /// CPU µs per tweet received; `None` when no tweet came.
    pub us_per_tweet: Option<f64>,
    /// Its average use of the machine, in cores (CPU seconds per wall second).
    pub cores: f64,
}

/// CPU per thread group over `tweets` tweets: what each stage costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuBudget {
    /// Tweets received in the window.
    pub tweets: u64,
    /// The window, seconds of wall time.
    pub wall_seconds: f64,
    /// CPU of every group together, seconds.
    pub cpu_seconds: f64,
    /// The groups that used any CPU, in [`ThreadGroup::ALL`] order.
    pub groups: Vec<GroupCpu>,
}

impl CpuBudget {
    /// The entry of `group`, if it used any CPU.
    pub fn group(&self, group: ThreadGroup) -> Option<&GroupCpu> {
        self.groups.iter().find(|g| g.group == group)
    }
}

impl fmt::Display for CpuBudget {
    /// `µs/tweet: readers 10.2, dispatcher 8.1, …; total 61.0 µs/tweet, 0.61 cores`
    /// (CPU seconds when no tweet came).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_tweet = self.tweets > 0;
        f.write_str(if per_tweet {
            "µs/tweet:"
        } else {
            "CPU seconds:"
        })?;
        for (i, g) in self.groups.iter().enumerate() {
            let v = g.us_per_tweet.unwrap_or(g.cpu_seconds);
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {v:.1}", g.group.name())?;
        }
        let cores = if self.wall_seconds > 0.0 {
            self.cpu_seconds / self.wall_seconds
        } else {
            0.0
        };
        if per_tweet {
            let total = self.cpu_seconds * 1e6 / self.tweets as f64;
            write!(f, "; total {total:.1} µs/tweet, {cores:.2} cores")
        } else {
            write!(f, "; total {:.1} s, {cores:.2} cores", self.cpu_seconds)
        }
    }
}

/// CPU time in ns from a `/proc/…/task/<tid>/schedstat` line: its first field,
/// the time spent on a CPU (`sum_exec_runtime`).
pub(super) fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// `utime + stime` in clock ticks from a `/proc/…/task/<tid>/stat` line. The
/// fields are counted after the last `)`, since the thread's name (in
/// parentheses) may hold spaces and parentheses itself.
pub(super) fn parse_stat_ticks(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    // After ')': state is field 3; utime and stime are fields 14 and 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn thread_names_identify_their_group() {
        use ThreadGroup::*;
        for (name, group) in [
            ("source-1", Readers),
            ("source-2", Readers),
            ("dispatcher", Dispatcher),
            ("sentiment-0", Workers),
            ("engagement-4095", Workers),
            ("supervisor", Supervisor),
            ("aggregate", Aggregator),
            ("tap", Tap),
            ("sink-writer", Sink),
            ("sink-health", Sink),
            ("emulator-accept", Emulator),
            ("emulator-conn-1", Emulator), // a comm cut to 15 bytes
            ("status", Status),
            ("ops-http-0", Ops),
            ("main", Main),
            ("tweetflow", Other),
            ("", Other),
            ("sourcery", Other),
            ("tapx-1", Other),
        ] {
            assert_eq!(ThreadGroup::of_thread(name), Some(group), "{name:?}");
        }
        assert_eq!(ThreadGroup::of_thread(EXITED_NAME), None);
        assert!(EXITED_NAME.len() <= 15, "must survive the kernel's cut");
    }

    #[test]
    fn the_budget_divides_each_group_by_the_tweets() {
        let mut before = CpuTimes::default();
        before.add(ThreadGroup::Dispatcher, 1_000_000_000);
        let mut after = before;
        after.add(ThreadGroup::Dispatcher, 2_000_000_000); // +2 s
        after.add(ThreadGroup::Workers, 500_000_000); // +0.5 s
        let b = after.since(&before).budget(100_000, 10.0);
        assert_eq!(b.groups.len(), 2, "groups without CPU are left out");
        let d = b.group(ThreadGroup::Dispatcher).unwrap();
        assert_eq!(d.us_per_tweet, Some(20.0)); // 2 s / 100,000
        assert!((d.cores - 0.2).abs() < 1e-12);
        assert_eq!(
            b.group(ThreadGroup::Workers).unwrap().us_per_tweet,
            Some(5.0)
        );
        assert!((b.cpu_seconds - 2.5).abs() < 1e-12);
        assert_eq!(
            b.to_string(),
            "µs/tweet: dispatcher 20.0, workers 5.0; total 25.0 µs/tweet, 0.25 cores"
        );
        // A sample older than the baseline (a lost thread) never goes negative.
        assert_eq!(before.since(&after).total(), 0);
        assert_eq!(
            CpuTimes::default().budget(0, 0.0).to_string(),
            "CPU seconds:; total 0.0 s, 0.00 cores"
        );
    }

    const STAT: &str = "4242 (sink-writer (x)) S 1 4242 4242 0 -1 4194368 230 0 0 0 \
                        170 35 0 0 20 0 12 0 1830 1000000 500 18446744073709551615";

    #[test]
    fn parses_the_kernels_lines() {
        assert_eq!(
            parse_schedstat("260403565 150434860 83\n"),
            Some(260_403_565)
        );
        assert_eq!(parse_stat_ticks(STAT), Some(205));
        for bad in ["", "\n", "x 1 2", "-5 1 2"] {
            assert_eq!(parse_schedstat(bad), None, "{bad:?}");
        }
        for bad in [
            "",
            "4242 (x",
            "4242 (x) S 1 2",
            "1 (x) S 1 2 3 4 5 6 7 8 9 a b",
        ] {
            assert_eq!(parse_stat_ticks(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parsers_never_panic_on_any_bytes() {
        let mut rng = SmallRng::seed_from_u64(10);
        let alphabet = b"0123456789 ()-\n\xffSx";
        for i in 0..20_000 {
            let text: String = if i % 2 == 0 {
                // Cuts of a real line.
                let cut = rng.gen_range(0..=STAT.len());
                STAT.get(..cut).unwrap_or("").to_string()
            } else {
                let bytes: Vec<u8> = (0..rng.gen_range(0..64))
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let _ = parse_schedstat(&text);
            let _ = parse_stat_ticks(&text);
        }
    }
}
