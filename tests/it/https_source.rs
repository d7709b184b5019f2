//! `https://` tweet servers: the emulator behind a TLS-terminating proxy with a
//! self-signed certificate, trusted through `SourceConfig::ca_file`.

use std::time::Duration;

use tweetflow::{run, Emulator, EmulatorConfig, PipelineConfig, Shutdown};

use crate::sink_util::{TestSchema, ADMIN_URL};
use crate::tls_util::{https_proxy, SelfSigned};

#[test]
fn the_pipeline_reads_an_https_server() {
    let emulator = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let cert = SelfSigned::new("tweetflow test server");
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
        duration: Some(Duration::from_secs(3)),
        ..PipelineConfig::default()
    };
    cfg.source.ca_file = Some(cert.cert_file.clone());
    cfg.core.work_delay = "0".parse().unwrap();
    cfg.sink = schema.config(spool.path());
    cfg.sink.database_url = ADMIN_URL.into();
    let summary = run(cfg, Shutdown::new()).unwrap();
    emulator.stop();
    for (i, n) in summary.events_per_stream.iter().enumerate() {
        assert!(
            *n > 10,
            "stream {} delivered only {n} events over https",
            i + 1
        );
    }
    assert!(summary.committed > 0, "nothing committed: {summary}");
}
