//! The configuration file (`--config tweetflow.toml`) and `tweetflow config`.
//!
//! A file holds flags of `tweetflow run` as TOML keys named as the flags
//! (`min-workers = 8`; `min_workers` is accepted too), each a string, a
//! number or a boolean (`quiet = true`; `false` leaves a switch off). An
//! unknown key, a table or an array is refused with the file's name and the
//! key. Paths in it are relative to the working directory, as on the command
//! line.
//!
//! Precedence: a flag, then its `TWEETFLOW_*` variable (and `DATABASE_URL`
//! for the database URL), then the file, then the default. The file is merged
//! by parsing twice: the first parse says where each value came from, and
//! every key of the file whose flag came from neither the command line nor the
//! environment becomes a `--key=value` argument of the second parse. So a
//! value from the file is checked exactly as the same flag would be, and an
//! invalid one is named with the file.
//!
//! `tweetflow config` prints every setting of the second parse, with its
//! source, as TOML that can serve as a file again; the database URL's password
//! and the control token are redacted.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::cli::{Cli, Command, RunArgs};
use super::config::{default_spool_dir, DEFAULT_DATABASE_URL};
use crate::sink::redact_url;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The command line.
    Flag,
    /// This environment variable.
    Env(String),
    /// The `--config` file.
    File,
    /// The flag's default.
    Default,
    /// Not set, and without a default.
    Unset,
}

/// One setting of `tweetflow run`: the flag's name, its value as text, and its source.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// The flag without its dashes (`min-workers`).
    pub flag: String,
    /// The value as given (or the default), `None` when unset.
    pub value: Option<String>,
    /// Where the value came from.
    pub source: Source,
}

/// Every setting of `tweetflow run`, in the order of `--help`, and the file read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// The `--config` file, if one was read.
    pub file: Option<std::path::PathBuf>,
    /// Every flag's setting.
    pub all: Vec<Setting>,
}

/// Flags that hold a secret: never printed.
const SECRETS: [&str; 1] = ["control-token"];

/// Parses the command line `argv` (with the program's name first) and merges
/// its `--config` file. clap's own errors, `--help` and `--version` exit the
/// process as `Cli::parse` does; a file that cannot be read or holds an
/// unknown key or an invalid value is an error naming the file.
pub fn parse_cli<I, T>(argv: I) -> anyhow::Result<Cli>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let first = Cli::command()
        .try_get_matches_from(&argv)
        .unwrap_or_else(|e| e.exit());
    let Some(m) = run_level(&first) else {
        // `emulate`: no file, no settings.
        return Ok(Cli::from_arg_matches(&first).unwrap_or_else(|e| e.exit()));
    };
    let file = m.get_one::<std::path::PathBuf>("config").cloned();
    let (matches, from_file) = match &file {
        None => (first, BTreeSet::new()),
        Some(path) => {
            let (extra, from_file) = file_args(path, m)?;
            let mut argv2 = argv.clone();
            argv2.extend(extra);
            let matches = Cli::command().try_get_matches_from(&argv2).map_err(|e| {
                let text = e.to_string();
                let first_line = text.lines().next().unwrap_or_default();
                anyhow!(
                    "{}: {}",
                    path.display(),
                    first_line.trim_start_matches("error: ")
                )
            })?;
            (matches, from_file)
        }
    };
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let m = run_level(&matches).unwrap_or(&matches);
    let settings = Settings {
        file,
        all: settings(m, &from_file),
    };
    match &mut cli.command {
        Some(Command::Run(a) | Command::Check(a) | Command::Config(a)) => a.settings = settings,
        Some(Command::Emulate(_) | Command::Ingest(_)) => {}
        None => cli.run.settings = settings,
    }
    Ok(cli)
}

/// The matches that hold the flags of `run`: the subcommand's, or the top
/// level's when there is none; `None` for `emulate` and `ingest`.
fn run_level(m: &ArgMatches) -> Option<&ArgMatches> {
    match m.subcommand() {
        None => Some(m),
        Some(("run" | "check" | "config", sub)) => Some(sub),
        Some(_) => None,
    }
}

