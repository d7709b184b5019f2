//! The bound on the worker threads, from the kernel's limits read at start.
//!
//! Each worker thread costs the process memory maps — its stack and guard
//! page, and the alternate signal stack and its guard page that the Rust
//! runtime sets up per thread: [`MAPS_PER_THREAD`] = 4 (measured: 7,971 threads held 31,959
//! maps) — and one entry of the user's process count. Past `vm.max_map_count`
//! a thread start fails inside the runtime and the process aborts; past
//! `RLIMIT_NPROC` `pthread_create` fails. So the pools never hold more than
//! [`ThreadLimits::worker_threads`] threads together:
//!
//! ```text
//! by_maps  = (vm.max_map_count − maps in use at start) / 2 / MAPS_PER_THREAD
//! by_nproc = (RLIMIT_NPROC − threads of this user at start − RESERVED_THREADS) / 2
//! bound    = min(by_maps, by_nproc, CoreConfig::max_threads)
//! ```
//!
//! Linux 6.16+ gives each process a private futex hash sized for its CPUs, not
//! its threads: 16 buckets on 2 CPUs. Every parked worker waits on a futex, so
//! with thousands of them each wake-up walks a chain of hundreds (in a 20 s
//! default run `futex_wake` was most of the dispatcher's samples).
//! [`widen_futex_hash`] sizes it for the bound at start.
//!
//! Half of what is free stays free: for the rest of the process (readers,
//! sink, allocator arenas) and for the other processes of the user. A limit
//! that cannot be read does not bound. Each pool gets half of the bound (at
//! most `max_workers`); the pool supervisor allocates that many slots and
//! never holds more threads than slots, so a pool restart or a kill never
//! adds a thread (see [`super::pool`]).

use std::fmt;

/// Memory maps of one worker thread (stack + guard, signal stack + guard).
pub(crate) const MAPS_PER_THREAD: u64 = 4;

/// Threads of the process outside the pools, kept free of the `RLIMIT_NPROC` share.
pub(crate) const RESERVED_THREADS: u64 = 64;

/// The kernel's limits on threads, as read at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadLimits {
    /// `vm.max_map_count`; `None` when unreadable.
    pub max_map_count: Option<u64>,
    /// Memory maps of this process at start.
    pub maps_in_use: u64,
    /// The soft `RLIMIT_NPROC`; `None` when unlimited or unreadable.
    pub nproc: Option<u64>,
    /// Threads of this process's user (real uid) at start.
    pub user_threads: u64,
}

impl ThreadLimits {
    /// Reads the limits from `/proc` (best effort: what cannot be read does not bound).
    pub(crate) fn read() -> ThreadLimits {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let maps_in_use = std::fs::read_to_string("/proc/self/maps")
            .map(|s| s.lines().count() as u64)
            .unwrap_or(0);
        let nproc = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| parse_nproc(&s));
        ThreadLimits {
            max_map_count,
            maps_in_use,
            nproc,
            user_threads: if nproc.is_some() { user_threads() } else { 0 },
        }
    }

    /// Worker threads both pools may hold together; `None` when no limit is known.
    pub(crate) fn worker_threads(&self) -> Option<u64> {
        let by_maps = self
            .max_map_count
            .map(|m| m.saturating_sub(self.maps_in_use) / 2 / MAPS_PER_THREAD);
        let by_nproc = self.nproc.map(|n| {
            n.saturating_sub(self.user_threads)
                .saturating_sub(RESERVED_THREADS)
                / 2
        });
        match (by_maps, by_nproc) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl fmt::Display for ThreadLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max_map_count {
            Some(m) => write!(f, "vm.max_map_count {m} ({} in use)", self.maps_in_use)?,
            None => f.write_str("vm.max_map_count unknown")?,
        }
        match self.nproc {
            Some(n) => write!(
                f,
                ", RLIMIT_NPROC {n} ({} threads of this user)",
                self.user_threads
            ),
            None => f.write_str(", RLIMIT_NPROC unlimited"),
        }
    }
}

