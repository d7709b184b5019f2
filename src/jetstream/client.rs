//! The blocking facade: one `nats-runtime` thread owns a current-thread tokio runtime
//! and the `async-nats` connection; callers send [`Cmd`]s on crossbeam channels.
//!
//! Two relay threads (`nats-relay`, `nats-relay-pub`) move commands from the crossbeam
//! channels into the runtime's own queues, so the runtime never blocks on a crossbeam
//! `recv`. Publishing has a queue of its own: the runtime takes the next publish only
//! while its window of unacknowledged publishes has room, so a full window (NATS slow or
//! away) holds the publishers back, while every other command still runs.
//!
//! A publish whose ack fails (timeout, NATS away) is sent again, with the same
//! `Nats-Msg-Id`, after a pause: nothing is dropped, and a publish that did arrive is
//! dropped by the stream's duplicate window. Acks of the consumer are fire-and-forget
//! publishes; one lost while NATS is away means a redelivery, which the upserts absorb.
//!
//! Every answer goes back on a crossbeam channel with room for it (`try_send`), so the
//! runtime thread never blocks on a slow caller.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use crossbeam_channel::{bounded, Receiver, Sender};
use futures_util::StreamExt;
use log::{info, warn};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{JsError, REQUEST_TIMEOUT};
use crate::log_limit::LogLimiter;
use crate::shutdown::Shutdown;
use crate::supervise::Backoff;

/// The stream (or meta stream) wanted: created when missing, checked when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Its name.
    pub name: String,
    /// Its subjects.
    pub subjects: Vec<String>,
    /// Replicas (1 to 5).
    pub replicas: usize,
    /// Messages kept per subject (`-1`: no limit).
    pub max_msgs_per_subject: i64,
    /// The window within which a repeated `Nats-Msg-Id` is dropped.
    pub duplicate_window: Duration,
    /// Oldest message kept (`ZERO`: no limit).
    pub max_age: Duration,
    /// Most bytes kept (`-1`: no limit).
    pub max_bytes: i64,
}

impl StreamSpec {
    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            num_replicas: self.replicas,
            max_messages_per_subject: self.max_msgs_per_subject,
            max_messages: -1,
            max_bytes: self.max_bytes,
            max_age: self.max_age,
            max_consumers: -1,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }

    /// What of `have` differs from this spec: `field: existing != wanted`.
    fn differences(&self, have: &stream::Config) -> Vec<String> {
        let mut d = Vec::new();
        let mut check = |field: &str, existing: String, wanted: String| {
            if existing != wanted {
                d.push(format!("{field}: {existing} != {wanted}"));
            }
        };
        let mut subjects = have.subjects.clone();
        subjects.sort();
        let mut want = self.subjects.clone();
        want.sort();
        check("subjects", format!("{subjects:?}"), format!("{want:?}"));
        check(
            "retention",
            format!("{:?}", have.retention),
            "Limits".into(),
        );
        check("storage", format!("{:?}", have.storage), "File".into());
        check(
            "replicas",
            have.num_replicas.max(1).to_string(),
            self.replicas.to_string(),
        );
        check(
            "max_msgs_per_subject",
            have.max_messages_per_subject.to_string(),
            self.max_msgs_per_subject.to_string(),
        );
        d
    }
}

/// What [`Client::ensure_stream`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    /// The stream was created now.
    pub created: bool,
    /// Its last sequence.
    pub last_seq: u64,
}

/// One message delivered by the durable consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its subject.
    pub subject: String,
    /// Its data.
    pub payload: Vec<u8>,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// How many times it has been delivered (1 the first time).
    pub delivered: u64,
    /// When JetStream stored it, µs since the epoch.
    pub published_us: u64,
    /// Where its acks go.
    pub reply: String,
}

/// What a pull sends back: the messages one by one as they arrive, then `Done`.
#[derive(Debug)]
pub enum Pulled {
    /// One message.
    Msg(Delivery),
    /// The pull is over (`Err`: it failed; pull again after a pause).
    Done(Result<(), JsError>),
}

/// An acknowledgement of a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// Done: committed or rejected.
    Ack,
    /// Still in progress: the ack wait starts again.
    Progress,
}

