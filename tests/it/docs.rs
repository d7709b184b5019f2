//! The documents against the code: what a user reads must be what the binary does.
//!
//! The flag table of docs/RUNNING.md against `tweetflow run --help`: every flag of one is
//! a flag of the other, each default is the one `--help` shows, and each
//! variable named is the flag's.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// A flag of `--help`: its default and its variable, as printed.
#[derive(Debug, Default)]
struct HelpFlag {
    default: Option<String>,
    env: Option<String>,
    switch: bool,
}

/// The flags of `tweetflow run --help`, parsed from its text.
fn help_flags() -> BTreeMap<String, HelpFlag> {
    let out = Command::new(env!("CARGO_BIN_EXE_tweetflow"))
        .args(["run", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut flags = BTreeMap::new();
    let mut current: Option<(String, HelpFlag)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        // A flag's line: `      --name <VALUE>` or `  -h, --help`.
        let name = t
            .strip_prefix("--")
            .or_else(|| t.split_once(", --").map(|(_, rest)| rest));
        if let (Some(name), true) = (name, indent <= 6) {
            if let Some((n, f)) = current.take() {
                flags.insert(n, f);
            }
            let (flag, value) = name.split_once(' ').unwrap_or((name, ""));
            current = Some((
                flag.to_string(),
                HelpFlag {
                    switch: !value.trim_start().starts_with('<'),
                    ..HelpFlag::default()
                },
            ));
            continue;
        }
        let Some((_, f)) = current.as_mut() else {
            continue;
        };
        for (open, slot) in [("[default: ", &mut f.default), ("[env: ", &mut f.env)] {
            if let Some(rest) = t.strip_prefix(open) {
                let v = rest.trim_end_matches(']');
                *slot = Some(v.trim_end_matches('=').to_string());
            }
        }
    }
    if let Some((n, f)) = current {
        flags.insert(n, f);
    }
    flags.remove("help");
    flags.remove("version");
    flags
}

/// The flag table of docs/RUNNING.md: each row's flag, its first cell and its default cell.
fn flag_table() -> BTreeMap<String, (String, String)> {
    let table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RUNNING.md")).unwrap();
    let start = table
        .find("| flag | default | meaning |")
        .expect("docs/RUNNING.md has a flag table");
    let mut rows = BTreeMap::new();
    for line in table[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        assert!(cells.len() >= 3, "a row of three cells: {line}");
        let first = cells[0].trim();
        let flag = first
            .strip_prefix("`--")
            .and_then(|r| r.split(['`', ' ']).next())
            .unwrap_or_else(|| panic!("a row that does not start with its flag: {line}"));
        let old = rows.insert(
            flag.to_string(),
            (first.to_string(), cells[1].trim().to_string()),
        );
        assert!(old.is_none(), "--{flag} has two rows");
    }
    rows
}

#[test]
fn the_flag_table_names_every_flag_of_help_with_its_default() {
    let help = help_flags();
    let table = flag_table();
    assert!(
        help.len() > 30,
        "only {} flags parsed from --help",
        help.len()
    );
    let in_help: BTreeSet<_> = help.keys().collect();
    let in_table: BTreeSet<_> = table.keys().collect();
    assert_eq!(
        in_help.difference(&in_table).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags of --help missing from the table of docs/RUNNING.md"
    );
    assert_eq!(
        in_table.difference(&in_help).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags in the table of docs/RUNNING.md that --help does not know"
    );
    for (flag, h) in &help {
        let (first, default) = &table[flag];
        match &h.default {
            Some(d) => assert!(
                default.starts_with(&format!("`{d}`")),
                "--{flag}: --help says the default is {d}, docs/RUNNING.md says {default}"
            ),
            None if h.switch => assert_eq!(default, "off", "--{flag} is a switch"),
            None => assert!(
                !default.starts_with('`'),
                "--{flag} has no default in --help, docs/RUNNING.md says {default}"
            ),
        }
        if let Some(var) = first
            .split_once("(env `")
            .and_then(|(_, r)| r.split('`').next())
        {
            assert_eq!(h.env.as_deref(), Some(var), "--{flag}'s variable");
        }
    }
}

/// A file of the repository.
fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metric families of a running `tweetflow` (every stage started), with
/// each family's HELP text, and the label values of `tweetflow_sink_state`.
fn live_metrics() -> (BTreeMap<String, String>, BTreeSet<String>) {
    let schema = crate::sink_util::TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let run = crate::ops::Binary::start(&schema.name, spool.path(), "20", "50");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let body = loop {
        // The stage families appear once the lexicon is loaded.
        if let Some(b) = run
            .metrics()
            .filter(|b| b.contains("tweetflow_tweets_received_total"))
        {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stage metrics at {}",
            run.metrics_url
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    run.stop();
    let mut families = BTreeMap::new();
    let mut states = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.insert(name.to_string(), help.to_string());
        } else if let Some(rest) = line.strip_prefix("tweetflow_sink_state{state=\"") {
            states.insert(rest.split('"').next().unwrap().to_string());
        }
    }
    (families, states)
}

/// The words in backticks of `text`.
fn code_spans(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_and_sink_state_is_documented_and_every_documented_one_exists() {
    let (families, states) = live_metrics();
    assert!(families.len() > 25, "{families:?}");
    assert_eq!(states.len(), 7, "{states:?}");

    // docs/METRICS.md: one table row per family, `name` or `name{labels}`
    // (`tweetflow_*`, and the conventional `process_*`).
    let metrics_md = read("docs/METRICS.md");
    // The last section is `ingest`'s endpoint (checked in jetstream.rs).
    let documented: BTreeSet<String> = metrics_md
        .split("\n## `tweetflow ingest`")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split(['`', '{']).next().unwrap().to_string())
        .filter(|n| n.starts_with("tweetflow_") || n.starts_with("process_"))
        .collect();
    let live: BTreeSet<String> = families.keys().cloned().collect();
    assert_eq!(
        live.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "metrics that docs/METRICS.md does not list"
    );
    assert_eq!(
        documented.difference(&live).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "metrics in docs/METRICS.md that /metrics does not have"
    );

    // Each place that names the sink's states names all of them and no other.
    let row = |doc: &str, start: &str| -> BTreeSet<String> {
        let text = read(doc);
        // The line, with its continuation lines (a list item's indented ones).
        let mut lines = text.lines().skip_while(|l| !l.starts_with(start));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("{doc}: no line starting with {start:?}"));
        let item: String = std::iter::once(first)
            .chain(lines.take_while(|l| l.starts_with("  ")))
            .collect::<Vec<_>>()
            .join(" ");
        code_spans(&item)
            .into_iter()
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .collect()
    };
    let places = [
        ("docs/METRICS.md", "| `tweetflow_sink_state{state}`"),
        ("docs/RUNNING.md", "| `sink up buf"),
        ("docs/DASHBOARD.md", "| header |"),
        ("docs/SINK.md", "- `sink_state`"),
    ];
    for (doc, start) in places {
        let named = row(doc, start);
        assert!(
            states.is_subset(&named),
            "{doc} does not name the states {:?}",
            states.difference(&named).collect::<Vec<_>>()
        );
    }
    // The troubleshooting page has a row per state, and no row for another.
    let trouble = read("docs/TROUBLESHOOTING.md");
    let section = trouble
        .split("## The sink's states")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("TROUBLESHOOTING.md has a section on the sink's states");
    let rows: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split('`').next().unwrap().to_string())
        .collect();
    assert_eq!(rows, states, "TROUBLESHOOTING.md's rows of sink states");
    // The metric's own HELP names every state.
    let help = &families["tweetflow_sink_state"];
    for s in &states {
        assert!(
            help.contains(s.as_str()),
            "HELP of tweetflow_sink_state lacks {s}: {help}"
        );
    }
}
