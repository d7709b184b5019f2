//! The documents against the code: what a user reads must be what the binary does.
//!
//! The README's flag table against `tweetflow run --help`: every flag of one is
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

/// The README's flag table: each row's flag, its first cell and its default cell.
fn readme_flags() -> BTreeMap<String, (String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("| flag | default | meaning |")
        .expect("the README has a flag table");
    let mut rows = BTreeMap::new();
    for line in readme[start..].lines().skip(2) {
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
fn the_readme_names_every_flag_of_help_with_its_default() {
    let help = help_flags();
    let readme = readme_flags();
    assert!(
        help.len() > 30,
        "only {} flags parsed from --help",
        help.len()
    );
    let in_help: BTreeSet<_> = help.keys().collect();
    let in_readme: BTreeSet<_> = readme.keys().collect();
    assert_eq!(
        in_help.difference(&in_readme).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags of --help missing from the README's table"
    );
    assert_eq!(
        in_readme.difference(&in_help).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags in the README's table that --help does not know"
    );
    for (flag, h) in &help {
        let (first, default) = &readme[flag];
        match &h.default {
            Some(d) => assert!(
                default.starts_with(&format!("`{d}`")),
                "--{flag}: --help says the default is {d}, the README says {default}"
            ),
            None if h.switch => assert_eq!(default, "off", "--{flag} is a switch"),
            None => assert!(
                !default.starts_with('`'),
                "--{flag} has no default in --help, the README says {default}"
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