/// Live counters of the client (all monotonic but the gauges).
#[derive(Debug, Default)]
pub struct JsStats {
    /// 1 while the connection is up (a gauge).
    pub connected: AtomicU64,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
    /// Messages published and acknowledged by the stream.
    pub published: AtomicU64,
    /// Of those, acknowledged on `<stream>.1` and `<stream>.2`.
    pub published_streams: [AtomicU64; 2],
    /// Of those, dropped by the duplicate window (already in the stream).
    pub duplicates: AtomicU64,
    /// Publishes sent again after their ack failed.
    pub publish_retries: AtomicU64,
    /// Publishes waiting for their ack now (a gauge).
    pub publish_window: AtomicU64,
    /// Messages delivered by the consumer.
    pub delivered: AtomicU64,
    /// Of those, redeliveries (delivered more than once).
    pub redelivered: AtomicU64,
    /// Acks sent.
    pub acks: AtomicU64,
    /// In-progress acks sent.
    pub progress_acks: AtomicU64,
    /// Acks that could not be sent (NATS away): those messages are redelivered.
    pub acks_lost: AtomicU64,
    /// The consumer's messages not yet delivered (a gauge, polled every second).
    pub consumer_pending: AtomicU64,
    /// The consumer's messages delivered and not yet acked (a gauge).
    pub consumer_ack_pending: AtomicU64,
    /// The consumer's redelivered messages (the server's count, a gauge).
    pub consumer_redelivered: AtomicU64,
    /// The consumer's ack floor (stream sequence; a gauge).
    pub consumer_ack_floor: AtomicU64,
}

/// A point-in-time copy of [`JsStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JsSnapshot {
    /// Whether NATS is reachable now.
    pub connected: bool,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Messages published and acknowledged.
    pub published: u64,
    /// Of those, dropped as duplicates.
    pub duplicates: u64,
    /// Publishes sent again.
    pub publish_retries: u64,
    /// Publishes waiting for their ack.
    pub publish_window: u64,
    /// Messages delivered by the consumer.
    pub delivered: u64,
    /// Of those, redeliveries.
    pub redelivered: u64,
    /// Acks sent.
    pub acks: u64,
    /// In-progress acks sent.
    pub progress_acks: u64,
    /// Acks not sent (NATS away).
    pub acks_lost: u64,
    /// The consumer's pending count.
    pub consumer_pending: u64,
    /// The consumer's ack-pending count.
    pub consumer_ack_pending: u64,
    /// The consumer's redelivered count.
    pub consumer_redelivered: u64,
    /// The consumer's ack floor.
    pub consumer_ack_floor: u64,
}

impl JsStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> JsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JsSnapshot {
            connected: g(&self.connected) == 1,
            disconnects: g(&self.disconnects),
            published: g(&self.published),
            duplicates: g(&self.duplicates),
            publish_retries: g(&self.publish_retries),
            publish_window: g(&self.publish_window),
            delivered: g(&self.delivered),
            redelivered: g(&self.redelivered),
            acks: g(&self.acks),
            progress_acks: g(&self.progress_acks),
            acks_lost: g(&self.acks_lost),
            consumer_pending: g(&self.consumer_pending),
            consumer_ack_pending: g(&self.consumer_ack_pending),
            consumer_redelivered: g(&self.consumer_redelivered),
            consumer_ack_floor: g(&self.consumer_ack_floor),
        }
    }
}

type Reply<T> = Sender<Result<T, JsError>>;

/// A command to the runtime thread.
enum Cmd {
    EnsureStream(StreamSpec, Reply<Ensured>),
    GetLast(String, String, Reply<Option<Vec<u8>>>),
    PutLast(String, Vec<u8>, Reply<()>),
    Subjects(String, String, Reply<Vec<String>>),
    BindConsumer {
        stream: String,
        durable: String,
        ack_wait: Duration,
        max_ack_pending: i64,
        reply: Reply<()>,
    },
    Pull {
        max: usize,
        expires: Duration,
        out: Sender<Pulled>,
    },
    Ack(Vec<String>, AckKind),
}

/// What travels the publish queue: a message, or a flush, answered once every message
/// queued before it is acknowledged.
enum Outgoing {
    Msg(Pub),
    Flush(Reply<()>),
}

/// One publish: its subject, `Nats-Msg-Id` and data.
struct Pub {
    subject: String,
    msg_id: String,
    payload: Vec<u8>,
}

/// The blocking handle of the JetStream connection. Cheap to clone; the runtime thread
/// ends when every handle (and every [`Publisher`]) is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    cmds: Sender<Cmd>,
    pubs: Sender<Outgoing>,
    stats: Arc<JsStats>,
    version: String,
    url: String,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outgoing")
    }
}

