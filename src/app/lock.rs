//! One instance per spool directory.
//!
//! Two processes appending to one `spool.bin` and moving one
//! `spool.bin.offset` would replay each other's records and truncate each
//! other's file. So `tweetflow run` takes an exclusive `flock` on the spool
//! directory itself before anything starts, and holds it until the process
//! ends (the kernel drops it then, also after a crash or SIGKILL: no stale
//! lock). Its pid goes to `tweetflow.pid` in the directory, so a second
//! instance can name the first when it refuses to start.
//!
//! `tweetflow check` only tries the lock (and releases it at once), to say
//! whether the directory is free.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rustix::fs::{flock, FlockOperation};

/// The file in the spool directory that names the instance holding the lock.
pub(super) const PID_FILE: &str = "tweetflow.pid";

/// The lock on a spool directory, held while this value lives.
#[derive(Debug)]
pub(super) struct SpoolLock {
    _dir: File,
}

/// Who holds the lock on `dir`, if anyone: `Some(pid text)` when the lock is
/// taken (the pid as the holder wrote it, or `unknown`).
pub(super) fn holder(dir: &Path) -> anyhow::Result<Option<String>> {
    match try_lock(dir)? {
        Ok(_released_on_drop) => Ok(None),
        Err(pid) => Ok(Some(pid)),
    }
}

/// Takes the lock on `dir` (created if missing) and writes this process's pid
/// next to it; fails, naming the directory and the other instance's pid, when
/// another process holds it.
pub(super) fn lock(dir: &Path) -> anyhow::Result<SpoolLock> {
    match try_lock(dir)? {
        Ok(held) => {
            let pid_path = dir.join(PID_FILE);
            let written = File::create(&pid_path).and_then(|mut f| {
                writeln!(f, "{}", std::process::id()).and_then(|()| f.sync_all())
            });
            if let Err(e) = written {
                // The lock holds without it; only a second instance's message loses the pid.
                log::warn!("cannot write {}: {e}", pid_path.display());
            }
            Ok(held)
        }
        Err(pid) => bail!(
            "the spool directory {} is in use by another tweetflow (pid {pid}): one instance per \
             spool directory. Stop that one, or give this one another --spool-dir",
            absolute(dir).display()
        ),
    }
}

/// The lock, or the pid of its holder.
fn try_lock(dir: &Path) -> anyhow::Result<Result<SpoolLock, String>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the spool directory {}", dir.display()))?;
    let handle = File::open(dir)
        .with_context(|| format!("opening the spool directory {}", dir.display()))?;
    match flock(&handle, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Ok(SpoolLock { _dir: handle })),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let pid = std::fs::read_to_string(dir.join(PID_FILE))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or_else(|| "unknown".into());
            Ok(Err(pid))
        }
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("locking the spool directory {}", dir.display())),
    }
}

/// `path` made absolute against the working directory, for messages.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        assert_eq!(holder(&spool).unwrap(), None, "free at first");
        let held = lock(&spool).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(
            std::fs::read_to_string(spool.join(PID_FILE))
                .unwrap()
                .trim(),
            pid
        );
        // flock is per open file description: a second open in this process conflicts too.
        let e = lock(&spool).unwrap_err().to_string();
        assert!(e.contains(&spool.display().to_string()), "{e}");
        assert!(e.contains(&format!("pid {pid}")), "{e}");
        assert_eq!(holder(&spool).unwrap(), Some(pid));
        drop(held);
        assert_eq!(holder(&spool).unwrap(), None, "released with the value");
        let _again = lock(&spool).unwrap();
    }
}
