//! `tweetflow check`: the binary against a real setup, one test per kind of
//! failure, each asserting the ✗ line and the exit code; and the
//! configuration around it: every flag from a `TWEETFLOW_*` variable, JSON logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use tweetflow::{Emulator, EmulatorConfig};

use crate::sink_util::{admin, unique, TestSchema, ADMIN_URL};
use crate::tls_util::{https_proxy, TestCa};

/// The binary with a clean environment (no TWEETFLOW_* or DATABASE_URL of the caller).
pub(crate) fn tweetflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweetflow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TWEETFLOW_") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    c
}

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checked {
    fn line(&self, what: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l[l.char_indices().nth(2).map_or(0, |(i, _)| i)..].starts_with(what))
            .unwrap_or_else(|| panic!("no line for {what:?} in\n{}", self.stdout))
    }
    fn passed(&self, what: &str) -> bool {
        self.line(what).starts_with('✓')
    }
}

fn checked(out: Output) -> Checked {
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// `tweetflow check` with a working server, a schema of its own and a spool
/// directory, plus `extra` flags (later flags win).
fn check(server: &str, schema: &str, spool: &std::path::Path, extra: &[&str]) -> Checked {
    let mut c = tweetflow();
    c.args(["check", "--server", server, "--schema", schema])
        .arg("--spool-dir")
        .arg(spool)
        .args(extra);
    checked(c.output().unwrap())
}

#[test]
fn a_working_setup_passes_every_check() {
    let emu = emulator();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let r = check(&emu.url(), &schema.name, spool.path(), &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for what in [
        "http",
        "lexicon",
        "database",
        "privileges",
        "tables",
        "spool",
    ] {
        assert!(r.passed(what), "{what}: {}", r.stdout);
    }
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with('✓')).count(), 9);
    assert!(
        r.line("worker threads").contains("worker threads per pool"),
        "{}",
        r.stdout
    );
    assert!(r.line("lexicon").contains("entries"));
    assert!(r.line("spool").contains("free"));

    // Tables the sink itself created are compatible.
    tweetflow::testkit::create_schema(&mut admin(), &schema.name).unwrap();
    let r = check(&emu.url(), &schema.name, spool.path(), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.line("tables").contains("users, tweets compatible"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_unreachable_server_fails_its_routes_and_the_lexicon() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let r = check("http://127.0.0.1:1", &schema.name, spool.path(), &[]);
    assert_eq!(r.code, Some(1));
    for route in ["tweets/1", "tweets/2", "emotion_values"] {
        let l = r.line(&format!("http://127.0.0.1:1/{route}"));
        assert!(
            l.starts_with('✗') && l.contains("Connection refused"),
            "{l}"
        );
    }
    assert!(!r.passed("lexicon"));
    assert!(
        r.passed("database"),
        "the database is not to blame: {}",
        r.stdout
    );
    assert!(r.stderr.contains("4 of 9 checks failed"), "{}", r.stderr);
}

/// A server with `/tweets/1` right, `/tweets/2` missing and a lexicon that does not parse.
fn broken_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            let mut h = String::new();
            while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let (status, ctype, body) = if first.contains("/tweets/1 ") {
                ("200 OK", "text/event-stream", "data: {}\n\n")
            } else if first.contains("/emotion_values ") {
                ("200 OK", "text/plain", "this is no lexicon\nat all\n")
            } else {
                ("404 Not Found", "text/plain", "no such route")
            };
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_missing_route_and_a_bad_lexicon_are_named() {
    let server = broken_server();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let r = check(&server, &schema.name, spool.path(), &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.passed(&format!("{server}/tweets/1")), "{}", r.stdout);
    let l = r.line(&format!("{server}/tweets/2"));
    assert!(l.starts_with('✗') && l.contains("404"), "{l}");
    assert!(
        r.passed(&format!("{server}/emotion_values")),
        "{}",
        r.stdout
    );
    let l = r.line("lexicon");
    assert!(l.starts_with('✗') && l.contains("does not parse"), "{l}");
}

#[test]
fn an_https_server_needs_its_ca() {
    let emu = emulator();
    let cert = TestCa::new("check test server");
    let addr = https_proxy(
        &cert,
        emu.url().trim_start_matches("http://").parse().unwrap(),
    );
    let server = format!("https://localhost:{}", addr.port());
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let r = check(&server, &schema.name, spool.path(), &[]);
    assert_eq!(r.code, Some(1));
    let l = r.line(&format!("{server}/tweets/1"));
    assert!(
        l.starts_with('✗') && l.contains("certificate verify failed"),
        "{l}"
    );
    let ca = cert.cert_file.display().to_string();
    let r = check(
        &server,
        &schema.name,
        spool.path(),
        &["--server-ca-file", &ca],
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
}

#[test]
fn an_unreachable_database_is_named_and_nothing_is_claimed_about_it() {
    let emu = emulator();
    let spool = tempfile::tempdir().unwrap();
    let url = "postgres://postgres:hunter2@127.0.0.1:1/postgres";
    let r = check(&emu.url(), "public", spool.path(), &["--database-url", url]);
    assert_eq!(r.code, Some(1));
    let l = r.line("database");
    assert!(l.starts_with('✗') && l.contains("127.0.0.1:1"), "{l}");
    assert!(!r.passed("privileges") && r.line("privileges").contains("not checked"));
    assert!(!r.passed("tables") && r.line("tables").contains("not checked"));
    assert!(r.passed("http"), "the server is not to blame: {}", r.stdout);
    assert!(!r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"));
}

#[test]
fn verify_full_with_the_wrong_ca_fails_the_database_check() {
    let emu = emulator();
    let spool = tempfile::tempdir().unwrap();
    let wrong = TestCa::new("not the database's CA");
    let url = format!("{ADMIN_URL}?sslmode=verify-full");
    let ca = wrong.cert_file.display().to_string();
    let r = check(
        &emu.url(),
        "public",
        spool.path(),
        &["--database-url", &url, "--db-ca-file", &ca],
    );
    assert_eq!(r.code, Some(1));
    let l = r.line("database");
    assert!(
        l.starts_with('✗')
            && l.contains("sslmode=verify-full")
            && l.contains(&ca)
            && l.contains("certificate verify failed"),
        "{l}"
    );
    // sslmode=require: encrypted, and the check says so.
    let url = format!("{ADMIN_URL}?sslmode=require");
    let r = check(
        &emu.url(),
        "public",
        spool.path(),
        &["--database-url", &url],
    );
    assert!(
        r.line("database").contains(", encrypted (TLS"),
        "{}",
        r.stdout
    );
}

/// A login role with no privileges beyond PUBLIC's, dropped at the end.
struct Role(String);

impl Role {
    fn new() -> Role {
        let name = unique("tf_check_role");
        admin()
            .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
            .unwrap();
        Role(name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}",
            self.0
        ));
    }
}

#[test]
fn missing_privileges_are_named_with_their_grant() {
    let emu = emulator();
    let spool = tempfile::tempdir().unwrap();
    let role = Role::new();
    let url = format!("postgres://{}@127.0.0.1:5432/postgres", role.0);
    let schema = unique("tf_check_noschema");
    let r = check(&emu.url(), &schema, spool.path(), &["--database-url", &url]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    let l = r.line("privileges");
    assert!(
        l.starts_with('✗') && l.contains("GRANT CREATE ON DATABASE postgres"),
        "{l}"
    );
    // Existing tables it may only read.
    let s = TestSchema::new();
    tweetflow::testkit::create_schema(&mut admin(), &s.name).unwrap();
    admin()
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA {0} TO {1}; GRANT SELECT ON {0}.users, {0}.tweets TO {1}",
            s.name, role.0
        ))
        .unwrap();
    let r = check(&emu.url(), &s.name, spool.path(), &["--database-url", &url]);
    let l = r.line("privileges");
    assert!(
        l.starts_with('✗') && l.contains("GRANT INSERT, UPDATE ON"),
        "{l}"
    );
}

#[test]
fn an_incompatible_table_is_named() {
    let emu = emulator();
    let spool = tempfile::tempdir().unwrap();
    let s = TestSchema::new();
    admin()
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.tweets (id text PRIMARY KEY, body text)",
            s.name
        ))
        .unwrap();
    let r = check(&emu.url(), &s.name, spool.path(), &[]);
    assert_eq!(r.code, Some(1));
    let l = r.line("tables");
    assert!(
        l.starts_with('✗')
            && l.contains("tweets.id is text, expected bigint")
            && l.contains("tweets.raw is missing"),
        "{l}"
    );
    assert!(r.passed("privileges"), "{}", r.stdout);
}

