//! The readers of `tweetflow ingest`: each SSE event's data is published, byte for
//! byte, as one message on `<stream>.1` / `<stream>.2` of the JetStream stream.
//!
//! The connection, reconnection, `Last-Event-ID` and byte limits are those of the
//! `run` readers ([`super::reader`]); only what happens to an event differs. Events are
//! not decoded here: a malformed one travels like any other and is counted by the `run`
//! instance that reads it.
//!
//! `Nats-Msg-Id` (see [`names::msg_id`]): `<n>:id:<id>` for an event that carries an id
//! of its own (one that differs from the event before it), else a digest of the data.
//! A replay after a reconnect or a restart thus repeats the id, and JetStream drops it
//! when it arrives within the stream's duplicate window (`--duplicate-window`, 2 minutes
//! by default). A kill message without an id gets an id of its own (this process's start
//! time and a counter): every kill is delivered, none is taken for a replay of an earlier
//! one.
//!
//! While the publish window is full (NATS slow or away) [`Publisher::publish`] blocks,
//! the socket is not read, and TCP holds the tweet server back: nothing is dropped.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::decode::KILL_MESSAGE;
use super::reader::{spawn_event_reader, Events};
use super::sse::SseEvent;
use super::{SourceConfig, SourceStats};
use crate::jetstream::{names, Publisher};
use crate::model::unix_micros;
use crate::shutdown::Shutdown;

struct Publish {
    n: u8,
    subject: String,
    publisher: Publisher,
    stats: Arc<SourceStats>,
    prev_id: String,
    nonce: u64,
    kills: u64,
}

impl Events for Publish {
    fn event(&mut self, ev: &SseEvent, _received: u64) -> bool {
        let own_id = ev.id != self.prev_id;
        if own_id {
            self.prev_id.clone_from(&ev.id);
        }
        let kill = ev.data == KILL_MESSAGE;
        let id = if own_id {
            names::msg_id(self.n, &ev.id, &ev.data)
        } else if kill {
            self.kills += 1;
            format!("{}:k:{}:{}", self.n, self.nonce, self.kills)
        } else {
            names::msg_id(self.n, "", &ev.data)
        };
        if kill {
            self.stats.kills.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.tweets.fetch_add(1, Ordering::Relaxed);
        }
        self.publisher
            .publish(self.subject.clone(), id, ev.data.as_bytes().to_vec())
    }
}

/// Starts the reader of stream `n` (1 or 2) of `cfg.server`, publishing every event to
/// `<stream>.<n>`. `stats.tweets` counts the events published other than kills.
pub(crate) fn spawn_publishing_reader(
    n: u8,
    cfg: SourceConfig,
    stream: &str,
    publisher: Publisher,
    stats: Arc<SourceStats>,
    shutdown: Shutdown,
) -> io::Result<JoinHandle<()>> {
    let events = Publish {
        n,
        subject: names::data_subject(stream, n),
        publisher,
        stats: Arc::clone(&stats),
        prev_id: String::new(),
        nonce: unix_micros(),
        kills: 0,
    };
    spawn_event_reader(n, cfg, stats, shutdown, events)
}
