//! The append-only spill file.
//!
//! Format: `spool.jsonl` ([`SPOOL_FILE`]) under the spool directory, one [`Record`] per line as
//! compact JSON (serde), each line ended by `\n` (JSON escapes newlines inside
//! strings, so a line never contains a raw one). Next to it, `spool.offset` holds
//! the byte offset up to which the records were committed to the database (decimal
//! text); at start, replay begins there. A stale or unreadable offset only means
//! records are replayed again, which the database's "higher seq wins" upsert makes
//! harmless.
//!
//! Durability: every append is one `write` of whole lines into the file (so a
//! killed process loses nothing that was appended); `fsync` runs once the oldest
//! unsynced append is [`Spool::sync_interval`] old — on the next append or on the
//! owner's timer ([`Spool::sync_if_due`], the sink's ingest thread), so an idle
//! tail is synced too — and always when the writer evacuates memory to disk and at
//! shutdown. The directory is fsync'd after the file is created (and after the
//! target tag is renamed into place), through the `sync_dir` seam that
//! [`Spool::open`] and [`write_tag`] take ([`fsync_dir`] in production; the
//! testkit's `SinkFault::sync_dir` counts or fails it); a failure is an error of
//! the open, never ignored. A power loss can
//! thus lose at most the last `sync_interval` of appends; a process kill cannot. A write that fails (disk full) is undone with
//! `set_len` so no partial line stays behind; a torn last line found at open (a
//! crash in the middle of a write) is cut off, counted and saved to `torn` under
//! the spool directory.
//!
//! Once every line was committed the file is truncated to 0 and the offset file
//! removed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::Record;

/// What [`Spool::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::sink) struct OpenReport {
    /// Records waiting to be replayed.
    pub pending: u64,
    /// Bytes of a torn last line that were cut off (0 if none).
    pub torn_bytes: u64,
    /// The highest `seq` of the records waiting (`None` when none is waiting).
    pub max_seq: Option<u64>,
}

/// The spill file and its read/commit positions.
#[derive(Debug)]
pub(in crate::sink) struct Spool {
    dir: PathBuf,
    path: PathBuf,
    offset_path: PathBuf,
    file: File,
    /// End of the file (all whole lines).
    write_len: u64,
    /// Next byte to read.
    read_off: u64,
    /// Everything before this is committed.
    committed_off: u64,
    /// Lines in `[read_off, write_len)`.
    unread: u64,
    /// Lines in `[committed_off, read_off)`.
    inflight: u64,
    /// When the oldest append not yet fsync'd was made (`None`: all synced).
    dirty_since: Option<Instant>,
    /// Bytes appended since the last fsync.
    unsynced: u64,
    /// Longest time appended data may stay without fsync.
    pub sync_interval: Duration,
}

fn count_lines(file: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(from))?;
    let mut r = BufReader::with_capacity(1 << 20, f.take(to - from));
    let mut n = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
    Ok(n)
}

/// The prefix serde writes for a [`Record`]: `tweet` is its first field and `seq`
/// the tweet's first.
const SEQ_PREFIX: &[u8] = br#"{"tweet":{"seq":"#;

/// The `seq` of a spool line, read from its prefix without parsing the rest
/// (`None` for a line that does not start so; it is caught when replayed).
fn line_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(SEQ_PREFIX)?;
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(rest.get(..n)?).ok()?.parse().ok()
}

/// The highest `seq` of the lines in `[from, to)`.
fn max_seq(file: &File, from: u64, to: u64) -> io::Result<Option<u64>> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(from))?;
    let mut r = BufReader::with_capacity(1 << 20, f.take(to - from));
    let mut line = Vec::new();
    let mut max = None;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(max);
        }
        if let Some(s) = line_seq(&line) {
            max = max.max(Some(s));
        }
    }
}

/// The spool's file name inside the spool directory.
pub(in crate::sink) const SPOOL_FILE: &str = "spool.jsonl";

/// The spool file of the spool directory `dir`.
pub(in crate::sink) fn spool_file(dir: &Path) -> PathBuf {
    dir.join(SPOOL_FILE)
}