/// The flags of `tweetflow run` (long ones only), in the order of `--help`.
fn run_flags() -> Vec<clap::Arg> {
    let cmd = Cli::command();
    cmd.find_subcommand("run")
        .map(|run| {
            run.get_arguments()
                .filter(|a| a.get_long().is_some() && a.get_id() != "help")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The `--key=value` arguments the file adds, and the ids they set: every key
/// whose flag came from neither the command line nor the environment.
fn file_args(path: &Path, m: &ArgMatches) -> anyhow::Result<(Vec<OsString>, BTreeSet<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid TOML file", path.display()))?;
    let flags = run_flags();
    let mut extra = Vec::new();
    let mut ids = BTreeSet::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let Some(arg) = flags
            .iter()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
        else {
            let known: Vec<&str> = flags
                .iter()
                .filter_map(|a| a.get_long())
                .filter(|l| *l != "config")
                .collect();
            bail!(
                "{}: unknown key `{key}` (the keys are the flags of `tweetflow run`: {})",
                path.display(),
                known.join(", ")
            );
        };
        let id = arg.get_id().as_str();
        let overridden = matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) || (id == "database_url" && std::env::var_os("DATABASE_URL").is_some());
        let switch = !arg.get_action().takes_values();
        let text = match value {
            toml::Value::Boolean(b) if switch => {
                if *b && !overridden {
                    extra.push(OsString::from(format!("--{long}")));
                    ids.insert(id.to_string());
                }
                continue;
            }
            _ if switch => bail!(
                "{}: `{key}` is a switch: true or false, not {value}",
                path.display()
            ),
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "{}: `{key}` must be a string, a number or a boolean (found: {})",
                path.display(),
                other.type_str()
            ),
        };
        if !overridden {
            extra.push(OsString::from(format!("--{long}={text}")));
            ids.insert(id.to_string());
        }
    }
    Ok((extra, ids))
}

