//! The sink's spool seen from outside: its file name, the records a spool file
//! holds (read while a process may append to it), the spool alone for the sink
//! bench, and its frame format for the fuzzer.

use std::io;
use std::path::Path;

use crate::model::Record;
use crate::sink::buffer::frame::{self, Next, FILE_HEADER, FRAME_HEADER};
use crate::sink::buffer::spool::{self, fsync_dir, Spool};

/// The spool's file in the spool directory.
pub const SPOOL_FILE: &str = spool::SPOOL_FILE;

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The spool alone, for the sink bench: spill batches, read them back as
/// records, as the buffer does.
#[derive(Debug)]
pub struct SpoolBench {
    spool: Spool,
}

impl SpoolBench {
    /// Opens (creating) a spool under `dir`.
    pub fn open(dir: &Path) -> io::Result<SpoolBench> {
        let (spool, _) = Spool::open(dir, &fsync_dir)?;
        Ok(SpoolBench { spool })
    }

    /// Appends `records` in one write, as the buffer spills a batch (no fsync).
    pub fn spill(&mut self, records: &[Record]) -> io::Result<()> {
        self.spool.append(&records.iter().collect::<Vec<_>>())
    }

    /// fsyncs what was spilled.
    pub fn sync(&mut self) -> io::Result<()> {
        self.spool.sync()
    }

    /// Reads back up to `max` records, decoded, and commits them.
    pub fn read_back(&mut self, max: usize) -> io::Result<Vec<Record>> {
        let f = self.spool.read(max, u64::MAX)?;
        let n = f.payloads.len() as u64;
        let mut out = Vec::with_capacity(f.payloads.len());
        for p in &f.payloads {
            let bytes = f.bytes.get(p.clone()).unwrap_or_default();
            out.push(frame::decode(bytes).map_err(|e| bad_data(e.to_string()))?);
        }
        self.spool.commit(f.end, n)?;
        Ok(out)
    }
}

/// The records in the spool file at `path`, read without opening the spool (so
/// also while a process appends to it): the valid frames after the header, up to
/// a frame still being written; corrupt stretches are skipped. Empty when the
/// file is missing or empty.
pub fn spool_file_records(path: &Path) -> io::Result<Vec<Record>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let Some(mut rest) = bytes.strip_prefix(&FILE_HEADER[..]) else {
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        return Err(bad_data(format!("{} has no spool header", path.display())));
    };
    let mut out = Vec::new();
    loop {
        match frame::next_frame(rest) {
            Next::Frame { len } => {
                let f = rest.get(..len).unwrap_or_default();
                out.push(frame::decode(frame_payload(f)).map_err(|e| bad_data(e.to_string()))?);
                rest = rest.get(len..).unwrap_or_default();
            }
            Next::Corrupt { skip } => rest = rest.get(skip..).unwrap_or_default(),
            Next::Incomplete { .. } => return Ok(out),
        }
    }
}

/// What the spool's frame reader finds at the start of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameNext {
    /// A whole valid frame of `len` bytes, header included.
    Frame {
        /// The whole frame's length.
        len: usize,
    },
    /// The input ends inside what may be a valid frame of `need` bytes.
    Incomplete {
        /// The length the frame claims, header included.
        need: usize,
    },
    /// Not a valid frame here: skip `skip` bytes (at least 1).
    Corrupt {
        /// Bytes to skip.
        skip: usize,
    },
}

/// What starts `buf`, as the spool reads it.
pub fn next_frame(buf: &[u8]) -> FrameNext {
    match frame::next_frame(buf) {
        Next::Frame { len } => FrameNext::Frame { len },
        Next::Incomplete { need } => FrameNext::Incomplete { need },
        Next::Corrupt { skip } => FrameNext::Corrupt { skip },
    }
}

/// The payload of a whole frame (what follows its header).
pub fn frame_payload(frame: &[u8]) -> &[u8] {
    frame.get(FRAME_HEADER..).unwrap_or_default()
}

/// Appends `r` to `out` as one frame, as the spool writes it; `false` when the
/// record is too large for a frame.
pub fn encode_frame(r: &Record, out: &mut Vec<u8>) -> bool {
    frame::encode(r, out)
}

/// The record of a frame's payload, or why it is none.
pub fn decode_frame(payload: &[u8]) -> Result<Record, String> {
    frame::decode(payload).map_err(|e| e.to_string())
}
