//! Paced receiving: a busy stage takes its input in batches, so its senders
//! never pay for waking it.
//!
//! A bounded crossbeam channel makes a `send` cheap while its receiver is
//! running, and costly when the receiver is parked: the sender then wakes it
//! (a futex system call, often an inter-processor interrupt, and a context
//! switch on the other side). A stage that keeps up with its input empties the
//! channel after almost every message and parks, so at thousands of messages a
//! second nearly every send wakes it.
//!
//! [`Paced`] turns that around. It takes what is waiting; when the channel is
//! empty right after it took something, it naps for `nap` (default 5 ms) and
//! looks again, instead of parking. While messages keep coming the receiver is
//! never parked, so no sender wakes it: one timer wake-up per nap replaces one
//! wake-up per message, and each nap's messages are handled as one batch.
//! Only when a nap brought nothing does the caller block as before, so an idle
//! stage costs nothing. A message waits at most one nap longer.
//!
//! The stage stays a loop over its input that ends when the input disconnects:
//! [`Polled::Disconnected`] (and the `Err` of [`Paced::recv`]) come only once
//! the channel is empty and every sender is gone.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, TryRecvError};

/// The default nap of a busy receiver.
pub(crate) const DEFAULT_NAP: Duration = Duration::from_millis(5);

/// What [`Paced::poll`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Polled<T> {
    /// A message.
    Msg(T),
    /// Nothing, also after a nap: the caller should block.
    Empty,
    /// Empty, and every sender is gone.
    Disconnected,
}

/// A receiver's pacing state: naps instead of parking while it is busy.
#[derive(Debug, Clone)]
pub(crate) struct Paced {
    nap: Duration,
    /// Took a message since the last nap.
    busy: bool,
}

impl Default for Paced {
    fn default() -> Self {
        Paced::new(DEFAULT_NAP)
    }
}

impl Paced {
    /// Naps of `nap` while busy (`Duration::ZERO`: never nap, block at once).
    pub(crate) fn new(nap: Duration) -> Paced {
        Paced { nap, busy: false }
    }

    /// A waiting message; if none and the receiver was busy, one nap (at most
    /// `limit`) and a second look; [`Polled::Empty`] when the caller should block.
    fn poll_within<T>(&mut self, rx: &Receiver<T>, limit: Duration) -> Polled<T> {
        match rx.try_recv() {
            Ok(m) => {
                self.busy = true;
                return Polled::Msg(m);
            }
            Err(TryRecvError::Disconnected) => return Polled::Disconnected,
            Err(TryRecvError::Empty) => {}
        }
        let nap = self.nap.min(limit);
        if !self.busy || nap.is_zero() {
            return Polled::Empty;
        }
        self.busy = false;
        std::thread::sleep(nap);
        match rx.try_recv() {
            Ok(m) => {
                self.busy = true;
                Polled::Msg(m)
            }
            Err(TryRecvError::Disconnected) => Polled::Disconnected,
            Err(TryRecvError::Empty) => Polled::Empty,
        }
    }

    /// A waiting message, or one after a nap while busy; [`Polled::Empty`]
    /// means block (for a stage that blocks on more than this channel).
    pub(crate) fn poll<T>(&mut self, rx: &Receiver<T>) -> Polled<T> {
        self.poll_within(rx, Duration::MAX)
    }

    /// Marks the receiver busy after the caller took a message by blocking.
    pub(crate) fn took(&mut self) {
        self.busy = true;
    }

    /// Like [`Receiver::recv`], paced.
    pub(crate) fn recv<T>(&mut self, rx: &Receiver<T>) -> Result<T, RecvError> {
        match self.poll(rx) {
            Polled::Msg(m) => Ok(m),
            Polled::Disconnected => Err(RecvError),
            Polled::Empty => {
                let m = rx.recv()?;
                self.busy = true;
                Ok(m)
            }
        }
    }

    /// Like [`Receiver::recv_timeout`], paced; a nap never outlasts `timeout`.
    pub(crate) fn recv_timeout<T>(
        &mut self,
        rx: &Receiver<T>,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        let start = std::time::Instant::now();
        match self.poll_within(rx, timeout) {
            Polled::Msg(m) => Ok(m),
            Polled::Disconnected => Err(RecvTimeoutError::Disconnected),
            Polled::Empty => {
                let left = timeout.saturating_sub(start.elapsed());
                let m = rx.recv_timeout(left)?;
                self.busy = true;
                Ok(m)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    #[test]
    fn keeps_order_and_loses_nothing_across_naps() {
        let (tx, rx) = bounded(16);
        let tx2 = tx.clone();
        let a = std::thread::spawn(move || (0..5000u32).for_each(|i| tx.send((0, i)).unwrap()));
        let b = std::thread::spawn(move || (0..5000u32).for_each(|i| tx2.send((1, i)).unwrap()));
        let mut p = Paced::new(Duration::from_micros(200));
        let mut next = [0u32; 2];
        while let Ok((s, i)) = p.recv(&rx) {
            assert_eq!(i, next[s], "sender {s} out of order");
            next[s] += 1;
        }
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(next, [5000, 5000]);
    }

    #[test]
    fn disconnected_only_once_empty() {
        let (tx, rx) = bounded(4);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        let mut p = Paced::default();
        assert_eq!(p.poll(&rx), Polled::Msg(1));
        assert_eq!(p.recv_timeout(&rx, Duration::from_secs(1)), Ok(2));
        assert_eq!(p.poll(&rx), Polled::Disconnected);
        assert_eq!(p.recv(&rx), Err(RecvError));
    }

    #[test]
    fn an_idle_receiver_blocks_at_once_and_a_busy_one_naps_first() {
        let (tx, rx) = bounded::<u8>(4);
        let mut p = Paced::new(Duration::from_millis(1));
        // Never busy: nothing to wait for, so Empty without a nap.
        assert_eq!(p.poll(&rx), Polled::Empty);
        assert_eq!(
            p.recv_timeout(&rx, Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        // Busy: after a message an empty channel gets one nap, then Empty.
        tx.send(7).unwrap();
        assert_eq!(p.poll(&rx), Polled::Msg(7));
        assert!(p.busy);
        assert_eq!(p.poll(&rx), Polled::Empty);
        assert!(!p.busy, "one nap, then the caller blocks");
        // A nap is never longer than the timeout: with 0 left it does not nap.
        p.took();
        assert_eq!(
            p.recv_timeout(&rx, Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(p.busy, "a zero timeout left no time for a nap");
    }
}
