//! The sink's buffer: memory up to a bound, then the spool, with a pull API.
//!
//! * `push` (the ingest thread): into memory while the spool is inactive, not in
//!   durable mode and memory holds fewer than `capacity` records; otherwise appended
//!   to the spool. Once spilling, every later record goes to the spool until the
//!   spool has drained, so the order is kept. If the append fails (disk full) the
//!   push blocks, retrying every 500 ms and logging it: backpressure, nothing dropped.
//!   In durable mode (the database is down) each record is written as it comes;
//!   an overflow while the database is up goes to the spool's write buffer,
//!   written in one `write` per `spool::WRITE_BUFFER` bytes (256 KiB), before the writer reads
//!   the spool, on the fsync timer and when the buffer closes.
//! * `when_full` ([`WhenFull`]): with `Block`, while the database is up (the sink
//!   state `up`) a push that would spill tells the budget that the sink is behind
//!   (the readers wait) and still takes the record: into memory beyond its share,
//!   or behind the spool while it holds records (the order). The flag is cleared
//!   once memory has room and the spool is empty, or the database is no longer
//!   up (checked at every push, pull, commit, evacuation and fsync tick).
//! * `pull` (the writer, only when it is ready to write): up to `max` records,
//!   memory first (it holds the oldest), then the spool. It waits for the first
//!   record, then at most `linger` for the batch to fill.
//! * `commit` after the batch is in the database (advances the spool's offset).
//! * `evacuate` when the database is down: the batch the writer held goes back to
//!   the head of the queue (spool-sourced: the spool rewinds; memory-sourced: back to
//!   the front of memory), then memory is appended to the spool and fsync'd, and the
//!   buffer stays in durable mode (pushes go to disk) until `set_durable(false)`.
//!   When the spool was empty this keeps the exact order; when it already held
//!   records (memory overflowed before the outage), the memory records land behind
//!   them, which the database's "higher seq wins" upsert makes harmless.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::frame;
use super::spool::{BufferedError, Frames, Spool};
use crate::budget::Budget;
use crate::model::Record;
use crate::sink::config::WhenFull;
use crate::sink::health::BreakerState;
use crate::sink::stats::SinkStats;

/// Where a batch came from (needed to commit or put it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sink) enum Source {
    /// From the memory buffer.
    Memory,
    /// From the spool: the offset after its last frame and its number of frames.
    Spool {
        /// Spool offset just after the batch's last frame.
        end: u64,
        /// Valid spool frames the batch was read from (undecodable ones included).
        frames: u64,
    },
}

/// Records handed to the writer.
#[derive(Debug)]
pub(in crate::sink) struct Batch {
    /// The records, in order.
    pub records: Vec<Record>,
    /// Where they came from.
    pub source: Source,
}

/// The bounds of a [`Buffer`] beyond its record count.
#[derive(Debug, Clone)]
pub(in crate::sink) struct Limits {
    /// Most bytes of records kept in memory (see `Tweet::heap_bytes`);
    /// beyond, records spill to the spool.
    pub(in crate::sink) memory_bytes: u64,
    /// A batch stops growing at this many bytes (always at least one record).
    pub(in crate::sink) batch_bytes: u64,
    /// Uncommitted spool bytes at which `budget` is told the spool is full.
    pub(in crate::sink) spool_max_bytes: Option<u64>,
    /// Told when the spool is full, so that ingest waits, and when the sink is
    /// behind (`when_full` `Block`).
    pub(in crate::sink) budget: Arc<Budget>,
    /// What a push does when memory is full while the database is up.
    pub(in crate::sink) when_full: WhenFull,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: u64::MAX,
            batch_bytes: u64::MAX,
            spool_max_bytes: None,
            budget: Budget::unlimited(),
            when_full: WhenFull::Spill,
        }
    }
}

