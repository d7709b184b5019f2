//! PostgreSQL over TLS: `sslmode` is honoured by every connection of the sink
//! (the writer, the health probe and the query cancel), a certificate that
//! does not check out stops the connection with a message that names the TLS
//! settings, and the default URL still connects.
//!
//! The local PostgreSQL must have `ssl = on` (`.ci/run` turns it on with a
//! self-signed certificate when it is off); these tests fail, not skip, when
//! it is off.

use std::time::Duration;

use tweetflow::{connect_database, SinkConfig};

use crate::sink_util::{admin, unique, wait_for, TestSchema, ADMIN_URL};
use crate::tls_util::TestCa;

fn require_server_ssl() {
    let ssl: String = admin().query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "this test needs PostgreSQL with ssl = on; .ci/run turns it on"
    );
}

fn encrypted(c: &mut postgres::Client) -> bool {
    c.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .unwrap()
    .get(0)
}

fn cfg(url: &str) -> SinkConfig {
    SinkConfig {
        database_url: url.into(),
        ..SinkConfig::default()
    }
}

#[test]
fn sslmode_require_connects_encrypted_and_disable_does_not() {
    require_server_ssl();
    let mut c = connect_database(&cfg(&format!("{ADMIN_URL}?sslmode=require"))).unwrap();
    assert!(encrypted(&mut c), "sslmode=require gave a plain connection");
    let mut c = connect_database(&cfg(&format!("{ADMIN_URL}?sslmode=disable"))).unwrap();
    assert!(!encrypted(&mut c), "sslmode=disable gave TLS");
    let mut c = connect_database(&cfg("host=127.0.0.1 user=postgres sslmode=require")).unwrap();
    assert!(
        encrypted(&mut c),
        "key=value sslmode=require gave a plain connection"
    );
}

#[test]
fn the_default_url_still_connects_and_prefers_tls() {
    require_server_ssl();
    let mut c = connect_database(&SinkConfig::default()).unwrap();
    // libpq's default, prefer: TLS when the server offers it (it does here).
    assert!(encrypted(&mut c));
}

/// The backends of `app` that wait for a lock.
fn waiting_on_a_lock(a: &mut postgres::Client, app: &str) -> i64 {
    a.query_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND wait_event_type = 'Lock'",
        &[&app],
    )
    .unwrap()
    .get(0)
}

#[test]
fn every_connection_of_the_sink_uses_the_chosen_tls() {
    require_server_ssl();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let app = unique("tf_tls");
    let sink_cfg = SinkConfig {
        database_url: format!("{ADMIN_URL}?sslmode=require&application_name={app}"),
        health_interval: Duration::from_millis(100),
        ..schema.config(spool.path())
    };
    let (tx, rx) = crossbeam_channel::bounded(16);
    let sink = tweetflow::spawn_sink(sink_cfg, rx).unwrap();
    let stats = sink.stats();
    for r in tweetflow::testkit::records(1, 1, 20) {
        tx.send(r).unwrap();
    }
    let mut a = admin();
    let mut rows = Vec::new();
    wait_for(
        "the writer and the probe to connect",
        Duration::from_secs(20),
        || {
            rows = a
                .query(
                    "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = $1",
                    &[&app],
                )
                .unwrap();
            rows.len() >= 2
        },
    );
    assert!(
        rows.iter().all(|r| r.get::<_, bool>(0)),
        "a connection of the sink is not encrypted"
    );
    wait_for("the first records", Duration::from_secs(20), || {
        stats.snapshot().records_committed == 20
    });
    // The cancel of a stuck batch opens a connection of its own. With
    // sslmode=require the client opens it with TLS or not at all, so a batch
    // that the drain cancels on the server proves it went over TLS.
    let mut locker = admin();
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{}\".tweets IN EXCLUSIVE MODE",
            schema.name
        ))
        .unwrap();
    for r in tweetflow::testkit::records(21, 21, 20) {
        tx.send(r).unwrap();
    }
    wait_for(
        "the writer to wait for the lock",
        Duration::from_secs(20),
        || waiting_on_a_lock(&mut a, &app) == 1,
    );
    drop(tx);
    // A drain of 4 s: the batch is stuck after a quarter of it and cancelled.
    let summary = sink
        .join_by(std::time::Instant::now() + Duration::from_secs(4), true)
        .unwrap();
    assert_eq!(
        waiting_on_a_lock(&mut a, &app),
        0,
        "the stuck batch was not cancelled on the server"
    );
    assert_eq!(summary.stats.records_committed, 20);
    assert_eq!(summary.left_in_spool, 20, "{summary:?}");
    locker.batch_execute("COMMIT").unwrap();
}

#[test]
fn verify_full_against_the_wrong_ca_fails_with_a_clear_message() {
    require_server_ssl();
    let wrong = TestCa::new("not the server's CA");
    let c = SinkConfig {
        database_url: format!("{ADMIN_URL}?sslmode=verify-full"),
        db_ca_file: Some(wrong.cert_file.clone()),
        ..SinkConfig::default()
    };
    let msg = connect_database(&c)
        .err()
        .expect("connected with the wrong CA")
        .to_string();
    for part in [
        "sslmode=verify-full",
        &wrong.cert_file.display().to_string(),
        "certificate verify failed",
        "postgres://postgres@127.0.0.1:5432/postgres",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg:?}");
    }
    // The same through the URL's sslrootcert.
    let c = cfg(&format!(
        "{ADMIN_URL}?sslmode=verify-ca&sslrootcert={}",
        wrong.cert_file.display()
    ));
    let msg = connect_database(&c)
        .err()
        .expect("connected with the wrong CA")
        .to_string();
    assert!(
        msg.contains("sslmode=verify-ca") && msg.contains("certificate verify failed"),
        "{msg}"
    );
}

#[test]
fn verify_ca_accepts_the_servers_own_certificate() {
    require_server_ssl();
    // The server's certificate is self-signed: it is its own CA. It is readable
    // when the test runs on the database's machine (as root here).
    let file: String = admin().query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
    let data_dir: String = admin()
        .query_one("SHOW data_directory", &[])
        .unwrap()
        .get(0);
    let path = std::path::Path::new(&data_dir).join(&file);
    assert!(
        path.exists(),
        "the server's certificate {} is not readable here",
        path.display()
    );
    let c = SinkConfig {
        database_url: format!("{ADMIN_URL}?sslmode=verify-ca"),
        db_ca_file: Some(path),
        ..SinkConfig::default()
    };
    let mut client = connect_database(&c).unwrap();
    assert!(encrypted(&mut client));
}