/// Publishes through the window (see the module doc); [`Publisher::publish`] blocks
/// while it is full.
#[derive(Debug, Clone)]
pub struct Publisher {
    pubs: Sender<Outgoing>,
}

impl Publisher {
    /// Queues one message; blocks while the window is full. `false` once the client
    /// has ended.
    pub fn publish(&self, subject: String, msg_id: String, payload: Vec<u8>) -> bool {
        self.pubs
            .send(Outgoing::Msg(Pub {
                subject,
                msg_id,
                payload,
            }))
            .is_ok()
    }
}

/// How often the connection state and the consumer's counts are read.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Pause before a failed publish is sent again.
const REPUBLISH_AFTER: Duration = Duration::from_millis(500);
/// How long an ack may wait for room in the client's outgoing buffer.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

impl Client {
    /// Connects to `url` (waiting, with backoff, while the server cannot be reached, until
    /// `shutdown`), checks that it is 2.9 or newer and runs JetStream. `window` bounds the
    /// publishes awaiting their ack.
    pub fn connect(
        url: &str,
        name: &str,
        window: usize,
        shutdown: &Shutdown,
    ) -> Result<Client, JsError> {
        let stats = Arc::new(JsStats::default());
        let (cmd_tx, cmd_rx) = bounded::<Cmd>(64);
        let (pub_tx, pub_rx) = bounded::<Outgoing>(window.clamp(1, 1 << 16));
        let (ready_tx, ready_rx) = bounded::<Result<String, JsError>>(1);
        let (tok_cmd_tx, tok_cmd_rx) = mpsc::channel::<Cmd>(64);
        let (tok_pub_tx, tok_pub_rx) = mpsc::channel::<Outgoing>(16);
        // The threads end by themselves once every handle is dropped.
        crate::stats::spawn_thread("nats-relay", None, move || {
            while let Ok(c) = cmd_rx.recv() {
                if tok_cmd_tx.blocking_send(c).is_err() {
                    break;
                }
            }
        })
        .map_err(JsError::Spawn)?;
        crate::stats::spawn_thread("nats-relay-pub", None, move || {
            while let Ok(p) = pub_rx.recv() {
                if tok_pub_tx.blocking_send(p).is_err() {
                    break;
                }
            }
        })
        .map_err(JsError::Spawn)?;
        {
            let (url, name, stats, shutdown) = (
                url.to_owned(),
                name.to_owned(),
                Arc::clone(&stats),
                shutdown.clone(),
            );
            let window = window.max(1);
            crate::stats::spawn_thread("nats-runtime", None, move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.try_send(Err(JsError::Spawn(e)));
                        return;
                    }
                };
                rt.block_on(run(
                    url, name, window, stats, shutdown, ready_tx, tok_cmd_rx, tok_pub_rx,
                ));
            })
            .map_err(JsError::Spawn)?;
        }
        let version = loop {
            match ready_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(v)) => break v,
                Ok(Err(e)) => return Err(e),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if shutdown.is_triggered() {
                        return Err(JsError::Stopped);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(if shutdown.is_triggered() {
                        JsError::Stopped
                    } else {
                        JsError::Gone
                    })
                }
            }
        };
        Ok(Client {
            cmds: cmd_tx,
            pubs: pub_tx,
            stats,
            version,
            url: url.to_owned(),
        })
    }

    /// The server's version, as it announced it.
    pub fn server_version(&self) -> &str {
        &self.version
    }

    /// The URL connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<JsStats> {
        Arc::clone(&self.stats)
    }

    /// A handle that publishes through the window.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            pubs: self.pubs.clone(),
        }
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, JsError> {
        let (tx, rx) = bounded(1);
        self.cmds.send(make(tx)).map_err(|_| JsError::Gone)?;
        rx.recv().map_err(|_| JsError::Gone)?
    }

    /// Creates the stream when missing; an existing one must match `spec`
    /// ([`JsError::StreamMismatch`] otherwise).
    pub fn ensure_stream(&self, spec: &StreamSpec) -> Result<Ensured, JsError> {
        self.ask(|r| Cmd::EnsureStream(spec.clone(), r))
    }

    /// The last message on `subject` of `stream`, `None` when there is none.
    pub fn get_last(&self, stream: &str, subject: &str) -> Result<Option<Vec<u8>>, JsError> {
        self.ask(|r| Cmd::GetLast(stream.to_owned(), subject.to_owned(), r))
    }

    /// Publishes `payload` on `subject` and waits for the stream's ack.
    pub fn put_last(&self, subject: &str, payload: Vec<u8>) -> Result<(), JsError> {
        self.ask(|r| Cmd::PutLast(subject.to_owned(), payload, r))
    }

    /// The subjects of `stream` matching `filter` that hold a message.
    pub fn subjects(&self, stream: &str, filter: &str) -> Result<Vec<String>, JsError> {
        self.ask(|r| Cmd::Subjects(stream.to_owned(), filter.to_owned(), r))
    }

    /// Binds the durable pull consumer `durable` of `stream` (created when missing:
    /// explicit acks, everything from the start, redelivered after `ack_wait`, at most
    /// `max_ack_pending` unacked). Its counts are then polled into [`JsStats`].
    pub fn bind_consumer(
        &self,
        stream: &str,
        durable: &str,
        ack_wait: Duration,
        max_ack_pending: i64,
    ) -> Result<(), JsError> {
        self.ask(|reply| Cmd::BindConsumer {
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            ack_wait,
            max_ack_pending,
            reply,
        })
    }

    /// Pulls up to `max` messages of the bound consumer, waiting at most `expires`; they
    /// arrive on the returned channel one by one, then [`Pulled::Done`].
    pub fn pull(&self, max: usize, expires: Duration) -> Result<Receiver<Pulled>, JsError> {
        let (out, rx) = bounded(max + 1);
        self.cmds
            .send(Cmd::Pull { max, expires, out })
            .map_err(|_| JsError::Gone)?;
        Ok(rx)
    }

    /// Acknowledges the deliveries whose reply subjects are given (fire-and-forget).
    pub fn ack(&self, replies: Vec<String>, kind: AckKind) -> Result<(), JsError> {
        if replies.is_empty() {
            return Ok(());
        }
        self.cmds
            .send(Cmd::Ack(replies, kind))
            .map_err(|_| JsError::Gone)
    }

    /// Waits until every publish queued before this call is acknowledged by the stream.
    pub fn flush(&self) -> Result<(), JsError> {
        let (tx, rx) = bounded(1);
        self.pubs
            .send(Outgoing::Flush(tx))
            .map_err(|_| JsError::Gone)?;
        rx.recv().map_err(|_| JsError::Gone)?
    }

    /// [`Client::flush`], giving up at `deadline`; whether everything was acknowledged.
    pub fn flush_by(&self, deadline: Instant) -> bool {
        let (tx, rx) = bounded(1);
        if self
            .pubs
            .send_deadline(Outgoing::Flush(tx), deadline)
            .is_err()
        {
            return false;
        }
        matches!(rx.recv_deadline(deadline), Ok(Ok(())))
    }
}