/// fsyncs a directory, so that the names just created in it survive a power loss.
pub(in crate::sink) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (creating) the spool under `dir`, cuts a torn last line, and positions the
    /// reader at the committed offset. When it creates the file, it fsyncs `dir`
    /// with `sync_dir` ([`fsync_dir`]) and fails if that fails.
    pub(in crate::sink) fn open(
        dir: &Path,
        sync_dir: &dyn Fn(&Path) -> io::Result<()>,
    ) -> io::Result<(Spool, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let path = spool_file(dir);
        let new = !path.exists();
        let offset_path = dir.join("spool.offset");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if new {
            // The file's name must survive a power loss too: fsync the directory.
            sync_dir(dir)?;
        }
        let mut len = file.metadata()?.len();
        let mut report = OpenReport::default();
        if len > 0 {
            // Find the last '\n'; anything after it is a torn line.
            let mut f = file.try_clone()?;
            let mut pos = len;
            let mut last_nl = None;
            let mut buf = vec![0u8; 64 * 1024];
            while pos > 0 && last_nl.is_none() {
                let start = pos.saturating_sub(buf.len() as u64);
                let n = (pos - start) as usize;
                f.seek(SeekFrom::Start(start))?;
                f.read_exact(&mut buf[..n])?;
                if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
                    last_nl = Some(start + i as u64);
                }
                pos = start;
            }
            let keep = last_nl.map_or(0, |i| i + 1);
            if keep < len {
                let mut torn = Vec::new();
                f.seek(SeekFrom::Start(keep))?;
                f.take(len - keep).read_to_end(&mut torn)?;
                let mut t = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("torn"))?;
                t.write_all(&torn)?;
                t.write_all(b"\n")?;
                file.set_len(keep)?;
                file.sync_all()?;
                report.torn_bytes = len - keep;
                log::warn!(
                    "sink spool: cut a torn last line of {} bytes from {} (saved to {})",
                    len - keep,
                    path.display(),
                    dir.join("torn").display()
                );
                len = keep;
            }
        }
        let committed = read_offset(&offset_path, &file, len);
        let unread = count_lines(&file, committed, len)?;
        report.pending = unread;
        if unread > 0 {
            report.max_seq = max_seq(&file, committed, len)?;
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            path,
            offset_path,
            file,
            write_len: len,
            read_off: committed,
            committed_off: committed,
            unread,
            inflight: 0,
            dirty_since: None,
            unsynced: 0,
            sync_interval: Duration::from_millis(200),
        };
        Ok((spool, report))
    }

    /// The spool directory.
    pub(in crate::sink) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spill file's path.
    pub(in crate::sink) fn path(&self) -> &Path {
        &self.path
    }

    /// True while the file holds lines not yet committed (new records must then be
    /// appended behind them to keep the order).
    pub(in crate::sink) fn is_active(&self) -> bool {
        self.write_len > 0
    }

    /// Bytes appended and not committed yet.
    pub(in crate::sink) fn pending_bytes(&self) -> u64 {
        self.write_len.saturating_sub(self.committed_off)
    }

    /// Lines not yet handed out.
    pub(in crate::sink) fn unread(&self) -> u64 {
        self.unread
    }

    /// Lines handed out and not yet committed.
    pub(in crate::sink) fn inflight(&self) -> u64 {
        self.inflight
    }

    /// Appends records as lines (one write). On error nothing is appended.
    pub(in crate::sink) fn append(&mut self, records: &[&Record]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 2300);
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.append_bytes(&buf, records.len() as u64)
    }

    fn append_bytes(&mut self, buf: &[u8], lines: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let res = (&self.file)
            .seek(SeekFrom::Start(self.write_len))
            .and_then(|_| (&self.file).write_all(buf));
        if let Err(e) = res {
            // Undo a partial write so no torn line stays behind.
            let _ = self.file.set_len(self.write_len);
            return Err(e);
        }
        self.write_len += buf.len() as u64;
        self.unread += lines;
        self.unsynced += buf.len() as u64;
        self.dirty_since.get_or_insert_with(Instant::now);
        self.sync_if_due().map(|_| ())
    }

    /// fsyncs the file if anything was appended since the last sync.
    pub(in crate::sink) fn sync(&mut self) -> io::Result<()> {
        if self.dirty_since.is_some() {
            self.file.sync_data()?;
            self.dirty_since = None;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// fsyncs if the oldest unsynced append is `sync_interval` old; returns how
    /// long until the next fsync is due (`None`: nothing is unsynced). The owner
    /// calls it on a timer, so an idle tail is synced too, not only on a later
    /// append.
    pub(in crate::sink) fn sync_if_due(&mut self) -> io::Result<Option<Duration>> {
        let Some(since) = self.dirty_since else {
            return Ok(None);
        };
        let age = since.elapsed();
        if age >= self.sync_interval {
            self.sync()?;
            return Ok(None);
        }
        Ok(Some(self.sync_interval - age))
    }

    /// Bytes appended and not yet fsync'd.
    pub(in crate::sink) fn unsynced(&self) -> u64 {
        self.unsynced
    }

    /// Reads up to `max` lines. Returns the raw lines and the offset after the last.
    pub(in crate::sink) fn read(
        &mut self,
        max: usize,
        max_bytes: u64,
    ) -> io::Result<(Vec<Vec<u8>>, u64)> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        if self.unread == 0 || max == 0 {
            return Ok((out, self.read_off));
        }
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(self.read_off))?;
        let mut r = BufReader::with_capacity(1 << 20, f.take(self.write_len - self.read_off));
        let mut off = self.read_off;
        // At least one line, however long; then up to `max` lines and `max_bytes`.
        while out.len() < max && (out.is_empty() || bytes < max_bytes) {
            let mut line = Vec::with_capacity(2400);
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            off += n as u64;
            bytes += n as u64;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            out.push(line);
        }
        let n = out.len() as u64;
        self.read_off = off;
        self.unread = self.unread.saturating_sub(n);
        self.inflight += n;
        Ok((out, off))
    }

    /// Forgets what was read but not committed: it will be read again.
    pub(in crate::sink) fn rewind(&mut self) {
        self.read_off = self.committed_off;
        self.unread += self.inflight;
        self.inflight = 0;
    }

    /// Marks everything before `offset` (`lines` lines since the last commit) as in the
    /// database. When everything is committed the file is truncated. Returns whether
    /// it was.
    pub(in crate::sink) fn commit(&mut self, offset: u64, lines: u64) -> io::Result<bool> {
        if offset <= self.committed_off {
            return Ok(false);
        }
        self.committed_off = offset;
        self.inflight = self.inflight.saturating_sub(lines);
        if self.committed_off >= self.write_len && self.unread == 0 {
            // Drained: truncate first, then forget the offset (a crash in between
            // leaves an offset beyond the end, which open() treats as 0 of 0).
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.write_len = 0;
            self.read_off = 0;
            self.committed_off = 0;
            self.inflight = 0;
            self.dirty_since = None;
            self.unsynced = 0;
            match std::fs::remove_file(&self.offset_path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            return Ok(true);
        }
        std::fs::write(&self.offset_path, offset.to_string())?;
        Ok(false)
    }
}

