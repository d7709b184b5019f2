//! `https://` tweet servers: the emulator behind a TLS-terminating proxy with a
//! self-signed certificate, trusted through `SourceConfig::ca_file`.

use std::time::Duration;

use tweetflow::{start, Emulator, EmulatorConfig, PipelineConfig, Shutdown};

use crate::sink_util::{admin, wait_for, TestSchema, ADMIN_URL};
use crate::tls_util::{https_proxy, TestCa};

#[test]
fn the_pipeline_reads_an_https_server() {
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let cert = TestCa::new("tweetflow test server");
    let backend = emulator
        .url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let addr = https_proxy(&cert, backend);

    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = PipelineConfig {
        server: Some(format!("https://localhost:{}", addr.port())),
        ..PipelineConfig::default()
    };
    cfg.source.ca_file = Some(cert.cert_file.clone());
    cfg.core.work_delay = "0".parse().unwrap();
    cfg.sink = schema.config(spool.path());
    cfg.sink.database_url = ADMIN_URL.into();
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap();
    // Until tweets from both streams are stored (no fixed duration: the machine
    // may be loaded).
    let mut db = admin();
    wait_for(
        "tweets read over https to be stored",
        Duration::from_secs(120),
        || {
            db.query_one(
                &format!("SELECT count(*) FROM \"{}\".tweets", schema.name),
                &[],
            )
            .map(|r| r.get::<_, i64>(0) >= 50)
            .unwrap_or(false)
        },
    );
    shutdown.trigger();
    let summary = pipeline.wait().unwrap();
    emulator.stop();
    for (i, n) in summary.events_per_stream.iter().enumerate() {
        assert!(*n > 0, "stream {} delivered nothing over https", i + 1);
    }
    assert!(summary.committed >= 50, "{summary}");
}
