//! One instance per spool directory, through the binary: a second `tweetflow
//! run` on a spool directory in use refuses to start, naming the directory and
//! the first one's pid; `check` says the same; the lock goes with the process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::check::tweetflow;
use crate::sink_util::TestSchema;

/// `tweetflow run` on `spool` for up to `secs`, stderr piped.
fn run(schema: &str, spool: &std::path::Path, secs: &str) -> std::process::Command {
    let mut c = tweetflow();
    c.args(["run", "--schema", schema, "--duration", secs, "--quiet"])
        .args(["--metrics-addr", "off", "--emulator-rate", "20"])
        .arg("--spool-dir")
        .arg(spool)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Reads `child`'s stderr until a line contains `what` (within 20 s).
fn wait_for(child: &mut Child, what: &str) {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_deadline(deadline) {
        if line.contains(what) {
            // Keep draining, so the child never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return;
        }
        seen.push(line);
    }
    panic!("no line with {what:?} within 20 s: {seen:#?}");
}

#[test]
fn a_second_instance_on_one_spool_directory_refuses_to_start_naming_the_first() {
    let schema = TestSchema::new();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut first = run(&schema.name, &spool, "60").spawn().unwrap();
    let pid = first.id();
    wait_for(&mut first, "locked by this instance");

    let started = Instant::now();
    let out = run(&schema.name, &spool, "60").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused before anything started"
    );
    assert!(
        stderr.contains(&format!(
            "the spool directory {} is in use by another tweetflow (pid {pid})",
            spool.display()
        )),
        "{stderr}"
    );

    // `check` fails the spool line for the same reason.
    let out = tweetflow()
        .args(["check", "--schema", &schema.name, "--spool-dir"])
        .arg(&spool)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&format!("spool {}", spool.display())))
        .unwrap_or_else(|| panic!("no spool line: {stdout}"));
    assert!(
        line.starts_with('✗') && line.contains(&format!("in use by another tweetflow (pid {pid})")),
        "{line}"
    );

    // The first one ends; the lock goes with it, and the directory serves the next.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    assert!(first.wait().unwrap().success());
    let out = run(&schema.name, &spool, "0.5").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_explicit_metrics_address_that_is_taken_stops_the_start_and_only_the_default_moves() {
    let schema = TestSchema::new();
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // Given as a flag, or through its variable: a clear error, exit 1.
    for by_env in [false, true] {
        let mut c = tweetflow();
        c.args([
            "run",
            "--schema",
            &schema.name,
            "--duration",
            "30",
            "--quiet",
        ])
        .arg("--spool-dir")
        .arg(dir.path().join("spool"));
        if by_env {
            c.env("TWEETFLOW_METRICS_ADDR", &addr);
        } else {
            c.args(["--metrics-addr", &addr]);
        }
        let started = Instant::now();
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "starting the operator's endpoint (--metrics-addr): {addr} is in use by another \
                 process"
            )),
            "{stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "it stopped at once"
        );
    }

    // The default address, taken (by this test, or by whoever already has it): a free port,
    // and the log says so.
    let _default = std::net::TcpListener::bind("127.0.0.1:9464");
    let out = tweetflow()
        .args([
            "run",
            "--schema",
            &schema.name,
            "--duration",
            "0.5",
            "--quiet",
        ])
        .args(["--emulator-rate", "20"])
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the default address 127.0.0.1:9464 is taken; listening on 127.0.0.1:"),
        "{stderr}"
    );
}