/// Every flag's setting in the final matches.
fn settings(m: &ArgMatches, from_file: &BTreeSet<String>) -> Vec<Setting> {
    run_flags()
        .iter()
        .filter(|a| a.get_id() != "config")
        .map(|a| {
            let id = a.get_id().as_str();
            let value = m.get_raw(id).map(|vals| {
                vals.map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            let source = if from_file.contains(id) {
                Source::File
            } else {
                match m.value_source(id) {
                    Some(ValueSource::CommandLine) => Source::Flag,
                    Some(ValueSource::EnvVariable) => Source::Env(
                        a.get_env()
                            .map(|e| e.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    Some(ValueSource::DefaultValue) => Source::Default,
                    _ => Source::Unset,
                }
            };
            let mut s = Setting {
                flag: a.get_long().unwrap_or(id).to_string(),
                value,
                source,
            };
            if id == "spool_dir" && s.source == Source::Unset {
                s.value = Some(default_spool_dir().to_string_lossy().into_owned());
                s.source = Source::Default;
            }
            if id == "database_url" && s.source == Source::Unset {
                // What config_from_args falls back on.
                s = match std::env::var("DATABASE_URL") {
                    Ok(url) => Setting {
                        value: Some(url),
                        source: Source::Env("DATABASE_URL".into()),
                        ..s
                    },
                    Err(_) => Setting {
                        value: Some(DEFAULT_DATABASE_URL.into()),
                        source: Source::Default,
                        ..s
                    },
                };
            }
            s
        })
        .collect()
}

/// The effective configuration as TOML, one line per flag with its source;
/// secrets redacted.
pub(super) fn render(args: &RunArgs) -> String {
    let s = &args.settings;
    let mut out = String::from(
        "# tweetflow's effective configuration: a flag, then its environment variable, then",
    );
    match &s.file {
        Some(p) => out.push_str(&format!(
            "\n# the file {}, then the default.\n",
            p.display()
        )),
        None => out.push_str("\n# the --config file (none given), then the default.\n"),
    }
    for set in &s.all {
        let source = match &set.source {
            Source::Flag => "flag".to_string(),
            Source::Env(var) => format!("env {var}"),
            Source::File => "file".to_string(),
            Source::Default => "default".to_string(),
            Source::Unset => "not set".to_string(),
        };
        let Some(value) = &set.value else {
            out.push_str(&format!("# {} = (not set)\n", set.flag));
            continue;
        };
        let (value, note) = if SECRETS.contains(&set.flag.as_str()) {
            ("***".to_string(), ", redacted")
        } else if set.flag == "database-url" {
            let r = redact_url(value);
            let note = if r == *value {
                ""
            } else {
                ", password redacted"
            };
            (r, note)
        } else {
            (value.clone(), "")
        };
        out.push_str(&format!(
            "{} = {}  # {source}{note}\n",
            set.flag,
            toml_value(&value)
        ));
    }
    out
}

/// A value as TOML: a boolean or a number as such, anything else a string.
fn toml_value(text: &str) -> String {
    if text == "true" || text == "false" {
        return text.to_string();
    }
    if text.parse::<i64>().is_ok() {
        return text.to_string();
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() && text.contains('.') {
            return text.to_string();
        }
    }
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn run_args(cli: Cli) -> RunArgs {
        match cli.into_command() {
            Command::Run(a) | Command::Config(a) | Command::Check(a) => a,
            Command::Emulate(_) | Command::Ingest(_) => panic!("not run"),
        }
    }

    fn setting<'a>(a: &'a RunArgs, flag: &str) -> &'a Setting {
        a.settings
            .all
            .iter()
            .find(|s| s.flag == flag)
            .unwrap_or_else(|| panic!("no setting {flag}"))
    }

    #[test]
    fn the_file_fills_what_the_flags_leave_to_the_defaults() {
        let f = file(
            "min-workers = 7\nbatch_max = 999\nschema = \"from_file\"\nquiet = true\n\
             adopt-spool = false\nrestart-window = 2.5\nwork-delay = 0\n",
        );
        let path = f.path().to_str().unwrap();
        let a = run_args(
            parse_cli(["tweetflow", "run", "--config", path, "--schema", "flag"]).unwrap(),
        );
        assert_eq!(a.min_workers, 7);
        assert_eq!(a.batch_max, 999);
        assert_eq!(a.schema, "flag", "a flag beats the file");
        assert!(a.quiet);
        assert!(!a.adopt_spool);
        assert_eq!(a.restart_window, 2.5);
        assert_eq!(a.work_delay, "0");
        assert_eq!(a.max_workers, 4096, "untouched defaults stay");
        assert_eq!(setting(&a, "min-workers").source, Source::File);
        assert_eq!(setting(&a, "schema").source, Source::Flag);
        assert_eq!(setting(&a, "max-workers").source, Source::Default);
        assert_eq!(setting(&a, "adopt-spool").source, Source::Default);
        assert_eq!(setting(&a, "server").source, Source::Unset);
        // Without a subcommand too.
        let a = run_args(parse_cli(["tweetflow", "--config", path]).unwrap());
        assert_eq!(a.min_workers, 7);
        assert_eq!(a.schema, "from_file");
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_file_and_the_key() {
        for (text, says) in [
            ("min-wrokers = 3\n", "unknown key `min-wrokers`"),
            ("config = \"other.toml\"\n", "unknown key `config`"),
            ("min-workers = \"many\"\n", "--min-workers"),
            ("quiet = 1\n", "`quiet` is a switch"),
            ("schema = [\"a\"]\n", "found: array"),
            ("schema = \n", "not a valid TOML file"),
        ] {
            let f = file(text);
            let path = f.path().to_str().unwrap();
            let e = parse_cli(["tweetflow", "--config", path]).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(says), "{text:?}: {msg}");
            assert!(msg.contains(path), "{text:?}: {msg}");
        }
        let e = parse_cli(["tweetflow", "--config", "/nonexistent/tweetflow.toml"]).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/tweetflow.toml"));
    }

    #[test]
    fn rendered_values_are_toml() {
        assert_eq!(toml_value("true"), "true");
        assert_eq!(toml_value("4096"), "4096");
        assert_eq!(toml_value("0.8"), "0.8");
        assert_eq!(toml_value("50..500"), "\"50..500\"");
        assert_eq!(toml_value("1GiB"), "\"1GiB\"");
        assert_eq!(toml_value("inf"), "\"inf\"");
        for text in [
            "a \"q\"",
            "it's",
            "back\\slash",
            "postgres://u@h/db?x=1&y='2'",
        ] {
            let doc: toml::Table = toml::from_str(&format!("k = {}", toml_value(text))).unwrap();
            assert_eq!(doc["k"].as_str(), Some(text), "{text:?}");
        }
    }
}
