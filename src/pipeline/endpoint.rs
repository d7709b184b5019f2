//! The operator's endpoint, wired: what each route answers, from the
//! pipeline's live statistics.
//!
//! [`OpsView`] is the endpoint's state: the sink's counters and control
//! handle (there from the start), the stages' probes (set once the lexicon
//! is loaded and every stage has started) and the liveness of every stage
//! thread, which [`Pipeline::wait`](super::run::Pipeline::wait) publishes every
//! 100 ms. [`routes`] is the table: one line, one plain function per route.
//!
//! - `GET /`: the live dashboard; `GET /api/stats`: the status and its
//!   ten-minute history, which the dashboard polls ([`crate::ops::dashboard`]).
//! - `GET /healthz`: 200 while the process runs.
//! - `GET /readyz`: 200 `{"ready":true}`, or 503 with every reason
//!   ([`super::readiness`]).
//! - `GET /metrics`: the Prometheus text ([`super::metrics`]), a view of one
//!   [`Snapshot`] of every stage.
//! - `POST /sink/pause`, `POST /sink/resume`: need
//!   `Authorization: Bearer <TWEETFLOW_CONTROL_TOKEN>`; without a configured
//!   token they answer 403, with a wrong or missing one 401.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;

use super::probes::{Probes, WAITING_FOR_SERVER};
use super::readiness::{readiness, NotReady, ReadyInput};
use super::snapshot::Snapshot;
use crate::log_limit::LogLimiter;
use crate::ops::{check_bearer, Access, Request, Response, Routes};
use crate::sink::{PauseOutcome, SinkControl, SinkStats};
use crate::stats::history::Live;

/// How long `POST /sink/pause` waits for the writer to finish its batch.
const PAUSE_WAIT: Duration = Duration::from_secs(5);

/// The endpoint's view of the pipeline.
#[derive(Debug)]
pub(crate) struct OpsView {
    sink: Arc<SinkStats>,
    control: SinkControl,
    token: Option<String>,
    /// Set once every stage has started (the lexicon is loaded by then).
    stages: OnceLock<Probes>,
    /// Each stage thread and whether it runs, as last published.
    liveness: Mutex<Vec<(&'static str, bool)>>,
    stopping: AtomicBool,
    denied_log: Mutex<LogLimiter>,
}

impl OpsView {
    pub(super) fn new(
        sink: Arc<SinkStats>,
        control: SinkControl,
        token: Option<String>,
    ) -> OpsView {
        OpsView {
            sink,
            control,
            token: token.filter(|t| !t.is_empty()),
            stages: OnceLock::new(),
            liveness: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            denied_log: Mutex::new(LogLimiter::every(Duration::from_secs(60))),
        }
    }

    /// Every stage has started: the endpoint reads their probes from now on.
    pub(super) fn set_stages(&self, probes: Probes) {
        let _ = self.stages.set(probes);
    }

    /// Publishes which stage threads run.
    pub(super) fn publish_liveness(&self, stages: Vec<(&'static str, bool)>) {
        *self.liveness.lock() = stages;
    }

    /// The pipeline is draining: not ready any more.
    pub(super) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Every reason the pipeline is not ready now.
    pub(super) fn not_ready(&self) -> Vec<NotReady> {
        let stages = self.liveness.lock().clone();
        let sink = self.sink.snapshot();
        readiness(&ReadyInput {
            lexicon_loaded: self.stages.get().is_some(),
            stopping: self.stopping.load(Ordering::Relaxed),
            paused: self.control.is_paused(),
            database: self.sink.database_state(),
            sink: (sink.sink_state, sink.sink_reason.as_deref()),
            stages: &stages,
            nats_down: self
                .stages
                .get()
                .and_then(|p| p.jetstream.as_ref())
                .is_some_and(|j| j.stats.connected.load(Ordering::Relaxed) == 0),
        })
    }

    /// Every stage's figures now; before the stages run, the sink's alone.
    fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        match self.stages.get() {
            Some(probes) => probes.snapshot(now),
            None => Snapshot::before_start(0.0, WAITING_FOR_SERVER, self.sink.snapshot()),
        }
    }

