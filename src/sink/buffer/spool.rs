//! The append-only spill file.
//!
//! Format: `spool.bin` under the spool directory: the 16-byte file header (magic and
//! format version), then one binary frame per record, as `frame` describes: the
//! record as received (raw event bytes untouched, seq, receipt time, scores and the
//! fields the COPY path stores), length-prefixed and checksummed. Next to it,
//! `spool.bin.offset` holds the byte offset up to which the records were committed
//! to the database (decimal text); at start, replay begins there. A stale or
//! unreadable offset only means records are replayed again, which the database's
//! "higher seq wins" upsert makes harmless.
//!
//! Durability: [`Spool::append`] is one `write` of whole frames into the file (one
//! per batch, so a killed process loses nothing that was appended);
//! [`Spool::append_buffered`] (an overflow while the database is up) collects
//! frames in a write buffer that is written in one `write` once it holds
//! [`WRITE_BUFFER`] bytes, before any read or other append, and at the latest
//! with the fsync below, so a killed process can lose those (as it loses the
//! memory buffer); `fsync` runs once
//! the oldest unsynced append is [`Spool::sync_interval`] old — on the next append
//! or on the owner's timer ([`Spool::sync_if_due`], the sink's ingest thread), so
//! an idle tail is synced too — and always when the writer evacuates memory to disk
//! and at shutdown. The directory is fsync'd after the file is created (and after
//! the target tag is renamed into place), through the `sync_dir` seam that
//! [`Spool::open`] and [`write_tag`] take ([`fsync_dir`] in production; the
//! testkit's `SinkFault::sync_dir` counts or fails it); a failure is an error of
//! the open, never ignored. A power loss can thus lose at most the last
//! `sync_interval` of appends; a process kill cannot. A write that fails (disk
//! full) is undone with `set_len` so no partial frame stays behind.
//!
//! Damage: a torn tail found at open (a crash in the middle of a write) is cut off,
//! counted and saved to `torn` under the spool directory. A corrupt frame inside
//! the file (a checksum that does not hold) is skipped up to the next valid frame
//! when it is read, counted (`spool_corrupt`) and its bytes saved to `corrupt`;
//! no frame is ever handed out half.
//!
//! The older format, `spool.jsonl` (one record per line as serde's compact JSON,
//! committed offset in `spool.offset`), is still read: at open its uncommitted
//! lines are parsed once and appended as frames, the new file fsync'd, then the
//! old files removed. A crash in between replays those records twice, which the
//! upsert makes harmless; a line that does not parse goes to the rejected file.
//!
//! Once every frame was committed the file is truncated to 0 and the offset file
//! removed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::frame::{self, Next, FILE_HEADER, FILE_MAGIC, FRAME_HEADER};
use crate::model::Record;

/// The spool's file name inside the spool directory.
pub(crate) const SPOOL_FILE: &str = "spool.bin";
/// The spool file of the spool directory `dir`.
pub(in crate::sink) fn spool_file(dir: &Path) -> PathBuf {
    dir.join(SPOOL_FILE)
}

/// The committed offset of [`SPOOL_FILE`].
const OFFSET_FILE: &str = "spool.bin.offset";
/// The older format's file (JSON lines), read at open and removed.
pub(crate) const LEGACY_FILE: &str = "spool.jsonl";
/// The older format's committed offset.
const LEGACY_OFFSET_FILE: &str = "spool.offset";
/// Where corrupt frames' bytes are saved.
pub(crate) const CORRUPT_FILE: &str = "corrupt";
/// Where a torn tail's bytes are saved.
pub(crate) const TORN_FILE: &str = "torn";

/// What [`Spool::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OpenReport {
    /// Records waiting to be replayed.
    pub pending: u64,
    /// Bytes of a torn tail that were cut off (0 if none).
    pub torn_bytes: u64,
    /// The highest `seq` of the records waiting (`None` when none is waiting).
    pub max_seq: Option<u64>,
    /// Records taken over from a spool of the older JSON-lines format.
    pub legacy: u64,
    /// Lines of such a spool that did not parse (saved to the rejected file).
    pub legacy_corrupt: u64,
}

/// Frames read by [`Spool::read`]: payloads are `bytes[range]`.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// The bytes read (the payloads are ranges of it).
    pub bytes: Vec<u8>,
    /// Each valid frame's payload, in order.
    pub payloads: Vec<Range<usize>>,
    /// The offset after the last frame read.
    pub end: u64,
    /// Corrupt stretches skipped (already counted and saved aside).
    pub corrupt: u64,
}

