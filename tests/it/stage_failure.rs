//! A stage between the engine and the sink that gives up for good (its loop keeps
//! panicking: a bug a restart does not cure) stops the pipeline with an error that
//! names it and a non-zero exit code, and none of the records it held or that were
//! still coming is lost: each reaches the sink (committed, or spooled).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sink_util::{admin, TestSchema};
use tweetflow::testkit::StageFault;
use tweetflow::{Emulator, EmulatorConfig, PipelineConfig, PipelineError, Rate, Shutdown};

/// Fires on every message of a seq at or above the `n`-th seq seen first (the
/// first message of a seq is its tweet: the dispatcher sends it before the jobs):
/// that tweet panics, its retry panics, and the next panic is beyond the restart
/// intensity (2).
fn from_the_nth_seq_on(n: u64) -> StageFault {
    // (highest seq seen, seqs seen, the chosen one)
    let state = Mutex::new((0u64, 0u64, None::<u64>));
    StageFault(Arc::new(move |seq| {
        let mut s = state.lock().unwrap();
        if seq > s.0 {
            s.0 = seq;
            s.1 += 1;
            if s.1 == n {
                s.2 = Some(seq);
            }
        }
        s.2.is_some_and(|chosen| seq >= chosen)
    }))
}

/// Runs the emulator → pipeline → PostgreSQL with `fault` set up by `arm`;
/// returns the error and the probes read after the stop.
fn run_until_the_stage_gives_up(
    arm: impl FnOnce(&mut PipelineConfig, StageFault),
) -> (PipelineError, tweetflow::Probes, TestSchema) {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        rate: Rate::Constant(200.0),
        // No kills: the workers must not restart (the tap shares their policy).
        kill_every: None,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let mut cfg = PipelineConfig {
        server: Some(emulator.url()),
        duration: Some(Duration::from_secs(60)),
        channel_capacity: 256,
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    cfg.sink = schema.config(spool.path());
    arm(&mut cfg, from_the_nth_seq_on(200));
    let pipeline = tweetflow::start(cfg, Shutdown::new()).unwrap();
    let probes = pipeline.probes().clone();
    let t = Instant::now();
    let err = pipeline.wait().unwrap_err();
    emulator.stop();
    // Stopped by the failure, long before --duration.
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    (err, probes, schema)
}

/// The error names `stage` and the fault, main's exit code is non-zero, and every
/// record the aggregator emitted reached the sink and was committed or spooled.
fn check_stopped_by(stage: &str, err: PipelineError, probes: &tweetflow::Probes, schema: &str) {
    match &err {
        PipelineError::StageFailed { stage: s, cause } => {
            assert_eq!(*s, stage, "{err}");
            assert!(
                cause.contains(&format!("test fault: {stage} panic")),
                "{cause}"
            );
        }
        other => panic!("expected StageFailed, got {other:?}"),
    }
    let err = anyhow::Error::new(err);
    let shown = format!("{err:#}");
    assert!(
        shown.contains(&format!("the {stage} stopped for good")),
        "{shown}"
    );
    assert_eq!(tweetflow::exit_code(&err), 1);

    let agg = probes.aggregate.snapshot();
    let sink = probes.sink.snapshot();
    assert!(agg.tweets_in >= 200, "{agg:?}");
    assert_eq!(agg.lost, 0, "{agg:?}");
    assert_eq!(
        agg.emitted, agg.tweets_in,
        "a record out per tweet in: {agg:?}"
    );
    assert_eq!(
        sink.records_in, agg.emitted,
        "every record reached the sink"
    );
    assert_eq!(
        sink.records_committed + sink.records_rejected + sink.spilled,
        sink.records_in,
        "committed or spooled: {sink:?}"
    );
    let rows: i64 = admin()
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".tweets"), &[])
        .unwrap()
        .get(0);
    assert!(rows > 0 && rows as u64 <= sink.records_committed, "{rows}");
}

#[test]
fn an_aggregator_that_gives_up_stops_the_pipeline_and_loses_no_record() {
    let (err, probes, schema) = run_until_the_stage_gives_up(|cfg, fault| {
        cfg.aggregate.fault = Some(Arc::new(fault));
        cfg.aggregate.restart.max_restarts = 2;
        cfg.aggregate.restart.backoff_base = Duration::from_millis(1);
        cfg.aggregate.restart.backoff_max = Duration::from_millis(5);
    });
    assert!(
        probes.aggregate.snapshot().incomplete > 0,
        "after the give-up, tweets go on with NULL scores"
    );
    check_stopped_by("aggregator", err, &probes, &schema.name);
}

#[test]
fn a_tap_that_gives_up_stops_the_pipeline_and_loses_no_record() {
    let (err, probes, schema) = run_until_the_stage_gives_up(|cfg, fault| {
        cfg.tap_fault = Some(Arc::new(fault));
        cfg.core.restart.max_restarts = 2;
        cfg.core.restart.backoff_base = Duration::from_millis(1);
        cfg.core.restart.backoff_max = Duration::from_millis(5);
    });
    assert_eq!(probes.aggregate.snapshot().incomplete, 0);
    check_stopped_by("tap", err, &probes, &schema.name);
}
