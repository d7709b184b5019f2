//! `run --jetstream`: the pipeline reads the JetStream stream that `tweetflow ingest`
//! fills, instead of the tweet server.
//!
//! ```text
//!  JetStream consumer ─pull─▶ fetcher ×2 ─Ingest─▶ dispatcher … aggregator ─▶ tap ─▶ sink
//!        ▲                        │ (Tracker: held messages)                         │
//!        └───────── ack ───── acker ◀──────── committed ingest_seqs per batch ───────┘
//!  hashtags-share: this instance's sketch to <stream>_meta.sketch.<instance> every second,
//!                  every instance's read back and merged
//! ```
//!
//! [`attach`] connects, waits until ingest has stored the sequence offset and the
//! lexicon in the meta stream, and binds the durable consumer that every instance
//! shares. The rest of the pipeline is the embedded one.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{info, warn};
use parking_lot::Mutex;

use super::config::JetStreamRun;
use super::error::PipelineError;
use crate::jetstream::{names, Client, JsError, JsStats};
use crate::log_limit::LogLimiter;
use crate::score::Lexicon;
use crate::shutdown::Shutdown;
use crate::source::Tracker;
use crate::stats::sketch::{merged_top, TopHashtags};
use crate::stats::status::{JetStreamStatus, TagCount};

/// The merged top hashtags, and how many instances' sketches are in them.
pub(crate) type MergedTop = Arc<Mutex<(Vec<(String, u64)>, usize)>>;

/// What the status, the metrics and the dashboard read of the JetStream side.
#[derive(Debug, Clone)]
pub struct JsProbe {
    /// The client's counters and the consumer's counts.
    pub stats: Arc<JsStats>,
    /// The messages this instance holds.
    pub tracker: Arc<Tracker>,
    /// The merged top hashtags and how many instances' sketches are in them.
    pub merged: MergedTop,
}

impl JsProbe {
    /// The status's JetStream figures now, and the merged top hashtags.
    pub(super) fn status(&self) -> (JetStreamStatus, Vec<TagCount>) {
        let n = self.stats.snapshot();
        let (merged, instances) = self.merged.lock().clone();
        (
            JetStreamStatus {
                nats_up: n.connected,
                pending: n.consumer_pending,
                ack_pending: n.consumer_ack_pending,
                redelivered: n.consumer_redelivered,
                held: self.tracker.len() as u64,
                delivered: n.delivered,
                delivered_again: n.redelivered,
                acks: n.acks,
                progress_acks: n.progress_acks,
                acks_lost: n.acks_lost,
                instances: instances as u64,
            },
            merged
                .into_iter()
                .map(|(tag, count)| TagCount { tag, count })
                .collect(),
        )
    }
}

/// The connection, the stream's offset and the lexicon, the consumer bound.
pub(super) struct Attached {
    pub(super) client: Client,
    pub(super) offset: u64,
    pub(super) lexicon: Lexicon,
}

fn js(what: &'static str) -> impl Fn(JsError) -> PipelineError {
    move |source| match source {
        JsError::Stopped => PipelineError::Stopped,
        source => PipelineError::JetStream { what, source },
    }
}

/// Connects, waits for the offset and the lexicon that ingest stores, binds the consumer.
pub(super) fn attach(cfg: &JetStreamRun, shutdown: &Shutdown) -> Result<Attached, PipelineError> {
    for (what, name) in [("--stream", &cfg.stream), ("--consumer", &cfg.consumer)] {
        if !names::valid_name(name) {
            return Err(PipelineError::JetStream {
                what: "the names",
                source: JsError::Url {
                    url: name.clone(),
                    cause: format!("{what} must be 1 to 200 of A-Z a-z 0-9 - _"),
                },
            });
        }
    }
    info!("connecting to NATS at {}", cfg.url);
    let client = Client::connect(
        &cfg.url,
        &format!("tweetflow-run-{}", cfg.instance),
        1,
        shutdown,
    )
    .map_err(js("connecting"))?;
    let meta = names::meta_stream(&cfg.stream);
    let mut log = LogLimiter::every(Duration::from_secs(15));
    let (offset, text) = loop {
        let got = client
            .get_last(&meta, &names::meta_subject(&cfg.stream, "offset"))
            .and_then(|o| {
                let lex = client.get_last(&meta, &names::meta_subject(&cfg.stream, "lexicon"))?;
                Ok((o.as_deref().and_then(names::decode_offset), lex))
            });
        match got {
            Ok((Some(o), Some(l))) => break (o, l),
            Ok(_) | Err(JsError::Api { .. }) => {
                if log.check(Instant::now()).is_some() {
                    warn!(
                        "waiting for `tweetflow ingest` to create the stream {} and store its \
                         offset and lexicon in {meta} (said again at most every 15 s)",
                        cfg.stream
                    );
                }
                if shutdown.sleep(Duration::from_millis(500)) {
                    return Err(PipelineError::Stopped);
                }
            }
            Err(e) => return Err(js("reading the meta stream")(e)),
        }
    };
    let text = String::from_utf8_lossy(&text);
    let lexicon = Lexicon::parse(&text).map_err(|source| {
        PipelineError::Lexicon(crate::source::SourceError::Lexicon {
            url: names::meta_subject(&cfg.stream, "lexicon"),
            source,
        })
    })?;
    client
        .bind_consumer(
            &cfg.stream,
            &cfg.consumer,
            cfg.ack_wait,
            cfg.max_ack_pending.min(i64::MAX as usize) as i64,
        )
        .map_err(js("binding the consumer"))?;
    info!(
        "reading stream {} through the durable consumer {} (offset {offset}, lexicon {} \
         entries from {meta}); instance {}",
        cfg.stream,
        cfg.consumer,
        lexicon.len(),
        cfg.instance
    );
    Ok(Attached {
        client,
        offset,
        lexicon,
    })
}

/// How often the sketch is shared and the others' merged.
const SHARE_EVERY: Duration = Duration::from_secs(1);

/// Starts `hashtags-share`: every second it publishes this instance's sketch and
/// merges every instance's, until `done`.
pub(super) fn spawn_sharer(
    client: Client,
    cfg: &JetStreamRun,
    hashtags: Arc<Mutex<TopHashtags>>,
    merged: MergedTop,
    done: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    let meta = names::meta_stream(&cfg.stream);
    let own = names::meta_subject(&cfg.stream, &format!("sketch.{}", cfg.instance));
    let filter = names::meta_subject(&cfg.stream, "sketch.*");
    crate::stats::spawn_thread("hashtags-share", None, move || {
        let mut log = LogLimiter::every(Duration::from_secs(60));
        while !done.sleep(SHARE_EVERY) {
            let bytes = hashtags.lock().share_bytes();
            let shared = client.put_last(&own, bytes).and_then(|()| {
                let mut shares = Vec::new();
                for subject in client.subjects(&meta, &filter)? {
                    if let Some(b) = client.get_last(&meta, &subject)? {
                        shares.push(b);
                    }
                }
                Ok(shares)
            });
            match shared {
                Ok(shares) => *merged.lock() = merged_top(&shares, 10),
                Err(e) => {
                    if log.check(Instant::now()).is_some() {
                        warn!("sharing the hashtag sketch failed ({e}); trying again");
                    }
                }
            }
        }
    })
}