/// The spill file and its read/commit positions.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    path: PathBuf,
    offset_path: PathBuf,
    file: File,
    /// End of the file (header and whole frames), 0 when empty.
    write_len: u64,
    /// Next byte to read.
    read_off: u64,
    /// Everything before this is committed.
    committed_off: u64,
    /// Frames in `[read_off, write_len)`.
    unread: u64,
    /// Frames in `[committed_off, read_off)`.
    inflight: u64,
    /// When the oldest append not yet fsync'd was made (`None`: all synced).
    dirty_since: Option<Instant>,
    /// Bytes appended since the last fsync.
    unsynced: u64,
    /// Longest time appended data may stay without fsync.
    pub sync_interval: Duration,
    /// Frames appended with [`Spool::append_buffered`] and not yet written (the
    /// file header first when the file is empty): written in one `write` once
    /// [`WRITE_BUFFER`] bytes are held, before any read, on the fsync timer, and
    /// before any other append.
    pending: Vec<u8>,
    /// Frames in `pending`.
    pending_frames: u64,
    /// `write` calls made on the file for frames (header included).
    writes: u64,
}

/// Why [`Spool::append_buffered`] failed.
#[derive(Debug)]
pub(crate) enum BufferedError {
    /// The record was not appended (too large for a frame).
    NotAppended(io::Error),
    /// The record is held in the write buffer, but writing or fsyncing it
    /// failed: [`Spool::flush`] (or [`Spool::sync`]) tries again.
    NotWritten(io::Error),
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::error!(
                "sink spool: {} records could not be written to {}: {e}",
                self.pending_frames,
                self.path.display()
            );
        }
    }
}

/// Bytes of frames [`Spool::append_buffered`] holds before it writes them.
pub(crate) const WRITE_BUFFER: usize = 256 << 10;

/// One step of a walk over frames: what lies at `pos`.
enum Step {
    /// A valid frame `len` bytes long, at `win[at..at + len]`.
    Frame { at: usize, len: usize },
    /// `len` bytes that are no frame.
    Corrupt { len: u64 },
}

/// A window of a file read ahead, for walking its frames.
struct Window<'a> {
    file: &'a File,
    /// The end of the part of the file walked.
    end: u64,
    /// The file offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
    /// How much to read ahead at least.
    chunk: usize,
}

impl Window<'_> {
    /// Makes the window cover `[pos, pos + n)` (clamped to `end`), reading
    /// `max(n, chunk)` bytes from `pos` if it does not.
    fn cover(&mut self, pos: u64, n: u64) -> io::Result<()> {
        let want_end = pos.saturating_add(n).min(self.end);
        let have_end = self.start + self.buf.len() as u64;
        if pos >= self.start && want_end <= have_end {
            return Ok(());
        }
        let len = (want_end
            .max(pos.saturating_add(self.chunk as u64))
            .min(self.end)
            - pos) as usize;
        self.buf.clear();
        self.buf.resize(len, 0);
        self.file.read_exact_at(&mut self.buf, pos)?;
        self.start = pos;
        Ok(())
    }

    /// The bytes from `pos` to the window's end (`pos` is covered).
    fn from(&self, pos: u64) -> &[u8] {
        pos.checked_sub(self.start)
            .and_then(|i| self.buf.get(i as usize..))
            .unwrap_or_default()
    }

    /// What is at `pos` (< `end`). `may_reload`: the window may be moved (only
    /// when no earlier frame of it is still needed).
    fn step(&mut self, pos: u64, may_reload: bool) -> io::Result<Option<Step>> {
        let rest = self.end - pos;
        if may_reload {
            self.cover(pos, FRAME_HEADER as u64)?;
        }
        loop {
            let here = self.from(pos);
            let covered = here.len() as u64;
            match frame::next_frame(here) {
                Next::Frame { len } => {
                    return Ok(Some(Step::Frame {
                        at: (pos - self.start) as usize,
                        len,
                    }))
                }
                Next::Incomplete { need } if (need as u64) <= rest => {
                    if !may_reload {
                        return Ok(None);
                    }
                    self.cover(pos, need as u64)?;
                }
                Next::Corrupt { skip } if covered == rest => {
                    return Ok(Some(Step::Corrupt { len: skip as u64 }));
                }
                // A frame claiming more than the file holds: a torn tail or a
                // flipped length. Look for the next valid frame after its start.
                Next::Incomplete { .. } if covered == rest => {
                    let skip = match here.get(1..).map(frame::next_frame) {
                        Some(Next::Corrupt { skip }) => 1 + skip,
                        _ => 1,
                    };
                    return Ok(Some(Step::Corrupt { len: skip as u64 }));
                }
                // Damage: judge it with the whole rest of the file in view.
                Next::Incomplete { .. } | Next::Corrupt { .. } => {
                    if !may_reload {
                        return Ok(None);
                    }
                    self.cover(pos, rest)?;
                }
            }
        }
    }
}