#[test]
fn an_unwritable_spool_directory_is_named() {
    let emu = emulator();
    let schema = TestSchema::new();
    let file = tempfile::NamedTempFile::new().unwrap();
    let spool = file.path().join("spool");
    let r = check(&emu.url(), &schema.name, &spool, &[]);
    assert_eq!(r.code, Some(1));
    let l = r.line("spool");
    assert!(
        l.starts_with('✗') && l.contains("is not a directory"),
        "{l}"
    );
}

#[test]
fn every_flag_can_come_from_the_environment() {
    use clap::CommandFactory;
    let cmd = tweetflow::Cli::command();
    let mut missing = Vec::new();
    let mut seen = 0;
    for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
        for a in sub.get_arguments() {
            let id = a.get_id().as_str();
            if a.get_long().is_none() || id == "help" || id == "version" {
                continue;
            }
            seen += 1;
            match a.get_env().and_then(|e| e.to_str()) {
                Some(e) if e.starts_with("TWEETFLOW_") => {}
                _ => missing.push(format!("{} --{id}", sub.get_name())),
            }
        }
    }
    assert!(seen > 30, "only {seen} flags seen");
    assert!(
        missing.is_empty(),
        "flags without a TWEETFLOW_* variable: {missing:?}"
    );

    // And they are honoured: a whole check configured from the environment.
    let emu = emulator();
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let out = tweetflow()
        .arg("check")
        .env("TWEETFLOW_SERVER", emu.url())
        .env("TWEETFLOW_SCHEMA", &schema.name)
        .env("TWEETFLOW_SPOOL_DIR", spool.path())
        .env(
            "TWEETFLOW_DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:5432/postgres?sslmode=disable",
        )
        .output()
        .unwrap();
    let r = checked(out);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.line(&emu.url()).contains("200"));
    assert!(r
        .line("spool")
        .contains(&spool.path().display().to_string()));
    assert!(r.line("database").contains("not encrypted"), "{}", r.stdout);
    assert!(!r.stdout.contains("hunter2"));

    // --help shows the variables, never a password from one.
    let out = tweetflow()
        .arg("--help")
        .env(
            "TWEETFLOW_DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:5432/postgres",
        )
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: TWEETFLOW_MIN_WORKERS="), "{help}");
    assert!(help.contains("[env: TWEETFLOW_DATABASE_URL"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut child = tweetflow()
        .args([
            "run",
            "--log-format",
            "json",
            "--duration",
            "2",
            "--work-delay",
            "0",
            "--emulator-rate",
            "200",
            "--schema",
            &schema.name,
            "--database-url",
            "postgres://postgres:hunter2@127.0.0.1:5432/postgres",
        ])
        .arg("--spool-dir")
        .arg(spool.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    let mut n = 0;
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"));
        for k in ["timestamp", "level", "target", "message"] {
            assert!(v[k].is_string(), "{k} missing in {line}");
        }
        assert!(v["fields"].is_object(), "{line}");
        n += 1;
    }
    assert!(n >= 3, "only {n} log lines:\n{err}");
    assert!(
        err.contains("tweetflow::summary"),
        "the summary is not a log record: {err}"
    );
    assert!(!err.contains("hunter2"));
}

#[test]
fn the_grants_check_asks_for_are_enough_for_the_sink() {
    let emu = emulator();
    let spool = tempfile::tempdir().unwrap();
    let role = Role::new();
    let url = format!("postgres://{}@127.0.0.1:5432/postgres", role.0);
    let s = TestSchema::new();
    tweetflow::testkit::create_schema(&mut admin(), &s.name).unwrap();
    let r = check(&emu.url(), &s.name, spool.path(), &["--database-url", &url]);
    assert_eq!(r.code, Some(1));
    // Grant exactly what the privileges line asks for.
    let l = r.line("privileges").to_string();
    let grants: Vec<&str> = l
        .split("; ")
        .filter_map(|p| p.split_once(": GRANT ").map(|(_, g)| g))
        .collect();
    assert!(!grants.is_empty(), "{l}");
    for g in grants {
        admin().batch_execute(&format!("GRANT {g}")).unwrap();
    }
    let r = check(&emu.url(), &s.name, spool.path(), &["--database-url", &url]);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    // And the sink writes as that role.
    let cfg = tweetflow::SinkConfig {
        database_url: url,
        ..s.config(spool.path())
    };
    let (tx, rx) = crossbeam_channel::bounded(16);
    let sink = tweetflow::spawn_sink(cfg, rx).unwrap();
    for rec in tweetflow::testkit::records(1, 1, 10) {
        tx.send(rec).unwrap();
    }
    drop(tx);
    let summary = sink.join().unwrap();
    assert_eq!(summary.stats.records_committed, 10, "{summary:?}");
}