/// Name of the tag file: the target the spool's records are for.
const TAG_FILE: &str = "spool.target";

/// The target recorded in the spool directory (`None` if there is none).
pub(in crate::sink) fn read_tag(dir: &Path) -> Option<String> {
    let t = std::fs::read_to_string(dir.join(TAG_FILE)).ok()?;
    Some(t.trim_end().to_string())
}

/// Records `target` as the spool's target (written aside, renamed, fsync'd; the
/// directory with `sync_dir`).
pub(in crate::sink) fn write_tag(
    dir: &Path,
    target: &str,
    sync_dir: &dyn Fn(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join("spool.target.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{target}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(TAG_FILE))?;
    sync_dir(dir)
}

/// The committed offset from the offset file, validated: it must lie within the
/// file and right after a line end; otherwise 0 (replay all).
fn read_offset(path: &Path, file: &File, len: u64) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Ok(off) = text.trim().parse::<u64>() else {
        log::warn!(
            "sink spool: unreadable offset file {}; replaying all",
            path.display()
        );
        return 0;
    };
    if off == 0 || off > len {
        return 0;
    }
    let mut b = [0u8; 1];
    let ok = file
        .try_clone()
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(off - 1))?;
            f.read_exact(&mut b)
        })
        .is_ok();
    if ok && b[0] == b'\n' {
        off
    } else {
        log::warn!("sink spool: offset {off} is not at a line end; replaying all");
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Tweet, User};
    use std::sync::Arc;

    fn rec(seq: u64) -> Record {
        Record {
            tweet: Arc::new(Tweet {
                received_unix_us: 1,
                hashtags: vec!["a".into()],
                raw: "{\"id\":1}".into(),
                ..Tweet::minimal(seq, "line\nbreak \"quoted\"", User::minimal(9, 1))
            }),
            sentiment: Some(0.5),
            engagement: None,
        }
    }

    fn parse(lines: &[Vec<u8>]) -> Vec<u64> {
        lines
            .iter()
            .map(|l| serde_json::from_slice::<Record>(l).unwrap().tweet.seq)
            .collect()
    }

    #[test]
    fn append_read_commit_truncates_when_drained() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep, OpenReport::default());
        assert_eq!(rep.max_seq, None);
        let recs: Vec<Record> = (1..=5).map(rec).collect();
        s.append(&recs.iter().collect::<Vec<_>>()).unwrap();
        assert!(s.is_active());
        let (lines, off) = s.read(3, u64::MAX).unwrap();
        assert_eq!(parse(&lines), vec![1, 2, 3]);
        assert_eq!(s.read(0, u64::MAX).unwrap().0.len(), 0);
        assert!(!s.commit(off, 3).unwrap());
        let (lines, off) = s.read(10, u64::MAX).unwrap();
        assert_eq!(parse(&lines), vec![4, 5]);
        assert!(s.commit(off, 2).unwrap());
        assert!(!s.is_active());
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 0);
    }

    #[test]
    fn reopen_resumes_at_committed_offset_and_rewind_rereads() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            let recs: Vec<Record> = (1..=6).map(rec).collect();
            s.append(&recs.iter().collect::<Vec<_>>()).unwrap();
            let (_, off) = s.read(2, u64::MAX).unwrap();
            s.commit(off, 2).unwrap();
            let (lines, _) = s.read(2, u64::MAX).unwrap();
            assert_eq!(parse(&lines), vec![3, 4]);
            s.rewind();
            let (lines, _) = s.read(1, u64::MAX).unwrap();
            assert_eq!(parse(&lines), vec![3]);
            // Not committed: dropped as if the process died.
        }
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 4);
        // The highest seq waiting, for the next run's sequence to start above it.
        assert_eq!(rep.max_seq, Some(6));
        assert_eq!(
            line_seq(br#"{"tweet":{"seq":18446744073709551615,"#),
            Some(u64::MAX)
        );
        assert_eq!(line_seq(br#"{"tweet":{"seq":"#), None);
        assert_eq!(line_seq("{\"tweet\":{\"seq\":é1".as_bytes()), None);
        assert_eq!(line_seq(br#"{"tweet":{"seq":99999999999999999999"#), None);
        let (lines, _) = s.read(100, u64::MAX).unwrap();
        assert_eq!(parse(&lines), vec![3, 4, 5, 6]);
    }

    #[test]
    fn torn_last_line_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            let recs: Vec<Record> = (1..=2).map(rec).collect();
            s.append(&recs.iter().collect::<Vec<_>>()).unwrap();
        }
        let path = spool_file(dir.path());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"tweet\":{\"seq\":3,").unwrap();
        drop(f);
        // A bogus offset (not at a line end) is ignored too.
        std::fs::write(dir.path().join("spool.offset"), "7").unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 2);
        assert_eq!(rep.torn_bytes, 18);
        let (lines, _) = s.read(10, u64::MAX).unwrap();
        assert_eq!(parse(&lines), vec![1, 2]);
        let torn = std::fs::read_to_string(dir.path().join("torn")).unwrap();
        assert!(torn.starts_with("{\"tweet\":{\"seq\":3,"));
    }
}