/// Counts the valid frames in `[from, to)`, their highest seq and where the last
/// one ends (`from` when none).
fn scan(file: &File, from: u64, to: u64) -> io::Result<(u64, Option<u64>, u64)> {
    let mut w = Window {
        file,
        end: to,
        start: from,
        buf: Vec::new(),
        chunk: 1 << 20,
    };
    let (mut pos, mut n, mut max, mut good_end) = (from, 0u64, None, from);
    while pos < to {
        match w.step(pos, true)? {
            Some(Step::Frame { at, len }) => {
                max = max.max(w.buf.get(at..at + len).and_then(frame::frame_seq));
                n += 1;
                pos += len as u64;
                good_end = pos;
            }
            Some(Step::Corrupt { len }) => pos += len,
            None => break,
        }
    }
    Ok((n, max, good_end))
}

/// fsyncs a directory, so that the names just created in it survive a power loss.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends `bytes` to the file `name` under `dir` (torn and corrupt bytes kept
/// for a person to look at).
fn save_aside(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut t = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    t.write_all(bytes)?;
    t.sync_data()
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Spool {
    /// Opens (creating) the spool under `dir`: takes over a spool of the older
    /// JSON-lines format, cuts a torn tail, and positions the reader at the
    /// committed offset. When it creates the file, it fsyncs `dir` with `sync_dir`
    /// ([`fsync_dir`]) and fails if that fails. A file of another format or a later
    /// version is an error (nothing is overwritten).
    pub(crate) fn open(
        dir: &Path,
        sync_dir: &dyn Fn(&Path) -> io::Result<()>,
    ) -> io::Result<(Spool, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let path = spool_file(dir);
        let new = !path.exists();
        let offset_path = dir.join(OFFSET_FILE);
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
            let mut head = [0u8; FILE_HEADER.len()];
            let n = (len as usize).min(head.len());
            file.read_exact_at(&mut head[..n], 0)?;
            if n < head.len() && FILE_HEADER.starts_with(&head[..n]) {
                // Torn in its first write: nothing of it was a frame.
                save_aside(dir, TORN_FILE, &head[..n])?;
                file.set_len(0)?;
                file.sync_all()?;
                report.torn_bytes = len;
                len = 0;
            } else if head != *FILE_HEADER {
                let what = if head.starts_with(FILE_MAGIC) {
                    let v = u16::from_le_bytes([head[14], head[15]]);
                    format!("format version {v}, this build reads {}", frame::VERSION)
                } else {
                    "no tweetflow spool header".to_string()
                };
                return Err(bad_data(format!(
                    "{} is not a spool this build can read ({what}); move it aside to start",
                    path.display()
                )));
            }
        }
        let header = FILE_HEADER.len() as u64;
        let mut committed = if len > 0 {
            read_offset(&offset_path, &file, len).max(header)
        } else {
            0
        };
        let (mut unread, mut max_seq) = (0, None);
        if len > 0 {
            let (n, max, good_end) = scan(&file, committed, len)?;
            if good_end < len {
                let mut torn = vec![0u8; (len - good_end) as usize];
                file.read_exact_at(&mut torn, good_end)?;
                save_aside(dir, TORN_FILE, &torn)?;
                file.set_len(good_end)?;
                file.sync_all()?;
                report.torn_bytes += len - good_end;
                log::warn!(
                    "sink spool: cut a torn tail of {} bytes from {} (saved to {})",
                    len - good_end,
                    path.display(),
                    dir.join(TORN_FILE).display()
                );
                len = good_end;
            }
            (unread, max_seq) = (n, max);
        }
        if len > 0 && unread == 0 {
            // Nothing waits (only the header, or all committed): start empty.
            file.set_len(0)?;
            file.sync_all()?;
            remove_if_there(&offset_path)?;
            (len, committed) = (0, 0);
        }
        let mut spool = Spool {
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
            pending: Vec::new(),
            pending_frames: 0,
            writes: 0,
        };
        let legacy = spool.take_legacy(sync_dir)?;
        report.legacy = legacy.0;
        report.legacy_corrupt = legacy.1;
        max_seq = max_seq.max(legacy.2);
        report.pending = spool.unread;
        report.max_seq = if spool.unread > 0 { max_seq } else { None };
        Ok((spool, report))
    }

    /// Takes over `spool.jsonl` (the older format) if it holds uncommitted lines:
    /// appends them as frames, fsyncs, removes the old files. Returns the records
    /// taken over, the lines that did not parse and the highest seq.
    fn take_legacy(
        &mut self,
        sync_dir: &dyn Fn(&Path) -> io::Result<()>,
    ) -> io::Result<(u64, u64, Option<u64>)> {
        let old = self.dir.join(LEGACY_FILE);
        let old_offset = self.dir.join(LEGACY_OFFSET_FILE);
        let f = match File::open(&old) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0, None)),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let from = legacy_offset(&old_offset, &f, len);
        let mut r = BufReader::with_capacity(1 << 20, &f);
        r.seek(SeekFrom::Start(from))?;
        let (mut taken, mut bad, mut max) = (0u64, 0u64, None);
        let mut chunk: Vec<Record> = Vec::with_capacity(1000);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                // The end, or a torn last line (never written whole).
                if n > 0 {
                    save_aside(&self.dir, TORN_FILE, &line)?;
                    log::warn!(
                        "sink spool: a torn last line of {n} bytes in {} (saved to {})",
                        old.display(),
                        self.dir.join(TORN_FILE).display()
                    );
                }
                break;
            }
            line.pop();
            match serde_json::from_slice::<Record>(&line) {
                Ok(rec) => {
                    max = max.max(Some(rec.tweet.seq));
                    chunk.push(rec);
                }
                Err(e) => {
                    bad += 1;
                    log::error!(
                        "sink: unreadable line of {} ({e}), {} bytes; saved to the rejected file",
                        old.display(),
                        line.len()
                    );
                    crate::sink::rejected::save_rejected(
                        &self.dir,
                        "spool-line",
                        &e.to_string(),
                        &String::from_utf8_lossy(&line),
                    );
                }
            }
            if chunk.len() >= 1000 {
                taken += chunk.len() as u64;
                self.append(&chunk.iter().collect::<Vec<_>>())?;
                chunk.clear();
            }
        }
        taken += chunk.len() as u64;
        self.append(&chunk.iter().collect::<Vec<_>>())?;
        self.sync()?;
        drop(r);
        // The frames are on disk: the old files may go.
        std::fs::remove_file(&old)?;
        remove_if_there(&old_offset)?;
        sync_dir(&self.dir)?;
        if taken + bad > 0 {
            log::info!(
                "sink spool: took over {taken} records of {} (the older JSON-lines format) into {}",
                old.display(),
                self.path.display()
            );
        }
        Ok((taken, bad, max))
    }

    /// The spool directory.
    pub(in crate::sink) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spill file's path.
    pub(in crate::sink) fn path(&self) -> &Path {
        &self.path
    }

    /// True while the spool holds frames not yet committed (new records must then be
    /// appended behind them to keep the order).
    pub(in crate::sink) fn is_active(&self) -> bool {
        self.write_len > 0 || self.pending_frames > 0
    }

    /// Bytes appended (written or held in the write buffer) and not committed yet.
    pub(in crate::sink) fn pending_bytes(&self) -> u64 {
        let mut held = self.pending.len() as u64;
        if self.write_len == 0 && held > 0 {
            // The file header is no record's.
            held = held.saturating_sub(FILE_HEADER.len() as u64);
        }
        (self.write_len + held).saturating_sub(self.committed_off)
    }

    /// Frames not yet handed out (the ones in the write buffer included).
    pub(in crate::sink) fn unread(&self) -> u64 {
        self.unread
    }

    /// Frames handed out and not yet committed.
    pub(in crate::sink) fn inflight(&self) -> u64 {
        self.inflight
    }

    /// Frames appended with [`Spool::append_buffered`] and not written yet.
    pub(in crate::sink) fn unwritten(&self) -> u64 {
        self.pending_frames
    }

    /// `write` calls made on the file for frames since it was opened.
    #[cfg(test)]
    pub(crate) fn writes(&self) -> u64 {
        self.writes
    }

    /// Adds `records`' frames to the write buffer (the file header first when the
    /// file is empty). A record too large for a frame (beyond 64 MiB) is refused
    /// with an error and nothing is added.
    fn encode_pending(&mut self, records: &[&Record]) -> io::Result<()> {
        let mark = self.pending.len();
        if self.write_len == 0 && mark == 0 {
            self.pending.extend_from_slice(FILE_HEADER);
        }
        for r in records {
            if !frame::encode(r, &mut self.pending) {
                self.pending.truncate(mark);
                return Err(bad_data(format!(
                    "record seq {} is too large for a spool frame",
                    r.tweet.seq
                )));
            }
        }
        let n = records.len() as u64;
        self.pending_frames += n;
        self.unread += n;
        self.unsynced += (self.pending.len() - mark) as u64;
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Appends records as frames, written now in one `write` together with what
    /// the write buffer held before them. On error nothing of `records` is
    /// appended (what the buffer held before stays there). A record too large for
    /// a frame (beyond 64 MiB) is refused with an error.
    pub(crate) fn append(&mut self, records: &[&Record]) -> io::Result<()> {
        if records.is_empty() {
            return self.flush();
        }
        let (mark, frames, unsynced) = (self.pending.len(), self.pending_frames, self.unsynced);
        self.encode_pending(records)?;
        if let Err(e) = self.flush() {
            self.pending.truncate(mark);
            self.unread -= self.pending_frames - frames;
            self.pending_frames = frames;
            self.unsynced = unsynced;
            return Err(e);
        }
        self.sync_if_due().map(|_| ())
    }

    /// Appends a record's frame to the write buffer, and writes the buffer in
    /// one `write` once it holds [`WRITE_BUFFER`] bytes; fsyncs when the oldest
    /// unsynced append is due. `Ok`: the record is appended (written or held).
    pub(crate) fn append_buffered(&mut self, record: &Record) -> Result<(), BufferedError> {
        self.encode_pending(&[record])
            .map_err(BufferedError::NotAppended)?;
        if self.pending.len() >= WRITE_BUFFER {
            self.flush().map_err(BufferedError::NotWritten)?;
        }
        self.sync_if_due().map_err(BufferedError::NotWritten)?;
        Ok(())
    }

    /// Writes the write buffer to the file in one `write`. On error the file is
    /// cut back (no partial frame stays behind) and the buffer kept, to be
    /// written again.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.writes += 1;
        if let Err(e) = self.file.write_all_at(&self.pending, self.write_len) {
            // Undo a partial write so no torn frame stays behind.
            let _ = self.file.set_len(self.write_len);
            return Err(e);
        }
        if self.write_len == 0 {
            // The header came first: frames start after it.
            self.read_off = FILE_HEADER.len() as u64;
            self.committed_off = self.read_off;
        }
        self.write_len += self.pending.len() as u64;
        self.pending.clear();
        if self.pending.capacity() > 4 * WRITE_BUFFER {
            // One huge record passed through: give its room back.
            self.pending.shrink_to(WRITE_BUFFER);
        }
        self.pending_frames = 0;
        Ok(())
    }

    /// fsyncs the file if anything was appended since the last sync.
    /// What the write buffer holds is written first.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
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

    /// Reads up to `max` frames and about `max_bytes` (always at least one frame,
    /// however long). A corrupt stretch on the way is skipped, counted in
    /// [`Frames::corrupt`] and its bytes saved to `corrupt` under the spool
    /// directory; it does not count as a frame.
    pub(crate) fn read(&mut self, max: usize, max_bytes: u64) -> io::Result<Frames> {
        // The reader sees every frame appended before it.
        self.flush()?;
        let mut out = Frames {
            end: self.read_off,
            ..Frames::default()
        };
        if self.unread == 0 || max == 0 || self.read_off >= self.write_len {
            return Ok(out);
        }
        // Read ahead about what the batch needs: its share of the pending bytes.
        let avg = self.pending_bytes() / (self.unread + self.inflight).max(1);
        let want = avg
            .saturating_mul(max as u64)
            .min(max_bytes)
            .saturating_add(avg)
            .clamp(64 << 10, 64 << 20);
        let mut w = Window {
            file: &self.file,
            end: self.write_len,
            start: self.read_off,
            buf: Vec::new(),
            chunk: want as usize,
        };
        let mut pos = self.read_off;
        let mut bytes = 0u64;
        while pos < self.write_len
            && out.payloads.len() < max
            && (out.payloads.is_empty() || bytes < max_bytes)
        {
            match w.step(pos, out.payloads.is_empty())? {
                Some(Step::Frame { at, len }) => {
                    out.payloads.push(at + FRAME_HEADER..at + len);
                    pos += len as u64;
                    bytes += len as u64;
                }
                Some(Step::Corrupt { len }) => {
                    let mut junk = vec![0u8; len as usize];
                    self.file.read_exact_at(&mut junk, pos)?;
                    log::error!(
                        "sink spool: {len} corrupt bytes at offset {pos} of {} skipped (a frame \
                         whose checksum does not hold); saved to {}",
                        self.path.display(),
                        self.dir.join(CORRUPT_FILE).display()
                    );
                    if let Err(e) = save_aside(&self.dir, CORRUPT_FILE, &junk) {
                        log::error!("sink spool: cannot save the corrupt bytes: {e}");
                    }
                    out.corrupt += 1;
                    pos += len;
                }
                None => break,
            }
        }
        out.bytes = w.buf;
        let n = out.payloads.len() as u64;
        out.end = pos;
        self.read_off = pos;
        self.unread = self.unread.saturating_sub(n);
        self.inflight += n;
        if self.read_off >= self.write_len {
            // Whatever the count said, nothing is left to read.
            self.unread = 0;
        }
        Ok(out)
    }

    /// Forgets what was read but not committed: it will be read again.
    pub(in crate::sink) fn rewind(&mut self) {
        self.read_off = self.committed_off;
        self.unread += self.inflight;
        self.inflight = 0;
    }

    /// Marks everything before `offset` (`frames` frames since the last commit) as
    /// in the database. When everything is committed the file is truncated. Returns
    /// whether it was.
    pub(crate) fn commit(&mut self, offset: u64, frames: u64) -> io::Result<bool> {
        if offset <= self.committed_off {
            return Ok(false);
        }
        self.committed_off = offset;
        self.inflight = self.inflight.saturating_sub(frames);
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
            remove_if_there(&self.offset_path)?;
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

/// The offset in the offset file, if it reads as a number.
fn offset_in(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let off = text.trim().parse::<u64>().ok();
    if off.is_none() {
        log::warn!(
            "sink spool: unreadable offset file {}; replaying all",
            path.display()
        );
    }
    off
}

/// The committed offset from the offset file, validated: it must be the end of the
/// file or the start of a valid frame; otherwise 0 (replay all).
fn read_offset(path: &Path, file: &File, len: u64) -> u64 {
    let Some(off) = offset_in(path) else {
        return 0;
    };
    if off == len {
        return off;
    }
    if off < FILE_HEADER.len() as u64 || off > len {
        return 0;
    }
    let mut w = Window {
        file,
        end: len,
        start: off,
        buf: Vec::new(),
        chunk: 64 << 10,
    };
    match w.step(off, true) {
        Ok(Some(Step::Frame { .. })) => off,
        _ => {
            log::warn!("sink spool: offset {off} is not at a frame's start; replaying all");
            0
        }
    }
}

/// The committed offset of the older format: within the file and right after a
/// line end; otherwise 0 (replay all).
fn legacy_offset(path: &Path, file: &File, len: u64) -> u64 {
    let Some(off) = offset_in(path) else {
        return 0;
    };
    if off == 0 || off > len {
        return 0;
    }
    let mut b = [0u8; 1];
    if file.read_exact_at(&mut b, off - 1).is_ok() && b[0] == b'\n' {
        off
    } else {
        log::warn!("sink spool: offset {off} is not at a line end; replaying all");
        0
    }
}

/// Removes a file; one that is not there is fine.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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

    fn seqs(f: &Frames) -> Vec<u64> {
        f.payloads
            .iter()
            .map(|p| frame::decode(&f.bytes[p.clone()]).unwrap().tweet.seq)
            .collect()
    }

    fn append(s: &mut Spool, range: std::ops::RangeInclusive<u64>) {
        let recs: Vec<Record> = range.map(rec).collect();
        s.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    }

    fn frame_len(seq: u64) -> u64 {
        let mut b = Vec::new();
        assert!(frame::encode(&rec(seq), &mut b));
        b.len() as u64
    }

    #[test]
    fn append_read_commit_truncates_when_drained() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep, OpenReport::default());
        append(&mut s, 1..=5);
        assert!(s.is_active());
        // One header, then five frames: the file's size says so.
        let size = std::fs::metadata(s.path()).unwrap().len();
        assert_eq!(size, 16 + 5 * frame_len(1));
        let f = s.read(3, u64::MAX).unwrap();
        assert_eq!(seqs(&f), vec![1, 2, 3]);
        assert_eq!(s.read(0, u64::MAX).unwrap().payloads.len(), 0);
        assert!(!s.commit(f.end, 3).unwrap());
        let f = s.read(10, u64::MAX).unwrap();
        assert_eq!(seqs(&f), vec![4, 5]);
        assert!(s.commit(f.end, 2).unwrap());
        assert!(!s.is_active());
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 0);
        // Refilled after the truncation: the header is written again.
        append(&mut s, 6..=6);
        let f = s.read(10, u64::MAX).unwrap();
        assert_eq!(seqs(&f), vec![6]);
    }

    #[test]
    fn a_batch_stops_at_its_byte_cap_but_holds_one_frame_at_least() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
        append(&mut s, 1..=5);
        let one = frame_len(1);
        assert_eq!(seqs(&s.read(10, 1).unwrap()), vec![1]);
        assert_eq!(seqs(&s.read(10, 2 * one).unwrap()), vec![2, 3]);
        assert_eq!(seqs(&s.read(10, 2 * one + 1).unwrap()), vec![4, 5]);
    }

    #[test]
    fn reopen_resumes_at_committed_offset_and_rewind_rereads() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            append(&mut s, 1..=6);
            let f = s.read(2, u64::MAX).unwrap();
            s.commit(f.end, 2).unwrap();
            assert_eq!(seqs(&s.read(2, u64::MAX).unwrap()), vec![3, 4]);
            s.rewind();
            assert_eq!(seqs(&s.read(1, u64::MAX).unwrap()), vec![3]);
            // Not committed: dropped as if the process died.
        }
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 4);
        // The highest seq waiting, for the next run's sequence to start above it.
        assert_eq!(rep.max_seq, Some(6));
        assert_eq!(seqs(&s.read(100, u64::MAX).unwrap()), vec![3, 4, 5, 6]);
    }

    #[test]
    fn a_torn_tail_is_cut_counted_and_saved_and_a_bad_offset_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            append(&mut s, 1..=2);
        }
        let mut third = Vec::new();
        assert!(frame::encode(&rec(3), &mut third));
        let half = &third[..third.len() / 2];
        let path = dir.path().join(SPOOL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(half).unwrap();
        drop(f);
        // An offset inside a frame is ignored: everything is replayed.
        std::fs::write(dir.path().join(OFFSET_FILE), "20").unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 2);
        assert_eq!(rep.torn_bytes, half.len() as u64);
        assert_eq!(seqs(&s.read(10, u64::MAX).unwrap()), vec![1, 2]);
        assert_eq!(std::fs::read(dir.path().join(TORN_FILE)).unwrap(), half);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            16 + 2 * frame_len(1)
        );
    }

    #[test]
    fn a_torn_header_is_cut_and_the_spool_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPOOL_FILE), &FILE_HEADER[..5]).unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!((rep.pending, rep.torn_bytes), (0, 5));
        assert!(!s.is_active());
        append(&mut s, 1..=1);
        assert_eq!(seqs(&s.read(10, u64::MAX).unwrap()), vec![1]);
    }

    #[test]
    fn a_bit_flip_skips_that_frame_alone_counted_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            append(&mut s, 1..=3);
        }
        let path = dir.path().join(SPOOL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let one = frame_len(1) as usize;
        let second = 16 + one..16 + 2 * one;
        let original = bytes[second.clone()].to_vec();
        // A bit of the second frame's text.
        bytes[second.start + 60] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 2);
        assert_eq!(rep.torn_bytes, 0);
        assert_eq!(rep.max_seq, Some(3));
        let f = s.read(10, u64::MAX).unwrap();
        assert_eq!(seqs(&f), vec![1, 3]);
        assert_eq!(f.corrupt, 1);
        let mut saved = std::fs::read(dir.path().join(CORRUPT_FILE)).unwrap();
        assert_eq!(saved.len(), one);
        saved[60] ^= 0x10;
        assert_eq!(saved, original);
        assert!(s.commit(f.end, 2).unwrap());
    }

    #[test]
    fn a_flipped_length_does_not_lose_the_frames_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            append(&mut s, 1..=3);
        }
        let path = dir.path().join(SPOOL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        // The first frame's length claims 16 MiB more than the file holds.
        bytes[16 + 6] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!((rep.pending, rep.torn_bytes), (2, 0));
        let f = s.read(10, u64::MAX).unwrap();
        assert_eq!(seqs(&f), vec![2, 3]);
        assert_eq!(f.corrupt, 1);
    }

    #[test]
    fn a_file_of_another_version_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPOOL_FILE);
        let mut v2 = FILE_HEADER.to_vec();
        v2[14] = 2;
        v2.extend_from_slice(b"future frames");
        std::fs::write(&path, &v2).unwrap();
        let e = Spool::open(dir.path(), &fsync_dir).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("format version 2"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), v2);
    }

    /// A spool in the older format (JSON lines, as serde wrote a `Record`), written
    /// by hand as a fixture: the first line committed, a line that is not JSON, a
    /// torn last line.
    const OLD_SPOOL: &[u8] = include_bytes!("testdata/spool-v0.jsonl");

    #[test]
    fn a_spool_of_the_older_json_lines_format_still_replays() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_FILE), OLD_SPOOL).unwrap();
        let first_line = OLD_SPOOL.iter().position(|&b| b == b'\n').unwrap() + 1;
        std::fs::write(dir.path().join(LEGACY_OFFSET_FILE), first_line.to_string()).unwrap();
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.legacy, 2);
        assert_eq!(rep.legacy_corrupt, 1);
        assert_eq!(rep.pending, 2);
        assert_eq!(rep.max_seq, Some(103));
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(!dir.path().join(LEGACY_OFFSET_FILE).exists());
        let f = s.read(10, u64::MAX).unwrap();
        let recs: Vec<Record> = f
            .payloads
            .iter()
            .map(|p| frame::decode(&f.bytes[p.clone()]).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        let (a, b) = (&recs[0], &recs[1].tweet);
        assert_eq!(a.tweet.seq, 102);
        assert_eq!(a.tweet.stream, 2);
        assert_eq!(a.tweet.text, "line\nbreak \"quoted\" é");
        assert_eq!(a.tweet.hashtags, vec!["Rust", "ünï"]);
        assert_eq!(a.tweet.retweeted_status_id, Some(7001));
        assert_eq!(
            a.tweet.raw,
            r#"{"id":7002,"text":"line\nbreak \"quoted\" é","user":{"id":10}}"#
        );
        assert_eq!(
            a.sentiment.map(f64::to_bits),
            Some((-0.23076923076923078f64).to_bits())
        );
        assert_eq!(a.engagement, None);
        assert_eq!((b.seq, b.id, b.lang.as_deref()), (103, 7003, Some("ja")));
        assert_eq!(b.user.verified, Some(true));
        assert_eq!(recs[1].engagement, Some(1.5));
        let rejected =
            std::fs::read_to_string(dir.path().join(crate::sink::rejected::REJECTED_FILE)).unwrap();
        assert!(rejected.contains("this line is not JSON"), "{rejected}");
        let torn = std::fs::read(dir.path().join(TORN_FILE)).unwrap();
        assert!(torn.starts_with(br#"{"tweet":{"seq":104,"#));
        // Taken over once: a second open finds the frames, not the old file.
        drop(s);
        let (_, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!((rep.pending, rep.legacy), (2, 0));
    }

    #[test]
    fn buffered_appends_reach_the_file_in_few_writes_and_reads_see_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
        let size = || {
            std::fs::metadata(dir.path().join(SPOOL_FILE))
                .unwrap()
                .len()
        };
        let one = frame_len(1);
        let n = 3 * WRITE_BUFFER as u64 / one + 10;
        // Until the buffer holds WRITE_BUFFER bytes, the file does not grow.
        let below = WRITE_BUFFER as u64 / one - 1;
        for seq in 1..=below {
            s.append_buffered(&rec(seq)).unwrap();
        }
        assert_eq!(size(), 0);
        assert_eq!(s.writes(), 0);
        assert_eq!(s.unread(), below);
        for seq in below + 1..=n {
            s.append_buffered(&rec(seq)).unwrap();
        }
        // Three full buffers were written, one write each; the rest waits.
        assert_eq!(s.writes(), 3);
        assert!(size() >= 3 * WRITE_BUFFER as u64, "{}", size());
        assert!(size() < 16 + n * one);
        // A read sees every frame appended before it (one more write).
        let f = s.read(usize::MAX, u64::MAX).unwrap();
        assert_eq!(s.writes(), 4);
        assert_eq!(size(), 16 + n * one);
        assert_eq!(seqs(&f), (1..=n).collect::<Vec<_>>());
        // An immediate append writes what the buffer holds first, in the same write.
        s.append_buffered(&rec(n + 1)).unwrap();
        append(&mut s, n + 2..=n + 3);
        assert_eq!(s.writes(), 5);
        assert_eq!(
            seqs(&s.read(10, u64::MAX).unwrap()),
            vec![n + 1, n + 2, n + 3]
        );
        drop(s);
        // Reopened: every frame is there, in order, none torn.
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!((rep.pending, rep.torn_bytes), (n + 3, 0));
        assert_eq!(
            seqs(&s.read(usize::MAX, u64::MAX).unwrap()),
            (1..=n + 3).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_fsync_timer_and_a_drop_write_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let size = || {
            std::fs::metadata(dir.path().join(SPOOL_FILE))
                .unwrap()
                .len()
        };
        {
            let (mut s, _) = Spool::open(dir.path(), &fsync_dir).unwrap();
            s.sync_interval = Duration::ZERO;
            s.append_buffered(&rec(1)).unwrap();
            // Due at once: written and fsync'd.
            assert_eq!(s.unsynced(), 0);
            assert_eq!(size(), 16 + frame_len(1));
            s.sync_interval = Duration::from_secs(3600);
            s.append_buffered(&rec(2)).unwrap();
            assert!(s.unsynced() > 0);
            assert_eq!(size(), 16 + frame_len(1));
        }
        assert_eq!(size(), 16 + 2 * frame_len(1));
        let (mut s, rep) = Spool::open(dir.path(), &fsync_dir).unwrap();
        assert_eq!(rep.pending, 2);
        assert_eq!(seqs(&s.read(10, u64::MAX).unwrap()), vec![1, 2]);
    }
}