/// The worker threads per pool: half of the bound, at most `max_workers`,
/// at least 1 (a pool that cannot hold one worker cannot run at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadBound {
    /// The limits it was computed from.
    pub limits: ThreadLimits,
    /// `CoreConfig::max_threads`, the configured bound on both pools together.
    pub configured: Option<usize>,
    /// `CoreConfig::max_workers`.
    pub max_workers: usize,
    /// Worker slots (= at most threads) per pool.
    pub per_pool: usize,
}

impl ThreadBound {
    /// The bound for `max_workers` per pool, at most `configured` threads in
    /// both pools, under `limits`.
    pub(crate) fn new(
        limits: ThreadLimits,
        max_workers: usize,
        configured: Option<usize>,
    ) -> ThreadBound {
        let by_limits = limits
            .worker_threads()
            .map(|t| usize::try_from(t).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX);
        let total = by_limits.min(configured.unwrap_or(usize::MAX));
        ThreadBound {
            limits,
            configured,
            max_workers,
            per_pool: (total / 2).min(max_workers).max(1),
        }
    }

    /// True when the limits (not `max_workers`) set the size.
    pub(crate) fn limited(&self) -> bool {
        self.per_pool < self.max_workers
    }
}

impl fmt::Display for ThreadBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at most {} worker threads per pool ({} in both; --max-workers {}",
            self.per_pool,
            2 * self.per_pool,
            self.max_workers
        )?;
        if let Some(c) = self.configured {
            write!(f, ", configured bound {c}")?;
        }
        write!(f, "; {})", self.limits)
    }
}

/// `PR_FUTEX_HASH` and its `SET_SLOTS` / `GET_SLOTS` operations (linux/prctl.h).
const PR_FUTEX_HASH: libc::c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;

/// Most futex hash buckets asked for (64 bytes each: 1 MiB).
const MAX_FUTEX_SLOTS: usize = 16_384;

/// The futex hash slots for `threads` threads: a power of two, about two
/// per thread, 16..=16,384.
pub(crate) fn futex_slots(threads: usize) -> usize {
    threads
        .saturating_mul(2)
        .clamp(16, MAX_FUTEX_SLOTS)
        .next_power_of_two()
}

