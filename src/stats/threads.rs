//! The CPU time of this process's threads, by group: the I/O behind [`CpuTimes`].
//!
//! Two sources, because a thread's CPU time is gone from `/proc` once it ends:
//!
//! - **Threads that ended.** Every stage spawns its threads with
//!   [`spawn_thread`]. As such a thread ends (also by a panic), it adds its own
//!   CPU time (`CLOCK_THREAD_CPUTIME_ID`, through `rustix`) to a process-wide
//!   ledger under its group, then renames itself to a marker name, so that a
//!   sample that still lists it (the kernel drops a thread from `/proc` a
//!   little after `join` returns) does not count it twice.
//! - **Live threads.** `/proc/self/task/<tid>/comm` names the thread;
//!   `schedstat`'s first field is its CPU time in ns (`stat`'s `utime + stime`
//!   in clock ticks when `schedstat` is missing). A thread that ends between
//!   the directory listing and the read is skipped.
//!
//! [`cpu_times`] adds both. It reads two small files per thread (tens of ms at
//! 8,000 threads): for the exit summary, a bench window or a per-minute line,
//! not for every status tick. It is process-wide: two pipelines in one process
//! (tests) see each other's threads. A thread that ends during a sample may
//! have its last instant counted twice or not at all.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use super::cpu::{parse_schedstat, parse_stat_ticks, CpuTimes, ThreadGroup, EXITED_NAME};

/// CPU ns of the threads that ended, by group.
static ENDED: [AtomicU64; ThreadGroup::ALL.len()] =
    [const { AtomicU64::new(0) }; ThreadGroup::ALL.len()];

/// Spawns a thread named `name` (which says its [`ThreadGroup`]) whose CPU
/// time is counted when it ends; `stack_size` as `std::thread::Builder`'s.
pub(crate) fn spawn_thread<F, T>(
    name: impl Into<String>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut builder = std::thread::Builder::new().name(name.into());
    if let Some(size) = stack_size {
        builder = builder.stack_size(size);
    }
    builder.spawn(move || {
        let _counted = CountAtEnd;
        f()
    })
}

/// Adds the current thread's CPU time to the ledger when dropped.
struct CountAtEnd;

impl Drop for CountAtEnd {
    fn drop(&mut self) {
        let group = std::thread::current()
            .name()
            .and_then(ThreadGroup::of_thread)
            .unwrap_or(ThreadGroup::Other);
        if let Some(ns) = own_cpu_ns() {
            ENDED[group as usize].fetch_add(ns, Ordering::Relaxed);
        }
        // Best effort: a failed rename only risks counting this thread twice.
        if let Ok(name) = std::ffi::CString::new(EXITED_NAME) {
            let _ = rustix::thread::set_name(&name);
        }
    }
}

/// CPU time of the calling thread, ns.
fn own_cpu_ns() -> Option<u64> {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// CPU time per group of the threads that ended so far.
pub(crate) fn ended_cpu_times() -> CpuTimes {
    let mut t = CpuTimes::default();
    for g in ThreadGroup::ALL {
        t.add(g, ENDED[g as usize].load(Ordering::Relaxed));
    }
    t
}

/// CPU time per group of this process's threads so far: those that ended
/// (counted by [`spawn_thread`]) and those alive now (from `/proc`).
pub fn cpu_times() -> CpuTimes {
    let mut t = ended_cpu_times();
    for (group, ns) in live_threads() {
        t.add(group, ns);
    }
    t
}

/// (group, CPU ns) of every live thread that `/proc/self/task` lists; empty
/// when `/proc` cannot be read.
fn live_threads() -> Vec<(ThreadGroup, u64)> {
    let pid = std::process::id().to_string();
    let ticks_ns = clock_tick_ns();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // ended meanwhile
        };
        let group = if entry.file_name().to_str() == Some(pid.as_str()) {
            Some(ThreadGroup::Main)
        } else {
            ThreadGroup::of_thread(comm.trim_end_matches('\n'))
        };
        let Some(group) = group else {
            continue; // counted in the ledger already
        };
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| parse_schedstat(&s))
            .or_else(|| {
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                parse_stat_ticks(&stat)?.checked_mul(ticks_ns?)
            });
        if let Some(ns) = ns {
            out.push((group, ns));
        }
    }
    out
}

/// Length of a clock tick (`utime`/`stime` unit), ns.
fn clock_tick_ns() -> Option<u64> {
    let hz = rustix::param::clock_ticks_per_second();
    (hz > 0).then(|| 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_thread_is_counted_alive_and_after_it_ended() {
        const BURN_NS: u64 = 30_000_000;
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let h = spawn_thread("tap-cpu-test", None, move || {
            // Burn 30 ms of this thread's own CPU (not wall time).
            let mut x = 0u64;
            while own_cpu_ns().unwrap_or(u64::MAX) < BURN_NS {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
            tx.send(x).unwrap();
            let _ = go_rx.recv();
        })
        .unwrap();
        rx.recv().unwrap();
        let ended_before = ended_cpu_times().get(ThreadGroup::Tap);
        let live = cpu_times().get(ThreadGroup::Tap);
        assert!(
            live >= ended_before + BURN_NS,
            "live {live} ended {ended_before}"
        );
        go_tx.send(()).unwrap();
        h.join().unwrap();
        assert!(ended_cpu_times().get(ThreadGroup::Tap) >= ended_before + BURN_NS);
        let listed = live_threads_named("tap-cpu-test");
        assert_eq!(listed, 0, "an ended thread is not listed under its name");
    }

    fn live_threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
            })
            .count()
    }
}
