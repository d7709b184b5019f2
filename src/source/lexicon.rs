//! Fetching the sentiment lexicon from `<server>/emotion_values`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use log::{debug, info};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::{join_url, SourceConfig, SourceError};
use crate::score::Lexicon;
use crate::shutdown::Shutdown;
use crate::supervise::Backoff;

/// Fetches and parses `<server>/emotion_values` (`word<TAB>score` lines joined
/// by `\r\n` or `\n`; phrases kept as phrases, see [`Lexicon::parse`]).
///
/// Retries with the capped exponential backoff of `cfg` (connect and read
/// timeouts from `cfg` too) until the server answers `200` with a body, or
/// until `shutdown` ([`SourceError::Shutdown`]). A `200` whose body holds no
/// valid line is [`SourceError::Lexicon`], not retried. Failed attempts are
/// logged at debug level only: telling the user that the server is not
/// answering is the caller's job (the pipeline does it on a timer, see
/// `FetchProgress`).
pub fn fetch_lexicon(
    server: &str,
    cfg: &SourceConfig,
    shutdown: &Shutdown,
) -> Result<Lexicon, SourceError> {
    fetch_lexicon_reporting(server, cfg, shutdown, &FetchProgress::default())
}

/// How far [`fetch_lexicon`] got, for whoever reports the wait.
#[derive(Debug, Default)]
pub(crate) struct FetchProgress {
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl FetchProgress {
    /// Attempts that failed so far, and the error of the last one.
    pub(crate) fn failures(&self) -> (u64, Option<String>) {
        (
            self.failed.load(Ordering::Relaxed),
            self.last_error.lock().clone(),
        )
    }
}

/// [`fetch_lexicon`], recording every failed attempt in `progress`.
pub(crate) fn fetch_lexicon_reporting(
    server: &str,
    cfg: &SourceConfig,
    shutdown: &Shutdown,
    progress: &FetchProgress,
) -> Result<Lexicon, SourceError> {
    fetch_lexicon_text(server, cfg, shutdown, progress).map(|(_, lex)| lex)
}

/// [`fetch_lexicon_reporting`], returning the body as served beside the parsed lexicon
/// (`tweetflow ingest` publishes the body for the `run` instances).
pub(crate) fn fetch_lexicon_text(
    server: &str,
    cfg: &SourceConfig,
    shutdown: &Shutdown,
    progress: &FetchProgress,
) -> Result<(String, Lexicon), SourceError> {
    let url = join_url(server, "/emotion_values");
    let agent = super::agent(cfg)?;
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut rng = SmallRng::from_entropy();
    let mut attempt = 0u64;
    loop {
        if shutdown.is_triggered() {
            return Err(SourceError::Shutdown);
        }
        attempt += 1;
        let result = agent
            .get(&url)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|resp| {
                resp.into_string()
                    .map_err(|e| format!("reading the body: {e}"))
            });
        match result {
            Ok(text) => {
                let lex = Lexicon::parse(&text).map_err(|source| SourceError::Lexicon {
                    url: url.clone(),
                    source,
                })?;
                info!(
                    "lexicon: {} entries from {url} ({} lines skipped)",
                    lex.len(),
                    lex.skipped()
                );
                return Ok((text, lex));
            }
            Err(e) => {
                debug!("lexicon: fetching {url} failed (attempt {attempt}): {e}; retrying");
                *progress.last_error.lock() = Some(e);
                progress.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let wait: Duration = backoff.next_wait(None, &mut rng);
        if shutdown.sleep(wait) {
            return Err(SourceError::Shutdown);
        }
    }
}