/// Gives this process a private futex hash of [`futex_slots`]`(threads)`
/// buckets, unless it has that many already; returns the buckets it has then.
/// An error on a kernel without `PR_FUTEX_HASH` (before 6.16: `EINVAL`), where
/// the global hash serves every futex anyway.
pub(crate) fn widen_futex_hash(threads: usize) -> std::io::Result<usize> {
    let want = futex_slots(threads);
    let have = futex_hash_slots()?;
    if have >= want {
        return Ok(have);
    }
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe {
        libc::prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_SET_SLOTS,
            want as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    futex_hash_slots()
}

/// The buckets of this process's private futex hash (0: it uses the global one).
pub(crate) fn futex_hash_slots() -> std::io::Result<usize> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe {
        libc::prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_GET_SLOTS,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    usize::try_from(r).map_err(|_| std::io::Error::last_os_error())
}

/// The soft "Max processes" of a `/proc/<pid>/limits` text; `None` when
/// unlimited or absent.
pub(crate) fn parse_nproc(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max processes"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `Uid:` (real) and `Threads:` of a `/proc/<pid>/status` text.
pub(crate) fn parse_status(status: &str) -> Option<(u32, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
    };
    let uid = field("Uid:")?.parse().ok()?;
    let threads = field("Threads:")?.parse().ok()?;
    Some((uid, threads))
}

/// Threads of every process of this process's real uid (0 when `/proc` is unreadable).
fn user_threads() -> u64 {
    let Some((uid, own)) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status(&s))
    else {
        return 0;
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return own;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter_map(|s| parse_status(&s))
        .filter(|&(u, _)| u == uid)
        .map(|(_, t)| t)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max stack size            8388608              unlimited            bytes     \n\
        Max processes             96362                96362                processes \n\
        Max open files            20000                20000                files     \n";

    #[test]
    fn reads_the_soft_nproc_limit() {
        assert_eq!(parse_nproc(LIMITS), Some(96362));
        let unlimited = LIMITS.replace("96362                96362", "unlimited unlimited");
        assert_eq!(parse_nproc(&unlimited), None);
        assert_eq!(parse_nproc("Limit Soft\n"), None);
    }

    #[test]
    fn reads_uid_and_threads_of_a_status() {
        let s = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t5\nThreads:\t17\n";
        assert_eq!(parse_status(s), Some((1000, 17)));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn the_bound_keeps_half_of_what_is_free() {
        let l = ThreadLimits {
            max_map_count: Some(65_530),
            maps_in_use: 330,
            nproc: None,
            user_threads: 0,
        };
        // (65,530 − 330) / 2 / 4 = 8,150 threads, 4,075 per pool: the 7,971
        // threads of the aborted run would have used 31,959 of 65,530 maps.
        assert_eq!(l.worker_threads(), Some(8_150));
        let b = ThreadBound::new(l, 4096, None);
        assert_eq!(b.per_pool, 4_075);
        assert!(b.limited());
        // 300 processes, 100 already used by the user: (300 − 100 − 64) / 2 = 68.
        let n = ThreadLimits {
            nproc: Some(300),
            user_threads: 100,
            ..l
        };
        assert_eq!(n.worker_threads(), Some(68));
        assert_eq!(ThreadBound::new(n, 4096, None).per_pool, 34);
        // The configured bound and max_workers bound too; never below 1 per pool.
        assert_eq!(ThreadBound::new(l, 4096, Some(40)).per_pool, 20);
        assert_eq!(ThreadBound::new(l, 16, None).per_pool, 16);
        assert!(!ThreadBound::new(l, 16, None).limited());
        let none_free = ThreadLimits {
            nproc: Some(10),
            user_threads: 50,
            ..l
        };
        assert_eq!(ThreadBound::new(none_free, 4096, None).per_pool, 1);
        let unknown = ThreadLimits {
            max_map_count: None,
            maps_in_use: 0,
            nproc: None,
            user_threads: 0,
        };
        assert_eq!(unknown.worker_threads(), None);
        assert_eq!(ThreadBound::new(unknown, 4096, None).per_pool, 4096);
    }

    #[test]
    fn futex_slots_are_a_power_of_two_per_two_threads() {
        assert_eq!(futex_slots(0), 16);
        assert_eq!(futex_slots(100), 256);
        assert_eq!(futex_slots(8_150), 16_384);
        assert_eq!(futex_slots(usize::MAX), 16_384);
    }

    #[test]
    fn the_futex_hash_is_widened_where_the_kernel_has_one() {
        match futex_hash_slots() {
            Ok(_) => {
                // A kernel with private futex hashes (6.16+): it takes the size
                // (other tests in this process may have widened it further).
                let n = widen_futex_hash(1000).unwrap_or(0);
                assert!(n >= 2048 && n.is_power_of_two(), "{n}");
                assert_eq!(futex_hash_slots().ok(), Some(n));
                // Never made smaller.
                assert!(widen_futex_hash(10).unwrap_or(0) >= n);
            }
            Err(e) => {
                // An older kernel: the prctl is unknown, and so is widening.
                assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
                assert!(widen_futex_hash(1000).is_err());
            }
        }
    }

    #[test]
    fn this_process_limits_are_read() {
        let l = ThreadLimits::read();
        // Linux always has the sysctl; this process holds some maps and is
        // counted among its user's threads when the limit is finite.
        assert!(l.max_map_count.is_some_and(|m| m > 0), "{l}");
        assert!(l.maps_in_use > 0, "{l}");
        if l.nproc.is_some() {
            assert!(l.user_threads >= 1, "{l}");
        }
        let text = ThreadBound::new(l, 4096, Some(100)).to_string();
        assert!(
            text.contains("at most 50 worker threads per pool"),
            "{text}"
        );
        assert!(text.contains("vm.max_map_count"), "{text}");
    }
}
