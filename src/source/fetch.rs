//! The readers of `run --jetstream`: fetcher threads pull the durable consumer's
//! messages and send what they decode on, as the SSE readers do; an acker thread acks
//! each message once every record from it is committed.
//!
//! **Sequence numbers.** A tweet's `ingest_seq` is `offset + 2·stream_seq + k`
//! ([`names::ingest_seq`]): the stream's sequence gives one global order over every
//! instance, so the latest-wins upserts stay right whichever instance commits first.
//!
//! **Ack after commit.** Before a message's tweets are sent on, its stream sequence is
//! entered in the [`Tracker`] with one bit per record (`k`). The sink tells which
//! `ingest_seq`s each committed batch held (rejected records included: they are in
//! `rejected.jsonl`); the acker clears their bits and acks a message when none is left.
//! A kill or a malformed event has no record: it is acked once sent on (or counted).
//! Messages still tracked get an in-progress ack every third of the ack wait, so slow
//! ones are not redelivered meanwhile. A message redelivered while this instance still
//! holds it is not sent on twice: its newer reply subject is kept for the ack.
//!
//! What is never acked (the process killed, the database down at the drain's end) is
//! redelivered by JetStream after the ack wait, to whichever instance pulls next; the
//! upserts make a second commit harmless.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};
use parking_lot::Mutex;

use super::reader::{Decoder, Forwarded};
use super::SourceStats;
use crate::budget::Budget;
use crate::jetstream::{names, AckKind, Client, Pulled};
use crate::log_limit::LogLimiter;
use crate::model::{Ingest, Seq, SeqGen};
use crate::shutdown::Shutdown;

/// One message in this instance's hands.
#[derive(Debug)]
struct Held {
    /// One bit per record not yet committed.
    outstanding: u8,
    /// Where its ack goes (the latest delivery's).
    reply: String,
    /// When it was delivered or last marked in progress.
    touched: Instant,
}

/// The messages this instance holds, by stream sequence.
#[derive(Debug)]
pub struct Tracker {
    offset: u64,
    held: Mutex<HashMap<u64, Held>>,
    /// Redeliveries of a message this instance still held (not sent on twice).
    pub held_redeliveries: AtomicU64,
}

impl Tracker {
    /// A tracker for the stream whose sequence offset is `offset`.
    pub fn new(offset: u64) -> Tracker {
        Tracker {
            offset,
            held: Mutex::new(HashMap::new()),
            held_redeliveries: AtomicU64::new(0),
        }
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.held.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.lock().is_empty()
    }

    /// Enters a delivery with both record bits set; `false` when it is held already
    /// (its reply subject is then updated and it is not to be sent on again).
    fn enter(&self, stream_seq: u64, reply: &str) -> bool {
        let mut h = self.held.lock();
        if let Some(e) = h.get_mut(&stream_seq) {
            e.reply = reply.to_owned();
            e.touched = Instant::now();
            return false;
        }
        h.insert(
            stream_seq,
            Held {
                outstanding: 0b11,
                reply: reply.to_owned(),
                touched: Instant::now(),
            },
        );
        true
    }

    /// Keeps only the bits of the records that were sent on; the reply subject when
    /// nothing is left to wait for.
    fn settle(&self, stream_seq: u64, sent: u8) -> Option<String> {
        let mut h = self.held.lock();
        let e = h.get_mut(&stream_seq)?;
        e.outstanding &= sent;
        if e.outstanding == 0 {
            return h.remove(&stream_seq).map(|e| e.reply);
        }
        None
    }

    /// Forgets a message that was not sent on (its output disconnected): not acked, so
    /// JetStream redelivers it.
    fn forget(&self, stream_seq: u64) {
        self.held.lock().remove(&stream_seq);
    }

    /// Clears the records of `seqs` (committed); the reply subjects of the messages now
    /// complete.
    pub fn committed(&self, seqs: &[Seq]) -> Vec<String> {
        let mut done = Vec::new();
        let mut h = self.held.lock();
        for &seq in seqs {
            let Some((stream_seq, k)) = names::message_of(self.offset, seq) else {
                continue;
            };
            if let Some(e) = h.get_mut(&stream_seq) {
                e.outstanding &= !(1u8 << k);
                if e.outstanding == 0 {
                    if let Some(e) = h.remove(&stream_seq) {
                        done.push(e.reply);
                    }
                }
            }
        }
        done
    }

    /// The reply subjects of the messages untouched for `every`, marked touched now.
    fn due_progress(&self, every: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut h = self.held.lock();
        h.values_mut()
            .filter(|e| now.duration_since(e.touched) >= every)
            .map(|e| {
                e.touched = now;
                e.reply.clone()
            })
            .collect()
    }
}

/// How the fetchers pull.
#[derive(Debug, Clone)]
pub(crate) struct FetchConfig {
    /// The data stream's name.
    pub stream: String,
    /// The stream's sequence offset (kept in its meta stream).
    pub offset: u64,
    /// Most messages one pull asks for.
    pub batch: usize,
    /// How long one pull waits for messages.
    pub expires: Duration,
    /// Most messages this instance holds unacked at once.
    pub max_held: usize,
}