fn api(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> JsError {
    move |e| JsError::Api {
        what,
        cause: e.to_string(),
    }
}

/// Connects, retrying until `shutdown`; checks the server.
async fn connect(
    url: &str,
    name: &str,
    shutdown: &Shutdown,
    stats: &Arc<JsStats>,
) -> Result<(async_nats::Client, String), JsError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut log = LogLimiter::every(Duration::from_secs(15));
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::from_entropy();
    loop {
        if shutdown.is_triggered() {
            return Err(JsError::Stopped);
        }
        let ev_stats = Arc::clone(stats);
        let opts = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .max_reconnects(None)
            .event_callback(move |ev| {
                let st = Arc::clone(&ev_stats);
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            st.connected.store(1, Ordering::Relaxed);
                            info!("NATS: connected");
                        }
                        async_nats::Event::Disconnected => {
                            st.connected.store(0, Ordering::Relaxed);
                            st.disconnects.fetch_add(1, Ordering::Relaxed);
                            warn!("NATS: disconnected; reconnecting (publishes and acks wait)");
                        }
                        _ => {}
                    }
                }
            });
        match opts.connect(servers(url)?).await {
            Ok(client) => {
                let info = client.server_info();
                stats.connected.store(1, Ordering::Relaxed);
                if !version_at_least(&info.version, 2, 9) {
                    return Err(JsError::TooOld {
                        url: url.to_owned(),
                        version: info.version,
                    });
                }
                if !info.jetstream {
                    return Err(JsError::NoJetStream {
                        url: url.to_owned(),
                        version: info.version,
                    });
                }
                return Ok((client, info.version));
            }
            Err(e) => {
                use async_nats::ConnectErrorKind as K;
                if matches!(e.kind(), K::ServerParse) {
                    return Err(JsError::Url {
                        url: url.to_owned(),
                        cause: e.to_string(),
                    });
                }
                if log.check(Instant::now()).is_some() {
                    warn!(
                        "NATS at {url} cannot be reached ({e}); retrying (said again at most \
                         every 15 s)"
                    );
                }
                let wait = backoff.next_wait(None, &mut rng);
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if shutdown.is_triggered() {
                        return Err(JsError::Stopped);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// The servers of `url`: one URL, or several comma-separated (the NATS convention for
/// the nodes of a cluster; the client connects to any and moves to another when it is lost).
fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, JsError> {
    let addrs = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| JsError::Url {
                    url: u.to_owned(),
                    cause: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(JsError::Url {
            url: url.to_owned(),
            cause: "no server given".into(),
        });
    }
    Ok(addrs)
}

/// Whether `version` (`2.9.10`, `v2.10.0-beta`) is at least `major.minor`.
pub(crate) fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let v = version.trim_start_matches('v');
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// One publish awaiting its ack.
type Acked = (Pub, Result<bool, String>);

struct Runtime {
    client: async_nats::Client,
    js: jetstream::Context,
    stats: Arc<JsStats>,
    consumer: Option<(
        stream::Stream,
        jetstream::consumer::Consumer<pull::Config>,
        String,
    )>,
    window: usize,
    acks: JoinSet<Acked>,
    retry: VecDeque<(Instant, Pub)>,
    flushes: Vec<Reply<()>>,
    retry_log: LogLimiter,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    url: String,
    name: String,
    window: usize,
    stats: Arc<JsStats>,
    shutdown: Shutdown,
    ready: Sender<Result<String, JsError>>,
    mut cmds: mpsc::Receiver<Cmd>,
    mut pubs: mpsc::Receiver<Outgoing>,
) {
    let (client, version) = match connect(&url, &name, &shutdown, &stats).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.try_send(Err(e));
            return;
        }
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    info!("NATS {version} at {url}: JetStream is enabled");
    let _ = ready.try_send(Ok(version));
    let mut rt = Runtime {
        client,
        js,
        stats,
        consumer: None,
        window,
        acks: JoinSet::new(),
        retry: VecDeque::new(),
        flushes: Vec::new(),
        retry_log: LogLimiter::every(Duration::from_secs(15)),
    };
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pubs_open = true;
    loop {
        let in_flight = rt.acks.len() + rt.retry.len();
        rt.stats
            .publish_window
            .store(in_flight as u64, Ordering::Relaxed);
        if in_flight == 0 && !rt.flushes.is_empty() {
            for f in rt.flushes.drain(..) {
                let _ = f.try_send(Ok(()));
            }
        }
        let room = pubs_open && in_flight < rt.window;
        let retry_due = rt.retry.front().map(|(at, _)| *at);
        tokio::select! {
            c = cmds.recv() => match c {
                Some(c) => rt.command(c).await,
                None => break,
            },
            p = pubs.recv(), if room => match p {
                Some(Outgoing::Msg(p)) => rt.publish(p).await,
                Some(Outgoing::Flush(reply)) => rt.flushes.push(reply),
                None => pubs_open = false,
            },
            Some(done) = rt.acks.join_next(), if !rt.acks.is_empty() => rt.acked(done),
            _ = sleep_until(retry_due), if retry_due.is_some() => {
                if let Some((_, p)) = rt.retry.pop_front() {
                    rt.stats.publish_retries.fetch_add(1, Ordering::Relaxed);
                    rt.publish(p).await;
                }
            }
            _ = poll.tick() => rt.poll().await,
        }
    }
    // Every handle is gone: what is still in the window is waited for, briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !rt.acks.is_empty() && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), rt.acks.join_next()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), rt.client.flush()).await;
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

impl Runtime {
    async fn publish(&mut self, p: Pub) {
        let msg = jetstream::message::PublishMessage::build()
            .message_id(&p.msg_id)
            .payload(p.payload.clone().into());
        match self.js.send_publish(p.subject.clone(), msg).await {
            Ok(fut) => {
                self.acks.spawn(async move {
                    let r = fut.await.map(|a| a.duplicate).map_err(|e| e.to_string());
                    (p, r)
                });
            }
            Err(e) => self.again(p, &e.to_string()),
        }
    }

    fn again(&mut self, p: Pub, why: &str) {
        if self.retry_log.check(Instant::now()).is_some() {
            warn!(
                "NATS: a publish was not acknowledged ({why}); it is sent again with the same \
                 Nats-Msg-Id (said again at most every 15 s)"
            );
        }
        self.retry.push_back((Instant::now() + REPUBLISH_AFTER, p));
    }

    fn acked(&mut self, done: Result<Acked, tokio::task::JoinError>) {
        match done {
            Ok((p, Ok(duplicate))) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                match p.subject.rsplit('.').next() {
                    Some("1") => self.stats.published_streams[0].fetch_add(1, Ordering::Relaxed),
                    Some("2") => self.stats.published_streams[1].fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                if duplicate {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok((p, Err(e))) => self.again(p, &e),
            Err(e) => warn!("NATS: a publish ack task failed: {e}"),
        }
    }

    async fn poll(&mut self) {
        let up = self.client.connection_state() == async_nats::connection::State::Connected;
        self.stats.connected.store(u64::from(up), Ordering::Relaxed);
        if !up {
            return;
        }
        if let Some((_, consumer, _)) = self.consumer.as_mut() {
            if let Ok(Ok(info)) = tokio::time::timeout(REQUEST_TIMEOUT, consumer.info()).await {
                let s = &self.stats;
                s.consumer_pending
                    .store(info.num_pending, Ordering::Relaxed);
                s.consumer_ack_pending
                    .store(info.num_ack_pending as u64, Ordering::Relaxed);
                s.consumer_redelivered
                    .store(info.num_redelivered as u64, Ordering::Relaxed);
                s.consumer_ack_floor
                    .store(info.ack_floor.stream_sequence, Ordering::Relaxed);
            }
        }
    }

    async fn command(&mut self, c: Cmd) {
        match c {
            Cmd::EnsureStream(spec, reply) => {
                let _ = reply.try_send(self.ensure_stream(&spec).await);
            }
            Cmd::GetLast(stream, subject, reply) => {
                let _ = reply.try_send(self.get_last(&stream, &subject).await);
            }
            Cmd::PutLast(subject, payload, reply) => {
                let r = async {
                    let ack = self
                        .js
                        .publish(subject, payload.into())
                        .await
                        .map_err(|e| api("publishing")(&e))?;
                    ack.await.map_err(|e| api("publishing")(&e))?;
                    Ok(())
                }
                .await;
                let _ = reply.try_send(r);
            }
            Cmd::Subjects(stream, filter, reply) => {
                let r = async {
                    let s = self
                        .js
                        .get_stream(&stream)
                        .await
                        .map_err(|e| api("reading a stream")(&e))?;
                    let mut it = s
                        .info_with_subjects(filter)
                        .await
                        .map_err(|e| api("listing subjects")(&e))?;
                    let mut out = Vec::new();
                    while let Some(x) = it.next().await {
                        out.push(x.map_err(|e| api("listing subjects")(&e))?.0);
                    }
                    Ok(out)
                }
                .await;
                let _ = reply.try_send(r);
            }
            Cmd::BindConsumer {
                stream,
                durable,
                ack_wait,
                max_ack_pending,
                reply,
            } => {
                let r = self
                    .bind(&stream, &durable, ack_wait, max_ack_pending)
                    .await;
                let _ = reply.try_send(r);
            }
            Cmd::Pull { max, expires, out } => self.pull(max, expires, out),
            Cmd::Ack(replies, kind) => self.ack(replies, kind).await,
        }
    }

    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<Ensured, JsError> {
        let (mut s, created) = match self.js.get_stream(&spec.name).await {
            Ok(s) => (s, false),
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                let s = self
                    .js
                    .create_stream(spec.config())
                    .await
                    .map_err(|e| api("creating a stream")(&e))?;
                (s, true)
            }
            Err(e) => return Err(api("reading a stream")(&e)),
        };
        // Also a stream created now: another ingest may have made it a moment before.
        let info = s.info().await.map_err(|e| api("reading a stream")(&e))?;
        let diff = spec.differences(&info.config);
        if !diff.is_empty() {
            return Err(JsError::StreamMismatch {
                stream: spec.name.clone(),
                differences: diff.join(", "),
            });
        }
        Ok(Ensured {
            created,
            last_seq: info.state.last_sequence,
        })
    }

    async fn get_last(&self, stream: &str, subject: &str) -> Result<Option<Vec<u8>>, JsError> {
        let s = self
            .js
            .get_stream_no_info(stream)
            .await
            .map_err(|e| api("reading a stream")(&e))?;
        match s.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some(m.payload.to_vec())),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(api("reading the last message of a subject")(&e)),
        }
    }

    async fn bind(
        &mut self,
        stream: &str,
        durable: &str,
        ack_wait: Duration,
        max_ack_pending: i64,
    ) -> Result<(), JsError> {
        let s = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| api("reading the stream")(&e))?;
        let cfg = pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_wait,
            max_ack_pending,
            max_deliver: -1,
            ..Default::default()
        };
        let consumer = s
            .get_or_create_consumer(durable, cfg)
            .await
            .map_err(|e| api("binding the durable consumer")(&e))?;
        self.consumer = Some((s, consumer, durable.to_owned()));
        self.poll().await;
        Ok(())
    }

    fn pull(&mut self, max: usize, expires: Duration, out: Sender<Pulled>) {
        let Some((_, consumer, _)) = self.consumer.as_ref() else {
            let _ = out.try_send(Pulled::Done(Err(JsError::Api {
                what: "pulling",
                cause: "no consumer is bound".into(),
            })));
            return;
        };
        let consumer = consumer.clone();
        let stats = Arc::clone(&self.stats);
        // A task of its own: a pull waits up to `expires` while other commands run.
        tokio::spawn(async move {
            let batch = consumer
                .batch()
                .max_messages(max)
                .expires(expires)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    let _ = out.try_send(Pulled::Done(Err(api("pulling")(&e))));
                    return;
                }
            };
            while let Some(m) = batch.next().await {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = out.try_send(Pulled::Done(Err(api("pulling")(&e))));
                        return;
                    }
                };
                let Ok(info) = m.info() else { continue };
                let (stream_seq, delivered) = (info.stream_sequence, info.delivered.max(1) as u64);
                let published_us = (info.published.unix_timestamp_nanos() / 1000).max(0) as u64;
                let Some(reply) = m.reply.as_ref().map(|r| r.to_string()) else {
                    continue;
                };
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                if delivered > 1 {
                    stats.redelivered.fetch_add(1, Ordering::Relaxed);
                }
                let d = Delivery {
                    subject: m.subject.to_string(),
                    payload: m.payload.to_vec(),
                    stream_seq,
                    delivered,
                    published_us,
                    reply,
                };
                if out.try_send(Pulled::Msg(d)).is_err() {
                    return;
                }
            }
            let _ = out.try_send(Pulled::Done(Ok(())));
        });
    }

    async fn ack(&mut self, replies: Vec<String>, kind: AckKind) {
        let body: &'static [u8] = match kind {
            AckKind::Ack => b"+ACK",
            AckKind::Progress => b"+WPI",
        };
        let counter = match kind {
            AckKind::Ack => &self.stats.acks,
            AckKind::Progress => &self.stats.progress_acks,
        };
        let n = replies.len() as u64;
        if self.client.connection_state() != async_nats::connection::State::Connected {
            self.stats.acks_lost.fetch_add(n, Ordering::Relaxed);
            return;
        }
        for r in replies {
            let sent =
                tokio::time::timeout(ACK_TIMEOUT, self.client.publish(r, body.to_vec().into()))
                    .await;
            match sent {
                Ok(Ok(())) => counter.fetch_add(1, Ordering::Relaxed),
                _ => self.stats.acks_lost.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_url_names_every_server() {
        let s = servers("nats://127.0.0.1:4222, nats://10.0.0.2:4223,").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].port(), 4223);
        assert!(matches!(servers(" , "), Err(JsError::Url { .. })));
        assert!(matches!(
            servers("nats://127.0.0.1:4222,nats://[::1"),
            Err(JsError::Url { .. })
        ));
    }

    #[test]
    fn versions_compare() {
        assert!(version_at_least("2.9.10", 2, 9));
        assert!(version_at_least("v2.10.0-beta.1", 2, 9));
        assert!(version_at_least("3.0.0", 2, 9));
        assert!(!version_at_least("2.8.4", 2, 9));
        assert!(!version_at_least("garbage", 2, 9));
    }
}