    /// `None` when the request may control the sink, else the answer.
    fn refuse(&self, req: &Request<'_>) -> Option<Response> {
        match check_bearer(self.token.as_deref(), req.authorization) {
            Access::Granted => None,
            Access::Disabled => Some(Response::json(
                403,
                &json!({"error": "control routes are off: start tweetflow with \
                                   TWEETFLOW_CONTROL_TOKEN set to use them"}),
            )),
            Access::Denied => {
                if let Some(more) = self.denied_log.lock().check(Instant::now()) {
                    log::warn!(
                        "ops: refused POST {}: missing or wrong bearer token ({more} more \
                         refused since the last such line)",
                        req.path
                    );
                }
                Some(
                    Response::json(401, &json!({"error": "missing or wrong bearer token"}))
                        .with_header("WWW-Authenticate", "Bearer realm=\"tweetflow\""),
                )
            }
        }
    }
}

/// The route table of the endpoint.
pub(super) fn routes() -> Routes<OpsView> {
    Routes::new()
        .get("/", dashboard)
        .get("/api/stats", api_stats)
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/metrics", metrics)
        .post("/sink/pause", pause)
        .post("/sink/resume", resume)
}

fn dashboard(_: &OpsView, _: &Request<'_>) -> Response {
    crate::ops::dashboard::page()
}

fn api_stats(v: &OpsView, _: &Request<'_>) -> Response {
    // Before the stages run there is no status yet: an empty history.
    let json = match v.stages.get() {
        Some(probes) => probes.live.lock().to_json(),
        None => Live::default().to_json(),
    };
    crate::ops::dashboard::stats(json)
}

fn healthz(_: &OpsView, _: &Request<'_>) -> Response {
    Response::text(200, "ok\n")
}

fn readyz(v: &OpsView, _: &Request<'_>) -> Response {
    let reasons = v.not_ready();
    if reasons.is_empty() {
        Response::json(200, &json!({"ready": true}))
    } else {
        Response::json(503, &json!({"ready": false, "reasons": reasons}))
    }
}

fn metrics(v: &OpsView, _: &Request<'_>) -> Response {
    Response::new(
        200,
        crate::ops::METRICS_CONTENT_TYPE,
        super::metrics::render(
            &v.snapshot(),
            &v.sink,
            v.stages.get().map(|p| &*p.core),
            v.not_ready().is_empty(),
        ),
    )
}

fn pause(v: &OpsView, req: &Request<'_>) -> Response {
    if let Some(refused) = v.refuse(req) {
        return refused;
    }
    log::info!("ops: sink pause requested (POST /sink/pause)");
    match v.control.pause(PAUSE_WAIT) {
        PauseOutcome::Paused => Response::json(200, &json!({"sink": "paused"})),
        PauseOutcome::Pausing => Response::json(
            202,
            &json!({"sink": "pausing",
                    "detail": "the writer is finishing its batch; it writes nothing after it"}),
        ),
    }
}

fn resume(v: &OpsView, req: &Request<'_>) -> Response {
    if let Some(refused) = v.refuse(req) {
        return refused;
    }
    log::info!("ops: sink resume requested (POST /sink/resume)");
    v.control.resume();
    Response::json(200, &json!({"sink": "resumed"}))
}

#[cfg(test)]
mod tests {
    use crate::ops::dashboard::PAGE;
    use crate::sink::SinkState;

    #[test]
    fn the_dashboard_styles_every_sink_state() {
        for state in SinkState::ALL {
            assert!(
                PAGE.contains(&format!(".state.{state}")),
                "the dashboard has no style for the sink state {state}"
            );
        }
    }
}
