//! The configuration file (`--config`) and `tweetflow config`, through the
//! binary: the precedence flag > environment > file > default, secrets never
//! printed, a file that configures a real `check`, the printed configuration
//! read back as a file, and a bad file refused with its name.

use std::path::Path;
use std::process::{Command, Output};

use tweetflow::{Emulator, EmulatorConfig};

use crate::check::tweetflow;
use crate::sink_util::TestSchema;

/// `tweetflow <sub> --config <file>` with a clean environment.
fn with_file(sub: &str, file: &Path) -> Command {
    let mut c = tweetflow();
    c.arg(sub).arg("--config").arg(file);
    c
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `flag` in `tweetflow config`'s output.
fn line<'a>(stdout: &'a str, flag: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{flag} = ")))
        .unwrap_or_else(|| panic!("no line for {flag} in\n{stdout}"))
}

fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "tweetflow.toml",
        "schema = \"from_file\"\nmin-workers = 7\nmax_workers = 64\nquiet = true\n\
         database-url = \"postgres://postgres:hunter2@10.0.0.1:5432/postgres\"\n\
         control-token = \"filetoken\"\nlinger-ms = 75\n",
    );
    let out = with_file("config", &file)
        .args(["--schema", "from_flag"])
        .env("TWEETFLOW_SCHEMA", "from_env")
        .env("TWEETFLOW_MIN_WORKERS", "9")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(line(&stdout, "schema"), "schema = \"from_flag\"  # flag");
    assert_eq!(
        line(&stdout, "min-workers"),
        "min-workers = 9  # env TWEETFLOW_MIN_WORKERS"
    );
    assert_eq!(line(&stdout, "max-workers"), "max-workers = 64  # file");
    assert_eq!(line(&stdout, "linger-ms"), "linger-ms = 75  # file");
    assert_eq!(line(&stdout, "quiet"), "quiet = true  # file");
    assert_eq!(line(&stdout, "batch-max"), "batch-max = 20000  # default");
    assert_eq!(
        line(&stdout, "database-url"),
        "database-url = \"postgres://postgres:***@10.0.0.1:5432/postgres\"  # file, password redacted"
    );
    assert_eq!(
        line(&stdout, "control-token"),
        "control-token = \"***\"  # file, redacted"
    );
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    for secret in ["hunter2", "filetoken"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }

    // DATABASE_URL is the environment too: it beats the file's URL.
    let out = with_file("config", &file)
        .env("DATABASE_URL", "postgres://app:s3cret@db.example/app")
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(
        line(&stdout, "database-url"),
        "database-url = \"postgres://app:***@db.example/app\"  # env DATABASE_URL, password redacted"
    );
    assert_eq!(line(&stdout, "schema"), "schema = \"from_file\"  # file");
    assert!(!stdout.contains("s3cret") && !stdout.contains("hunter2"));
}

#[test]
fn a_file_configures_a_real_check() {
    let emu = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let schema = TestSchema::new();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("the-spool");
    let file = write(
        dir.path(),
        "tweetflow.toml",
        &format!(
            "server = \"{}\"\nschema = \"{}\"\nspool-dir = \"{}\"\n\
             database-url = \"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable\"\n",
            emu.url(),
            schema.name,
            spool.display()
        ),
    );
    let out = with_file("check", &file).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&emu.url()), "the file's server: {stdout}");
    assert!(
        stdout.contains(&spool.display().to_string()),
        "the file's spool: {stdout}"
    );
    assert!(
        stdout.contains("not encrypted"),
        "the file's sslmode: {stdout}"
    );

    // The same through TWEETFLOW_CONFIG, with a flag over the file's server: the check
    // now fails on the flag's (closed) port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = tweetflow()
        .args(["check", "--server", &format!("http://127.0.0.1:{port}")])
        .env("TWEETFLOW_CONFIG", &file)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("127.0.0.1:{port}")), "{stdout}");
    assert!(!stdout.contains(&emu.url()), "{stdout}");
}

#[test]
fn the_printed_configuration_reads_back_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = tweetflow()
        .args([
            "config",
            "--work-delay",
            "10..20",
            "--memory-limit",
            "256MiB",
            "--utilisation",
            "0.5",
            "--quiet",
            "--log-format",
            "json",
            "--duration",
            "2.5",
        ])
        .output()
        .unwrap();
    let (first, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let file = write(dir.path(), "printed.toml", &first);
    let out = with_file("config", &file).output().unwrap();
    let (second, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{second}\n{stderr}");
    let values = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(values(&first), values(&second));
    assert!(values(&first).len() > 25, "{first}");
    assert_eq!(
        line(&second, "work-delay"),
        "work-delay = \"10..20\"  # file"
    );
    assert_eq!(line(&second, "duration"), "duration = 2.5  # file");
}

#[test]
fn a_bad_file_or_value_stops_with_the_files_name() {
    let dir = tempfile::tempdir().unwrap();
    for (body, says) in [
        ("min-wrokers = 3\n", "unknown key `min-wrokers`"),
        ("utilisation = \"lots\"\n", "--utilisation"),
    ] {
        let file = write(dir.path(), "bad.toml", body);
        let out = with_file("run", &file).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
    // A value the file's type allows but the check refuses: `tweetflow config` prints, then fails.
    let file = write(dir.path(), "range.toml", "utilisation = 1.5\n");
    let out = with_file("config", &file).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("utilisation = 1.5  # file"), "{stdout}");
    assert!(
        stderr.contains("--utilisation must be in (0, 1]"),
        "{stderr}"
    );
}

#[test]
fn the_default_spool_is_in_the_state_directory_and_its_full_path_is_logged() {
    let home = tempfile::tempdir().unwrap();
    let spool_line = |envs: &[(&str, &Path)]| {
        let mut c = tweetflow();
        c.arg("config")
            .env_remove("XDG_STATE_HOME")
            .env_remove("STATE_DIRECTORY")
            .env("HOME", home.path());
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        line(&text(&out).0, "spool-dir").to_string()
    };
    let under = |p: &Path| format!("spool-dir = \"{}\"  # default", p.display());
    assert_eq!(
        spool_line(&[]),
        under(&home.path().join(".local/state/tweetflow/spool"))
    );
    let xdg = home.path().join("xdg");
    assert_eq!(
        spool_line(&[("XDG_STATE_HOME", &xdg)]),
        under(&xdg.join("tweetflow/spool"))
    );
    let state = home.path().join("var-lib-tweetflow");
    assert_eq!(
        spool_line(&[("XDG_STATE_HOME", &xdg), ("STATE_DIRECTORY", &state)]),
        under(&state.join("spool"))
    );

    // A run without --spool-dir writes there, and a relative --spool-dir is logged in full.
    let schema = TestSchema::new();
    for (spool_flag, expected) in [
        (None, home.path().join(".local/state/tweetflow/spool")),
        (Some("rel/spool"), home.path().join("rel/spool")),
    ] {
        let mut c = tweetflow();
        c.args(["run", "--schema", &schema.name, "--duration", "0.5"])
            .args(["--metrics-addr", "off", "--quiet", "--emulator-rate", "20"])
            .current_dir(home.path())
            .env_remove("XDG_STATE_HOME")
            .env_remove("STATE_DIRECTORY")
            .env("HOME", home.path())
            .env("RUST_LOG", "info");
        if let Some(dir) = spool_flag {
            c.args(["--spool-dir", dir]);
        }
        let out = c.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("spool directory {}", expected.display())),
            "{stderr}"
        );
        assert!(
            expected.join("spool.target").is_file(),
            "the spool was created in {}",
            expected.display()
        );
    }
}