#[derive(Debug)]
struct Inner {
    mem: VecDeque<Record>,
    /// Bytes of the records in `mem` ([`mem_size`] of each).
    mem_bytes: u64,
    spool: Spool,
    durable: bool,
    closed: bool,
}

/// The buffer shared by the ingest thread and the writer.
#[derive(Debug)]
pub(in crate::sink) struct Buffer {
    inner: Mutex<Inner>,
    ready: Condvar,
    capacity: usize,
    limits: Limits,
    stats: Arc<SinkStats>,
}

impl Buffer {
    /// A buffer over an opened spool (which may hold records to replay first).
    pub(in crate::sink) fn new(
        spool: Spool,
        capacity: usize,
        limits: Limits,
        stats: Arc<SinkStats>,
    ) -> Buffer {
        let b = Buffer {
            inner: Mutex::new(Inner {
                mem: VecDeque::new(),
                mem_bytes: 0,
                spool,
                durable: false,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            limits,
            stats,
        };
        b.update_gauges(&b.inner.lock());
        b
    }

    /// Tells the budget whether the spool is at its maximum (ingest then waits).
    fn note_spool(&self, i: &Inner) {
        let bytes = i.spool.pending_bytes();
        let Some(max) = self.limits.spool_max_bytes else {
            return;
        };
        let full = bytes >= max;
        if full != self.limits.budget.spool_full() {
            if full {
                log::warn!(
                    "sink: the spool holds {} MiB, --spool-max-bytes is {} MiB: ingest waits \
                     until records are written (nothing is dropped; what is already in memory \
                     still goes to the spool)",
                    bytes >> 20,
                    max >> 20
                );
            } else {
                log::info!(
                    "sink: the spool has room again ({} MiB): ingest resumes",
                    bytes >> 20
                );
            }
            self.limits.budget.set_spool_full(full);
        }
    }

    fn update_gauges(&self, i: &Inner) {
        self.stats
            .buffered
            .store(i.mem.len() as u64, Ordering::Relaxed);
        self.stats
            .spilled
            .store(i.spool.unread() + i.spool.inflight(), Ordering::Relaxed);
        self.stats
            .spool_unsynced
            .store(i.spool.unsynced(), Ordering::Relaxed);
        self.stats
            .buffered_bytes
            .store(i.mem_bytes, Ordering::Relaxed);
        self.stats
            .spool_bytes
            .store(i.spool.pending_bytes(), Ordering::Relaxed);
    }

    /// Whether the database is up for the sink: the breaker closed, not paused,
    /// not waiting on a refusal, no thread failed (the sink state `up`).
    fn database_up(&self) -> bool {
        let s = &self.stats;
        s.breaker.state() == BreakerState::Closed
            && !s.pause.is_requested()
            && s.waiting.lock().is_none()
            && s.failure.lock().is_none()
    }

    /// Memory holds its share (the next record would not fit).
    fn memory_full(&self, i: &Inner) -> bool {
        !i.mem.is_empty()
            && (i.mem.len() >= self.capacity || i.mem_bytes >= self.limits.memory_bytes)
    }

    /// With `when_full` `Block`: tells the budget whether the sink is behind (the
    /// database up, not in durable mode, and memory full or the spool holding
    /// records). Returns whether it is.
    fn note_behind(&self, i: &Inner) -> bool {
        if self.limits.when_full != WhenFull::Block {
            return false;
        }
        let behind = !i.durable
            && !i.closed
            && (i.spool.is_active() || self.memory_full(i))
            && self.database_up();
        if behind != self.limits.budget.sink_behind() {
            if behind {
                log::info!(
                    "sink: behind the input with the database up ({} records in memory, {} in \
                     the spool); ingest waits (--when-full block)",
                    i.mem.len(),
                    i.spool.unread() + i.spool.inflight()
                );
            } else {
                log::info!("sink: caught up; ingest resumes");
            }
            self.limits.budget.set_sink_behind(behind);
        }
        behind
    }

    /// Adds a record; blocks only while the spool cannot be written (disk full).
    pub(in crate::sink) fn push(&self, rec: Record) {
        let mut failures = 0u32;
        // `None` once the record is in the spool's write buffer but that buffer
        // could not be written: only the write is retried.
        let mut rec = Some(rec);
        loop {
            let mut i = self.inner.lock();
            let res = match rec.take() {
                Some(r) => self.place(&mut i, r),
                None => i.spool.flush().map_err(|e| (None, e)),
            };
            match res {
                Ok(()) => {
                    self.update_gauges(&i);
                    self.note_spool(&i);
                    drop(i);
                    if failures > 0 {
                        log::info!("sink: spool writable again; ingest resumes");
                    }
                    self.ready.notify_one();
                    return;
                }
                Err((back, e)) => {
                    rec = back;
                    self.update_gauges(&i);
                    drop(i);
                    if failures.is_multiple_of(20) {
                        log::error!(
                            "sink: cannot append to the spool ({e}); ingest is blocked until \
                             there is room (retrying every 500 ms)"
                        );
                    }
                    failures += 1;
                    self.stats
                        .spool_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    /// Puts `rec` in memory or the spool (see the module docs). On error, the
    /// record when it was not appended (`None`: it is in the spool's write
    /// buffer, which could not be written).
    fn place(&self, i: &mut Inner, rec: Record) -> Result<(), (Option<Record>, io::Error)> {
        let bytes = mem_size(&rec);
        let fits =
            i.mem.is_empty() || i.mem_bytes.saturating_add(bytes) <= self.limits.memory_bytes;
        let behind = self.note_behind(i);
        let to_memory =
            !i.durable && !i.spool.is_active() && ((i.mem.len() < self.capacity && fits) || behind);
        if to_memory {
            i.mem_bytes += bytes;
            i.mem.push_back(rec);
            if !behind {
                self.note_behind(i);
            }
            return Ok(());
        }
        let res = if i.durable {
            // The database is down: each record is on disk as it comes.
            i.spool.append(&[&rec]).map_err(|e| (Some(rec), e))
        } else {
            match i.spool.append_buffered(&rec) {
                Ok(()) => Ok(()),
                Err(BufferedError::NotAppended(e)) => Err((Some(rec), e)),
                Err(BufferedError::NotWritten(e)) => Err((None, e)),
            }
        };
        if res.is_ok() {
            self.stats.spilled_total.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    /// No more pushes will come: what the spool's write buffer holds is written.
    pub(in crate::sink) fn close(&self) {
        let mut i = self.inner.lock();
        i.closed = true;
        if let Err(e) = i.spool.flush() {
            log::error!(
                "sink: cannot write {} spilled records to the spool ({e}); retried at the \
                 next read or fsync",
                i.spool.unwritten()
            );
        }
        self.note_behind(&i);
        self.update_gauges(&i);
        drop(i);
        self.ready.notify_all();
    }

    /// Whether `close` was called.
    pub(in crate::sink) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Records waiting (memory + spool, handed-out ones included).
    pub(in crate::sink) fn len(&self) -> u64 {
        let i = self.inner.lock();
        i.mem.len() as u64 + i.spool.unread() + i.spool.inflight()
    }

    /// Closed and nothing waits (memory and spool empty, nothing handed out): the
    /// writer has nothing left to do, whatever the database's state.
    pub(in crate::sink) fn is_finished(&self) -> bool {
        let i = self.inner.lock();
        i.closed && i.mem.is_empty() && i.spool.unread() == 0 && i.spool.inflight() == 0
    }

    #[cfg(test)]
    /// True when nothing waits.
    pub(in crate::sink) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` records. Waits up to `idle` for a first record (returning an
    /// empty batch if none came), then up to `linger` for the batch to fill. Returns
    /// `None` once closed and empty.
    pub(in crate::sink) fn pull(
        &self,
        max: usize,
        linger: Duration,
        idle: Duration,
    ) -> Option<Batch> {
        let max = max.max(1);
        let start = Instant::now();
        let mut fill_deadline: Option<Instant> = None;
        let mut i = self.inner.lock();
        loop {
            let now = Instant::now();
            if !i.mem.is_empty() {
                let deadline = *fill_deadline.get_or_insert(now + linger);
                let full = i.mem.len() >= max || i.mem_bytes >= self.limits.batch_bytes;
                if full || i.closed || now >= deadline || i.spool.is_active() {
                    let mut n = 0;
                    let mut bytes = 0u64;
                    while n < i.mem.len().min(max) && (n == 0 || bytes < self.limits.batch_bytes) {
                        bytes += mem_size(&i.mem[n]);
                        n += 1;
                    }
                    i.mem_bytes = i.mem_bytes.saturating_sub(bytes);
                    let records: Vec<Record> = i.mem.drain(..n).collect();
                    self.note_behind(&i);
                    self.update_gauges(&i);
                    return Some(Batch {
                        records,
                        source: Source::Memory,
                    });
                }
                self.ready.wait_until(&mut i, deadline);
                continue;
            }
            if i.spool.unread() > 0 {
                let frames = match i.spool.read(max, self.limits.batch_bytes) {
                    Ok(x) => x,
                    Err(e) => {
                        log::error!("sink: cannot read the spool: {e}; retrying");
                        drop(i);
                        std::thread::sleep(Duration::from_millis(500));
                        i = self.inner.lock();
                        continue;
                    }
                };
                self.update_gauges(&i);
                drop(i);
                let n = frames.payloads.len() as u64;
                let end = frames.end;
                let records = self.decode_frames(frames);
                return Some(Batch {
                    records,
                    source: Source::Spool { end, frames: n },
                });
            }
            if i.closed {
                return None;
            }
            let until = start + idle;
            if now >= until {
                return Some(Batch {
                    records: Vec::new(),
                    source: Source::Memory,
                });
            }
            self.ready.wait_until(&mut i, until);
        }
    }

    /// The records of frames read from the spool (no JSON on the way). A frame
    /// whose checksum holds but which is no record (a bug, never seen) is counted
    /// and saved to the rejected file, like a corrupt stretch the read skipped.
    fn decode_frames(&self, f: Frames) -> Vec<Record> {
        if f.corrupt > 0 {
            self.stats
                .spool_corrupt
                .fetch_add(f.corrupt, Ordering::Relaxed);
        }
        let mut out = Vec::with_capacity(f.payloads.len());
        for p in f.payloads {
            let bytes = f.bytes.get(p).unwrap_or_default();
            match frame::decode(bytes) {
                Ok(r) => out.push(r),
                Err(e) => {
                    self.stats.spool_corrupt.fetch_add(1, Ordering::Relaxed);
                    log::error!(
                        "sink: a spool frame of {} bytes is no record ({e}); saved to the \
                         rejected file",
                        bytes.len()
                    );
                    let dir = self.inner.lock().spool.dir().to_path_buf();
                    crate::sink::rejected::save_rejected(
                        &dir,
                        "spool-frame",
                        &e.to_string(),
                        &String::from_utf8_lossy(bytes),
                    );
                }
            }
        }
        out
    }

    /// The batch is in the database.
    pub(in crate::sink) fn commit(&self, source: Source) {
        if let Source::Spool { end, frames } = source {
            let mut i = self.inner.lock();
            match i.spool.commit(end, frames) {
                Ok(true) => log::info!("sink: spool drained"),
                Ok(false) => {}
                Err(e) => log::warn!(
                    "sink: cannot record the spool offset ({e}); those records may be replayed \
                     again (harmless)"
                ),
            }
            self.update_gauges(&i);
            self.note_spool(&i);
            self.note_behind(&i);
            drop(i);
            self.ready.notify_all();
        }
    }

    /// The database is down: put `held` back at the head, move memory to the spool,
    /// fsync, and keep pushes on disk until `set_durable(false)`. Returns how many
    /// records were moved to disk.
    pub(in crate::sink) fn evacuate(&self, held: Option<Batch>) -> io::Result<usize> {
        let mut i = self.inner.lock();
        i.durable = true;
        self.note_behind(&i);
        if let Some(b) = held {
            match b.source {
                Source::Spool { .. } => i.spool.rewind(),
                Source::Memory => {
                    for r in b.records.into_iter().rev() {
                        i.mem_bytes += mem_size(&r);
                        i.mem.push_front(r);
                    }
                }
            }
        }
        let n = i.mem.len();
        if n > 0 {
            // In chunks, so a failure keeps what was not written in memory.
            while !i.mem.is_empty() {
                let k = i.mem.len().min(1000);
                let inner = &mut *i;
                let chunk: Vec<&Record> = inner.mem.iter().take(k).collect();
                if let Err(e) = inner.spool.append(&chunk) {
                    self.update_gauges(&i);
                    return Err(e);
                }
                let gone: u64 = i.mem.drain(..k).map(|r| mem_size(&r)).sum();
                i.mem_bytes = i.mem_bytes.saturating_sub(gone);
                self.stats
                    .spilled_total
                    .fetch_add(k as u64, Ordering::Relaxed);
            }
        }
        let r = i.spool.sync();
        self.update_gauges(&i);
        self.note_spool(&i);
        r.map(|_| n)
    }

    /// Moves up to `max` of the oldest records in memory to the spool and keeps
    /// pushes on disk (durable mode), releasing the lock afterwards so the writer
    /// can go on pulling: the drain moves, bit by bit, what the writer cannot
    /// commit in time. Returns how many records were moved.
    pub(crate) fn spill_front(&self, max: usize) -> io::Result<usize> {
        let mut i = self.inner.lock();
        i.durable = true;
        self.note_behind(&i);
        let k = i.mem.len().min(max);
        if k == 0 {
            return Ok(0);
        }
        let inner = &mut *i;
        let chunk: Vec<&Record> = inner.mem.iter().take(k).collect();
        let res = inner.spool.append(&chunk);
        if res.is_ok() {
            i.mem.drain(..k);
            self.stats
                .spilled_total
                .fetch_add(k as u64, Ordering::Relaxed);
        }
        self.update_gauges(&i);
        res.map(|_| k)
    }

    /// Leaves or enters durable mode.
    pub(in crate::sink) fn set_durable(&self, on: bool) {
        let mut i = self.inner.lock();
        i.durable = on;
        self.note_behind(&i);
    }

    /// fsyncs the spool if its oldest unsynced append is due (writing its write
    /// buffer first); returns how long until the next one is (`None`: nothing
    /// unsynced). Errors are logged (the next append or tick tries again). Also
    /// looks again at whether the sink is behind (the database's state may have
    /// changed while no record came).
    pub(in crate::sink) fn sync_if_due(&self) -> Option<Duration> {
        let mut i = self.inner.lock();
        self.note_behind(&i);
        let r = i.spool.sync_if_due();
        self.update_gauges(&i);
        match r {
            Ok(next) => next,
            Err(e) => {
                sync_failed(&e, "; retrying");
                Some(Duration::from_millis(500))
            }
        }
    }

    /// fsyncs the spool.
    pub(in crate::sink) fn sync(&self) -> io::Result<()> {
        self.inner.lock().spool.sync()
    }

    /// fsyncs the spool; a failure is logged (nothing is left to retry it: the
    /// caller is ending).
    pub(in crate::sink) fn sync_or_log(&self) {
        if let Err(e) = self.sync() {
            sync_failed(&e, "");
        }
    }

    /// The spool file.
    pub(in crate::sink) fn spool_path(&self) -> std::path::PathBuf {
        self.inner.lock().spool.path().to_path_buf()
    }

    /// The spool directory.
    pub(in crate::sink) fn spool_dir(&self) -> std::path::PathBuf {
        self.inner.lock().spool.dir().to_path_buf()
    }
}

/// Logs a failed fsync of the spool, with what follows (`then`).
fn sync_failed(e: &io::Error, then: &str) {
    log::error!("sink: fsync of the spool failed: {e}{then}");
}

/// The bytes a record holds in memory, as the memory budget counts them
/// (`Tweet::heap_bytes`: the struct and every string it owns).
fn mem_size(r: &Record) -> u64 {
    r.tweet.heap_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Tweet, User};

    fn rec(seq: u64) -> Record {
        Record {
            tweet: Arc::new(Tweet {
                received_unix_us: 1,
                ..Tweet::minimal(seq, "t", User::minimal(9, 1))
            }),
            sentiment: None,
            engagement: None,
        }
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.records.iter().map(|r| r.tweet.seq).collect()
    }

    fn buffer(dir: &std::path::Path, cap: usize) -> Buffer {
        let (spool, _) = Spool::open(dir, &crate::sink::buffer::spool::fsync_dir).unwrap();
        Buffer::new(
            spool,
            cap,
            Limits::default(),
            Arc::new(SinkStats::default()),
        )
    }

    const Z: Duration = Duration::ZERO;

    #[test]
    fn overflow_spills_and_order_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let b = buffer(dir.path(), 3);
        for s in 1..=5 {
            b.push(rec(s));
        }
        assert_eq!(b.stats.buffered.load(Ordering::Relaxed), 3);
        assert_eq!(b.stats.spilled.load(Ordering::Relaxed), 2);
        let x = b.pull(2, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![1, 2]);
        b.commit(x.source);
        // Spilling: a new record goes behind the spooled ones even though memory has room.
        b.push(rec(6));
        let x = b.pull(10, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![3]);
        b.commit(x.source);
        let x = b.pull(10, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![4, 5, 6]);
        b.commit(x.source);
        // Drained: back to memory.
        b.push(rec(7));
        assert_eq!(b.stats.buffered.load(Ordering::Relaxed), 1);
        assert_eq!(b.stats.spilled.load(Ordering::Relaxed), 0);
        b.close();
        assert_eq!(seqs(&b.pull(10, Z, Z).unwrap()), vec![7]);
        assert!(b.pull(10, Z, Z).is_none());
    }

    #[test]
    fn scores_come_back_from_the_spool_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let b = buffer(dir.path(), 1);
        // Scores whose shortest decimal form a best-effort float parser reads back one
        // ulp off (seen in an end-to-end run whose records went through the spool).
        let scores = [
            -0.23076923076923078,
            0.1 + 0.2,
            1.0 / 3.0,
            -2.0 / 13.0,
            5e-324,
        ];
        for (i, v) in scores.iter().enumerate() {
            b.push(Record {
                sentiment: Some(*v),
                engagement: Some(-*v),
                ..rec(i as u64 + 1)
            });
        }
        b.close();
        let mut back = Vec::new();
        while let Some(x) = b.pull(10, Z, Z) {
            back.extend(x.records.iter().map(|r| (r.sentiment, r.engagement)));
            b.commit(x.source);
        }
        let want: Vec<_> = scores.iter().map(|v| (Some(*v), Some(-*v))).collect();
        assert_eq!(back.len(), want.len());
        for ((got_s, got_e), (want_s, want_e)) in back.iter().zip(&want) {
            assert_eq!(got_s.map(f64::to_bits), want_s.map(f64::to_bits));
            assert_eq!(got_e.map(f64::to_bits), want_e.map(f64::to_bits));
        }
    }

    #[test]
    fn evacuate_keeps_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = buffer(dir.path(), 100);
            for s in 1..=5 {
                b.push(rec(s));
            }
            let held = b.pull(2, Z, Z).unwrap();
            assert_eq!(b.evacuate(Some(held)).unwrap(), 5);
            b.push(rec(6)); // durable mode: straight to disk
            assert_eq!(b.stats.buffered.load(Ordering::Relaxed), 0);
            assert_eq!(b.stats.spilled.load(Ordering::Relaxed), 6);
            // Spool-sourced batch put back: rewound, read again first.
            let held = b.pull(4, Z, Z).unwrap();
            assert_eq!(seqs(&held), vec![1, 2, 3, 4]);
            b.evacuate(Some(held)).unwrap();
            // Process "dies" here.
        }
        let b = buffer(dir.path(), 100);
        b.close();
        let mut all = vec![];
        while let Some(x) = b.pull(4, Z, Z) {
            all.extend(seqs(&x));
            b.commit(x.source);
        }
        assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
        assert!(b.is_empty());
    }

    #[test]
    fn pull_lingers_for_a_full_batch_and_returns_empty_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let b = Arc::new(buffer(dir.path(), 100));
        let x = b.pull(10, Z, Duration::from_millis(5)).unwrap();
        assert!(x.records.is_empty());
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || {
            for s in 1..=3 {
                b2.push(rec(s));
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // A long linger: the batch is returned when full (3), long before 60 s.
        let x = b
            .pull(3, Duration::from_secs(60), Duration::from_secs(60))
            .unwrap();
        assert_eq!(seqs(&x), vec![1, 2, 3]);
        t.join().unwrap();
    }

    fn buffer_with(dir: &std::path::Path, limits: Limits) -> Buffer {
        let (spool, _) = Spool::open(dir, &crate::sink::buffer::spool::fsync_dir).unwrap();
        Buffer::new(spool, 1000, limits, Arc::new(SinkStats::default()))
    }

    #[test]
    fn memory_is_bounded_in_bytes_and_batches_stop_at_their_byte_cap() {
        let dir = tempfile::tempdir().unwrap();
        let one = rec(1).tweet.heap_bytes();
        let b = buffer_with(
            dir.path(),
            Limits {
                memory_bytes: 3 * one,
                batch_bytes: 2 * one,
                ..Limits::default()
            },
        );
        for s in 1..=5 {
            b.push(rec(s));
        }
        // Three fit in memory by bytes (the count bound is 1000); two spill.
        assert_eq!(b.stats.buffered.load(Ordering::Relaxed), 3);
        assert_eq!(b.stats.spilled.load(Ordering::Relaxed), 2);
        // Batches stop at two records' bytes, from memory and from the spool.
        let x = b.pull(100, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![1, 2]);
        b.commit(x.source);
        let x = b.pull(100, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![3]);
        b.commit(x.source);
        let x = b.pull(100, Z, Z).unwrap();
        assert!(matches!(x.source, Source::Spool { .. }));
        // From the spool the cap counts frame bytes (smaller than in memory): both fit.
        assert_eq!(x.records.len(), 2);
        b.commit(x.source);
        assert!(b.is_empty());
    }

    #[test]
    fn a_full_spool_is_reported_to_the_budget_until_commits_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 30);
        let b = buffer_with(
            dir.path(),
            Limits {
                memory_bytes: 0,
                spool_max_bytes: Some(1),
                budget: Arc::clone(&budget),
                ..Limits::default()
            },
        );
        b.push(rec(1)); // memory takes one record even at 0 bytes
        assert!(!budget.spool_full());
        b.push(rec(2)); // spilled: the spool is at its maximum
        assert!(budget.spool_full());
        assert!(b.stats.spool_bytes.load(Ordering::Relaxed) > 0);
        b.push(rec(3)); // never refused: it still lands in the spool
        assert_eq!(b.len(), 3);
        b.close();
        while let Some(x) = b.pull(10, Z, Z) {
            b.commit(x.source);
        }
        assert!(!budget.spool_full());
        assert_eq!(b.stats.spool_bytes.load(Ordering::Relaxed), 0);
    }

    fn spool_size(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join(crate::sink::buffer::spool::SPOOL_FILE))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    #[test]
    fn an_overflow_reaches_the_spool_in_batches_and_comes_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let b = buffer(dir.path(), 1);
        let n = 5_000u64;
        for s in 1..=n {
            b.push(rec(s));
        }
        let writes = b.inner.lock().spool.writes();
        let size = spool_size(dir.path());
        // One record in memory, the rest spilled in writes of 256 KiB.
        assert!(writes >= 1, "{writes}");
        assert!(
            writes <= size / super::super::spool::WRITE_BUFFER as u64 + 1,
            "{writes} writes for {size} bytes"
        );
        assert_eq!(b.stats.spilled.load(Ordering::Relaxed), n - 1);
        b.close();
        let mut all = Vec::new();
        while let Some(x) = b.pull(1_000, Z, Z) {
            all.extend(seqs(&x));
            b.commit(x.source);
        }
        assert_eq!(all, (1..=n).collect::<Vec<_>>());
        assert!(b.inner.lock().spool.writes() <= writes + 1);
    }

    #[test]
    fn while_the_database_is_down_each_push_is_written_as_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let b = buffer(dir.path(), 100);
        b.evacuate(None).unwrap();
        let mut last = 0;
        for s in 1..=3 {
            b.push(rec(s));
            let size = spool_size(dir.path());
            assert!(size > last, "push {s} not on disk");
            last = size;
        }
    }

    fn blocking(dir: &std::path::Path, cap: usize, budget: &Arc<Budget>) -> Buffer {
        let (spool, _) = Spool::open(dir, &crate::sink::buffer::spool::fsync_dir).unwrap();
        let stats = Arc::new(SinkStats::default());
        stats.breaker.apply(crate::sink::health::Event::ProbeOk);
        Buffer::new(
            spool,
            cap,
            Limits {
                budget: Arc::clone(budget),
                when_full: WhenFull::Block,
                ..Limits::default()
            },
            stats,
        )
    }

    #[test]
    fn block_keeps_records_in_memory_and_holds_ingest_while_the_database_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget::new(1 << 30);
        let b = blocking(dir.path(), 2, &budget);
        b.push(rec(1));
        assert!(!budget.sink_behind());
        b.push(rec(2)); // memory holds its share: the readers wait
        assert!(budget.sink_behind());
        assert_eq!(
            budget.acquire_timeout(1, Z).unwrap_err(),
            crate::budget::Wait::SinkBehind
        );
        b.push(rec(3)); // on its way already: kept, in memory
        assert_eq!(b.stats.buffered.load(Ordering::Relaxed), 3);
        assert_eq!(b.stats.spilled_total.load(Ordering::Relaxed), 0);
        assert_eq!(spool_size(dir.path()), 0);
        let x = b.pull(10, Z, Z).unwrap();
        assert_eq!(seqs(&x), vec![1, 2, 3]);
        assert!(!budget.sink_behind(), "room again: ingest resumes");
        b.commit(x.source);
        // The database goes down: the outage path spills as with `spill`.
        b.push(rec(4));
        b.push(rec(5));
        assert!(budget.sink_behind());
        b.stats
            .breaker
            .apply(crate::sink::health::Event::WriteFailed);
        assert!(b.sync_if_due().is_none());
        assert!(
            !budget.sink_behind(),
            "down: ingest is let go, records spill"
        );
        b.push(rec(6));
        assert_eq!(b.stats.spilled_total.load(Ordering::Relaxed), 1);
        assert!(!budget.sink_behind());
        b.close();
        let mut all = Vec::new();
        while let Some(x) = b.pull(10, Z, Z) {
            all.extend(seqs(&x));
            b.commit(x.source);
        }
        assert_eq!(all, vec![4, 5, 6]);
    }
}