/// Starts fetcher thread `i`: it pulls the consumer bound on `client` and sends what
/// it decodes to `out` (stream 1's tweets counted in `stats[0]`, stream 2's in
/// `stats[1]`), until `shutdown`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_fetcher(
    i: usize,
    cfg: FetchConfig,
    client: Client,
    tracker: Arc<Tracker>,
    out: Sender<Ingest>,
    stats: [Arc<SourceStats>; 2],
    budget: Arc<Budget>,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    crate::stats::spawn_thread(format!("fetch-{i}"), None, move || {
        // The decoders only use their own SeqGen through `Events`; stamps come from the
        // stream sequence here.
        let unused = Arc::new(SeqGen::starting_at(0));
        let mut decoders = [1u8, 2].map(|n| {
            Decoder::new(
                n,
                Arc::clone(&unused),
                out.clone(),
                Arc::clone(&stats[usize::from(n - 1)]),
                Arc::clone(&budget),
                shutdown.clone(),
            )
        });
        drop(out);
        let mut log = LogLimiter::every(Duration::from_secs(15));
        info!("fetcher {i}: pulling stream {}", cfg.stream);
        'pulls: while !shutdown.is_triggered() {
            let room = cfg.max_held.saturating_sub(tracker.len()).min(cfg.batch);
            if room == 0 {
                shutdown.sleep(Duration::from_millis(20));
                continue;
            }
            let rx = match client.pull(room, cfg.expires) {
                Ok(rx) => rx,
                Err(_) => break,
            };
            loop {
                let d = match rx.recv() {
                    Ok(Pulled::Msg(d)) => d,
                    Ok(Pulled::Done(Ok(()))) => break,
                    Ok(Pulled::Done(Err(e))) => {
                        if log.check(Instant::now()).is_some() {
                            warn!("fetcher {i}: a pull failed ({e}); pulling again");
                        }
                        shutdown.sleep(Duration::from_millis(500));
                        break;
                    }
                    Err(_) => break 'pulls,
                };
                if !tracker.enter(d.stream_seq, &d.reply) {
                    tracker.held_redeliveries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let n = names::stream_of_subject(&cfg.stream, &d.subject).unwrap_or(1);
                let st = &stats[usize::from(n - 1)];
                st.events.fetch_add(1, Ordering::Relaxed);
                st.bytes
                    .fetch_add(d.payload.len() as u64, Ordering::Relaxed);
                let decoder = &mut decoders[usize::from(n - 1)];
                let data = String::from_utf8_lossy(&d.payload);
                let mut k = 0u64;
                let (offset, stream_seq) = (cfg.offset, d.stream_seq);
                let forwarded = decoder.forward(&data, d.published_us, &mut || {
                    let s = names::ingest_seq(offset, stream_seq, k);
                    k += 1;
                    s
                });
                let sent = match forwarded {
                    Forwarded::Stopped => {
                        tracker.forget(d.stream_seq);
                        break 'pulls;
                    }
                    Forwarded::Kill | Forwarded::Malformed => 0,
                    Forwarded::Tweets(1) => 0b01,
                    Forwarded::Tweets(_) => 0b11,
                };
                if let Some(reply) = tracker.settle(d.stream_seq, sent) {
                    let _ = client.ack(vec![reply], AckKind::Ack);
                }
            }
        }
        info!("fetcher {i}: stopped");
    })
}

/// Starts the acker: it acks the messages whose records `committed` reports (each item
/// the `ingest_seq`s of one committed batch), and marks the others in progress every
/// `progress_every`. It ends once `done` is triggered (after the sink has ended) and
/// what `committed` still holds is acked, or when `committed` disconnects.
pub(crate) fn spawn_acker(
    client: Client,
    tracker: Arc<Tracker>,
    committed: Receiver<Vec<Seq>>,
    progress_every: Duration,
    done: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    crate::stats::spawn_thread("acker", None, move || {
        let tick = progress_every.clamp(Duration::from_millis(10), Duration::from_millis(200));
        loop {
            let stop = done.is_triggered();
            match committed.recv_timeout(tick) {
                Ok(seqs) => {
                    let done = tracker.committed(&seqs);
                    let _ = client.ack(done, AckKind::Ack);
                    continue;
                }
                Err(RecvTimeoutError::Timeout) if stop => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let due = tracker.due_progress(progress_every);
            let _ = client.ack(due, AckKind::Progress);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_done_when_each_of_its_records_is() {
        let off = 1_000;
        let t = Tracker::new(off);
        assert!(t.enter(5, "r5"));
        assert!(
            !t.enter(5, "r5b"),
            "a redelivery while held is not entered twice"
        );
        assert_eq!(t.settle(5, 0b11), None);
        assert!(t.committed(&[names::ingest_seq(off, 5, 1)]).is_empty());
        assert_eq!(t.committed(&[names::ingest_seq(off, 5, 0)]), vec!["r5b"]);
        assert!(t.is_empty());
        // One record only: its commit before the settle still completes it.
        assert!(t.enter(6, "r6"));
        assert!(t.committed(&[names::ingest_seq(off, 6, 0)]).is_empty());
        assert_eq!(t.settle(6, 0b01), Some("r6".to_owned()));
        // A kill: nothing to wait for.
        assert!(t.enter(7, "r7"));
        assert_eq!(t.settle(7, 0), Some("r7".to_owned()));
        // Seqs of no held message are ignored.
        assert!(t.committed(&[3, off + 100]).is_empty());
    }
}
