//! A wrong `--server` is never silent: the URL is named within 5 s and again at
//! least every 30 s, the status says `waiting for server`, and Ctrl-C ends the
//! wait within 2 s, with the database up or unreachable too. The binary runs as a
//! user runs it.

use std::net::TcpListener;
use std::time::Duration;

use crate::child::Tweetflow;
use crate::sink_util::{TestSchema, ADMIN_URL};

/// A URL of nothing: a port that was free a moment ago (connections are refused).
fn closed_port_url() -> String {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    format!("http://{addr}")
}

fn check_waiting_then_ctrl_c(server: &str) {
    check_waiting_then_ctrl_c_writing_to(server, ADMIN_URL);
}

fn check_waiting_then_ctrl_c_writing_to(server: &str, database_url: &str) {
    let schema = TestSchema::new();
    let mut tf = Tweetflow::start(&[
        "--server",
        server,
        "--database-url",
        database_url,
        "--schema",
        &schema.name,
    ]);
    let url = format!("{server}/emotion_values");
    // Named within 5 s.
    let mut named = None;
    while tf.started.elapsed() < Duration::from_secs(5) && named.is_none() {
        named = tf.line_with(&format!("waiting for the server at {url}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (at, line) = named.unwrap_or_else(|| {
        panic!(
            "no message naming {url} within 5 s; stderr:\n{}",
            tf.stderr()
        )
    });
    assert!(at < Duration::from_secs(5), "{at:?}: {line}");
    // The status line and the stats file say what is going on.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        tf.line_with("waiting for server │").is_some(),
        "no status line saying so:\n{}",
        tf.stderr()
    );
    let stats = tf.stats();
    assert!(
        stats.iter().any(|s| s["ingest"] == "waiting for server"),
        "{stats:?}"
    );
    // Ctrl-C in that state: out within 2 s, an empty run, exit 0.
    tf.signal("INT");
    let (status, took) = tf.wait_exit(Duration::from_secs(10));
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    assert!(status.success(), "{status:?}\n{}", tf.stderr());
}

#[test]
fn a_refused_server_is_named_within_5_s_and_ctrl_c_exits_within_2_s() {
    check_waiting_then_ctrl_c(&closed_port_url());
}

#[test]
fn with_the_database_unreachable_too_ctrl_c_exits_within_2_s() {
    // Nothing was received, so the sink has nothing to write or spool: it must not
    // wait out the database (`shutdown_grace`) for an empty buffer.
    let server = closed_port_url();
    let database = closed_port_url().replace("http://", "postgres://postgres@") + "/postgres";
    check_waiting_then_ctrl_c_writing_to(&server, &database);
}

#[test]
fn a_server_that_never_answers_is_named_within_5_s_and_ctrl_c_exits_within_2_s() {
    // Accepts connections (the kernel completes them) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", silent.local_addr().unwrap());
    check_waiting_then_ctrl_c(&server);
    drop(silent);
}
