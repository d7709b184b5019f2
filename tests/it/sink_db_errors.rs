//! Permanent database problems on the real PostgreSQL: each stops the sink with a
//! message that names what is wrong and how to fix it (exit code 2 for the
//! pipeline), found before a single record is read when the database is
//! reachable at start; a full disk is waited out instead.

use std::time::Duration;

use crate::sink_util::*;
use crossbeam_channel::bounded;
use tweetflow::testkit::records;
use tweetflow::{spawn_sink, DatabaseProblem, PipelineConfig, SinkConfig, SinkError};

fn start_err(cfg: SinkConfig) -> SinkError {
    let (_tx, rx) = bounded(1);
    match spawn_sink(cfg, rx) {
        Err(e) => e,
        Ok(s) => panic!("the sink started: {:?}", s.stats().snapshot()),
    }
}

#[test]
fn a_mismatched_table_is_reported_at_start_before_reading() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    admin()
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".tweets \
             (id bigint PRIMARY KEY, body text, sentiment text)",
            schema.name
        ))
        .unwrap();
    let e = start_err(schema.config(spool.path()));
    let m = e.to_string();
    match &e {
        SinkError::Database(DatabaseProblem::SchemaMismatch { table, problems }) => {
            assert_eq!(table, &format!("{}.tweets", schema.name));
            assert!(problems.iter().any(|p| p.contains("user_id")), "{m}");
        }
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
    assert!(
        m.contains("sentiment is text, expected double precision"),
        "{m}"
    );
    assert!(m.contains("--schema"), "the fix is named: {m}");
    // The pipeline stops at start with exit code 2, before it even asks the server
    // (none listens there: reading would hang on reconnects).
    let mut cfg = PipelineConfig {
        server: Some("http://127.0.0.1:9".into()),
        ..PipelineConfig::default()
    };
    cfg.sink = schema.config(spool.path());
    let t = std::time::Instant::now();
    let err = tweetflow::run(cfg, tweetflow::Shutdown::new()).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(t.elapsed() < Duration::from_secs(30));
    let mut db = admin();
    let n: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".tweets", schema.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn a_role_without_create_stops_with_the_privilege_named() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let role = unique("tf_nocreate");
    let spool = tempfile::tempdir().unwrap();
    let mut a = admin();
    a.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN; CREATE SCHEMA \"{s}\"; \
         GRANT USAGE ON SCHEMA \"{s}\" TO \"{role}\"",
        s = schema.name
    ))
    .unwrap();
    let url = format!("postgres://{role}@127.0.0.1:5432/postgres");
    let cfg = SinkConfig {
        database_url: url.clone(),
        ..schema.config(spool.path())
    };
    let e = start_err(cfg.clone());
    let m = e.to_string();
    assert!(
        matches!(e, SinkError::Database(DatabaseProblem::Privilege { .. })),
        "{e:?}"
    );
    assert!(m.contains("permission denied for schema"), "{m}");
    assert!(
        m.contains(&format!(
            "GRANT USAGE, CREATE ON SCHEMA \"{}\"",
            schema.name
        )),
        "{m}"
    );
    // With the tables created for it and the table privileges granted, the same
    // role writes: nothing that exists is created again.
    let mut c = postgres::Client::connect(ADMIN_URL, postgres::NoTls).unwrap();
    tweetflow::testkit::create_schema(&mut c, &schema.name).unwrap();
    a.batch_execute(&format!(
        "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA \"{}\" TO \"{role}\"",
        schema.name
    ))
    .unwrap();
    let s = run_sink(cfg, records(1, 1, 10)).unwrap();
    assert_eq!(s.stats.records_committed, 10);
    let _ = a.batch_execute(&format!(
        "DROP SCHEMA \"{}\" CASCADE; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\"",
        schema.name
    ));
}

#[test]
fn a_read_only_database_stops_with_a_clear_message() {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDb::new();
    let spool = tempfile::tempdir().unwrap();
    admin()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            db.name
        ))
        .unwrap();
    let e = start_err(db.config(spool.path()));
    let m = e.to_string();
    assert!(
        matches!(e, SinkError::Database(DatabaseProblem::ReadOnly { .. })),
        "{e:?}"
    );
    assert!(m.contains("read-only"), "{m}");
    assert!(
        m.contains(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = off",
            db.name
        )),
        "{m}"
    );
}

#[test]
fn a_table_changed_while_running_stops_with_records_spooled() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let cfg = SinkConfig {
        batch_min: 10,
        batch_max: 10,
        batch_initial: 10,
        ..schema.config(spool.path())
    };
    let (tx, rx) = bounded(16);
    let sink = spawn_sink(cfg, rx).unwrap();
    let stats = sink.stats();
    for r in records(1, 1, 10) {
        tx.send(r).unwrap();
    }
    wait_for("the first batch", Duration::from_secs(30), || {
        stats.snapshot().records_committed == 10
    });
    admin()
        .batch_execute(&format!(
            "ALTER TABLE \"{}\".tweets DROP COLUMN lang",
            schema.name
        ))
        .unwrap();
    for r in records(11, 11, 30) {
        tx.send(r).unwrap();
    }
    wait_for("the sink to stop", Duration::from_secs(30), || {
        sink.failure().is_some()
    });
    assert_eq!(stats.snapshot().sink_state, "failed");
    drop(tx);
    let e = sink.join().unwrap_err();
    let m = e.to_string();
    assert!(e.is_database_problem(), "{e:?}");
    assert!(m.contains("lang"), "the column is named: {m}");
    let snap = stats.snapshot();
    assert_eq!(snap.records_committed, 10);
    assert_eq!(snap.spilled, 30, "the records not written are in the spool");
    assert_eq!(snap.retries, 0, "no retry loop");
}

#[test]
fn a_full_disk_is_waited_out() {
    let _ = env_logger::builder().is_test(true).try_init();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut c = postgres::Client::connect(ADMIN_URL, postgres::NoTls).unwrap();
    tweetflow::testkit::create_schema(&mut c, &schema.name).unwrap();
    // A real SQLSTATE 53100 from the server, as a full disk raises it.
    c.batch_execute(&format!(
        "CREATE FUNCTION \"{s}\".disk_full() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
         USING ERRCODE = '53100'; END$$; \
         CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON \"{s}\".tweets \
         FOR EACH ROW EXECUTE FUNCTION \"{s}\".disk_full()",
        s = schema.name
    ))
    .unwrap();
    let (tx, rx) = bounded(16);
    let sink = spawn_sink(schema.config(spool.path()), rx).unwrap();
    let stats = sink.stats();
    for r in records(1, 1, 20) {
        tx.send(r).unwrap();
    }
    wait_for("the sink to wait", Duration::from_secs(30), || {
        stats.snapshot().sink_state == "waiting"
    });
    let snap = stats.snapshot();
    let why = snap.sink_reason.unwrap_or_default();
    assert!(why.contains("disk is full"), "{why}");
    assert_eq!(snap.records_rejected, 0, "nothing is rejected for it");
    assert!(
        sink.failure().is_none(),
        "a full disk does not stop the run"
    );
    c.batch_execute(&format!(
        "DROP TRIGGER disk_full ON \"{}\".tweets",
        schema.name
    ))
    .unwrap();
    drop(tx);
    let s = sink.join().unwrap();
    assert_eq!(s.stats.records_committed, 20);
    assert_eq!(s.left_in_spool, 0);
}
