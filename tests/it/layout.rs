//! The module layering of `src/`, checked: dependencies run one way.
//!
//! Every top-level module of the library sits in one layer of [`LAYERS`]; a
//! module may name (`crate::x`, `use crate::{x, …}`) only modules of lower
//! layers, never its own layer's neighbours or anything above it. Inside
//! `src/engine/` the files follow [`ENGINE_LAYERS`] the same way, inside
//! `src/pipeline/` [`PIPELINE_LAYERS`]. A module
//! that is in no layer fails the check, so a new module has to be placed.
//!
//! This is a plain text scan of the sources (comments and strings skipped), not a compiler
//! pass: it sees every path that starts with `crate::` or `super::` and a
//! grouped `use crate::{…}`. See `docs/ARCHITECTURE.md`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Lowest first. The first layer is the toolkit everyone may use; it imports
/// nothing from the crate.
const LAYERS: &[&[&str]] = &[
    &["budget"],
    &["supervise", "shutdown", "log_limit", "model", "pace"],
    &["stats"],
    &["jetstream"],
    &["score"],
    &["source"],
    &["engine"],
    &["aggregate"],
    &["sink"],
    &["emulator"],
    &["ops"],
    &["pipeline"],
    &["app"],
    &["testkit"],
];

/// The processing core, lowest first: its settings and counters, then the
/// dispatcher and the worker loop, then the pool supervisor and the
/// autoscaler, then the handle that spawns it all (`mod.rs` re-exports).
const ENGINE_LAYERS: &[&[&str]] = &[
    &["delay", "error", "inflight", "limits"],
    &["config"],
    &["stats"],
    &["dispatch"],
    &["worker"],
    &["autoscale"],
    &["pool"],
    &["handle"],
];

/// The pipeline, lowest first: its settings, errors, the tap, readiness and
/// the one snapshot type; then the probes that read the snapshot and the
/// stage handles; then the views of the snapshot (status ticker, metrics,
/// summary); then the operator's endpoint; then running a built pipeline;
/// then building it (`mod.rs` re-exports).
const PIPELINE_LAYERS: &[&[&str]] = &[
    &["config", "error", "readiness", "snapshot", "tap"],
    &["jetstream"],
    &["probes", "stages"],
    &["metrics", "summary", "ticker"],
    &["endpoint"],
    &["run"],
    &["build"],
    &["ingest"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files under `dir`, but those of test-only modules (declared
/// `#[cfg(test)] mod name;`): test code may use the testkit, whatever its layer.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut found = Vec::new();
    all_rust_files(dir, &mut found);
    let mut test_only = BTreeSet::new();
    for p in &found {
        let text = fs::read_to_string(p).expect("source is UTF-8");
        let parent = p.parent().expect("in a folder");
        let stem = p.file_stem().and_then(|s| s.to_str()).expect("file name");
        // `a/mod.rs` declares `a/name.rs`; `a/b.rs` declares `a/b/name.rs`.
        let base = if stem == "mod" {
            parent.to_path_buf()
        } else {
            parent.join(stem)
        };
        for name in test_modules(&text) {
            test_only.insert(base.join(format!("{name}.rs")));
            test_only.insert(base.join(&name).join("mod.rs"));
        }
    }
    out.extend(found.into_iter().filter(|p| !test_only.contains(p)));
}

fn all_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            all_rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The modules that `text` declares test-only, in their own file
/// (`#[cfg(test)] mod name;`).
fn test_modules(text: &str) -> Vec<String> {
    let code = code_of_all(text);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(TEST_ONLY) {
        rest = &rest[i + TEST_ONLY.len()..];
        let item = rest.trim_start();
        if let Some(decl) = item.strip_prefix("mod ") {
            let decl = decl.trim_start();
            if let Some(name) = ident_at(decl) {
                if decl[name.len()..].trim_start().starts_with(';') {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// What marks an item as test-only.
const TEST_ONLY: &str = "#[cfg(test)]";

/// `code` without its test-only items (`#[cfg(test)]` and the item after it,
/// through its `;` or its closing brace).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(i) = rest.find(TEST_ONLY) {
        out.push_str(&rest[..i]);
        let item = &rest[i + TEST_ONLY.len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (j, ch) in item.char_indices() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The code of a file without its comments (line, doc and block comments),
/// with every string literal emptied (`"…"`, `b"…"`, raw `r#"…"#`), so that a
/// path in a message or a URL is not taken for an import, and without its
/// test-only items (`#[cfg(test)]`): test code may use the testkit, whatever
/// its layer.
fn code_of(text: &str) -> String {
    without_test_items(&code_of_all(text))
}

/// [`code_of`] with the test-only items kept. Char literals are emptied too
/// (`'"'` opens no string, `'{'` opens no block); a lifetime is not a char
/// literal.
fn code_of_all(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0usize;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            'r' | 'b' if !prev_ident && raw_string_at(&c[i..]).is_some() => {
                let (open, hashes) = raw_string_at(&c[i..]).unwrap_or((0, 0));
                i += open;
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                while i < c.len() && !c[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal: `'x'`, `'\n'`, `'\u{..}'`; else a lifetime.
                let end = if c.get(i + 1) == Some(&'\\') {
                    // The escaped character may itself be a quote: `'\''`.
                    c.get(i + 3..)
                        .and_then(|rest| rest.iter().position(|&x| x == '\''))
                        .map(|p| i + 3 + p)
                } else if c.get(i + 2) == Some(&'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match end {
                    Some(e) => {
                        out.push_str("' '");
                        i = e + 1;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// At the start of a raw string (`r"`, `r#"`, `br##"` …): the length of its
/// opening and its number of `#`.
fn raw_string_at(c: &[char]) -> Option<(usize, usize)> {
    let mut i = usize::from(c.first() == Some(&'b'));
    if c.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = c[i..].iter().take_while(|&&x| x == '#').count();
    i += hashes;
    (c.get(i) == Some(&'"')).then_some((i + 1, hashes))
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first path segments after each `prefix` (`crate::`, `super::`), with
/// grouped imports (`prefix{a, b::c}`) expanded to their first segments.
fn named_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // e.g. `foo_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start => {
                        item_start = false;
                        if let Some(id) = ident_at(&group[j..]) {
                            out.insert(id.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some(id) = ident_at(rest) {
            out.insert(id.to_string());
        }
    }
    out
}

fn layer_of(layers: &[&[&str]], name: &str) -> Option<usize> {
    layers.iter().position(|l| l.contains(&name))
}

/// Top-level module of a file under `src/`, or None for the crate roots.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

#[test]
fn top_level_modules_depend_only_on_lower_layers() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for path in &files {
        let rel = path.strip_prefix(&root).expect("under src/");
        let Some(module) = top_module(rel) else {
            continue;
        };
        seen.insert(module.clone());
        let Some(own) = layer_of(LAYERS, &module) else {
            violations.push(format!(
                "{}: module `{module}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(path).expect("source is UTF-8");
        for used in named_after(&code_of(&text), "crate::") {
            if used == module {
                continue;
            }
            match layer_of(LAYERS, &used) {
                Some(l) if l < own => {}
                Some(_) => violations.push(format!(
                    "{}: `{module}` (layer {own}) names `crate::{used}`, which is not below it",
                    rel.display()
                )),
                None => {} // an item of lib.rs, not a module
            }
        }
    }
    let declared: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|s| s.to_string()))
        .collect();
    assert!(
        declared.is_subset(&seen),
        "layers name modules that do not exist: {:?}",
        declared.difference(&seen).collect::<Vec<_>>()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_engine_depends_one_way_inside() {
    let dir = src().join("engine");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut violations = Vec::new();
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name");
        if name == "mod" {
            continue;
        }
        let Some(own) = layer_of(ENGINE_LAYERS, name) else {
            violations.push(format!("engine/{name}.rs is in no engine layer"));
            continue;
        };
        let code = code_of(&fs::read_to_string(path).expect("source is UTF-8"));
        let mut used = named_after(&code, "super::");
        for p in named_after(&code, "crate::engine::") {
            used.insert(p);
        }
        for u in used {
            if u == name {
                continue;
            }
            match layer_of(ENGINE_LAYERS, &u) {
                Some(l) if l < own => {}
                Some(_) => violations.push(format!(
                    "engine/{name}.rs (layer {own}) names `{u}`, which is not below it"
                )),
                None => {} // a re-export of mod.rs or an item, not a file
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_pipeline_depends_one_way_inside() {
    let dir = src().join("pipeline");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name");
        if name == "mod" {
            continue;
        }
        seen.insert(name.to_string());
        let Some(own) = layer_of(PIPELINE_LAYERS, name) else {
            violations.push(format!("pipeline/{name}.rs is in no pipeline layer"));
            continue;
        };
        let code = code_of(&fs::read_to_string(path).expect("source is UTF-8"));
        let mut used = named_after(&code, "super::");
        used.extend(named_after(&code, "crate::pipeline::"));
        for u in used.iter().filter(|u| **u != name) {
            match layer_of(PIPELINE_LAYERS, u) {
                Some(l) if l < own => {}
                Some(_) => violations.push(format!(
                    "pipeline/{name}.rs (layer {own}) names `{u}`, which is not below it"
                )),
                None => {} // a re-export of mod.rs or an item, not a file
            }
        }
    }
    let declared: BTreeSet<String> = PIPELINE_LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(
        declared, seen,
        "PIPELINE_LAYERS and the files of pipeline/ differ"
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_scanner_sees_plain_and_grouped_paths() {
    let code = code_of(
        "use crate::{model::{Record, Tweet}, sink};\n\
         // use crate::ignored;\n\
         let x = crate::stats::Histogram::new(); let u = \"http://crate::no\";\n\
         use foo_crate::bar;",
    );
    let got = named_after(&code, "crate::");
    let want: BTreeSet<String> = ["model", "sink", "stats"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_scanner_skips_string_literals_and_comments() {
    let code = code_of(concat!(
        "let a = \"crate::in_string \\\" crate::after_escape\"; crate::shown_a;\n",
        "let b = r#\"crate::in_raw \" crate::still_raw\"#; crate::shown_b;\n",
        "let c = br\"crate::in_raw_bytes\"; let d = b\"crate::in_bytes\";\n",
        "let q = '\"'; crate::after_quote_char; let e = '\\''; crate::after_escaped_char;\n",
        "fn f<'a>(x: &'a str) -> crate::after_lifetime::T { x }\n",
        "/* crate::in_block /* crate::nested */ crate::still_block */ crate::after_block;\n",
        "let url = \"http://example\"; crate::after_url; // crate::in_comment\n",
        "let r = 2; let w = crate::after_r;",
    ));
    let got = named_after(&code, "crate::");
    let want: BTreeSet<String> = [
        "shown_a",
        "shown_b",
        "after_quote_char",
        "after_escaped_char",
        "after_lifetime",
        "after_block",
        "after_url",
        "after_r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want, "in {code}");
}

#[test]
fn the_scanner_skips_test_only_code() {
    let text = concat!(
        "use crate::model::Record;\n",
        "#[cfg(test)]\nuse crate::testkit::{records, Spec};\n",
        "#[cfg(test)]\n#[allow(dead_code)]\nfn helper() -> [u8; 2] { crate::testkit::x(); [0; 2] }\n",
        "fn real() { let c = '{'; crate::stats::f(c); }\n",
        "#[cfg(test)]\nmod tests {\n    use crate::testkit::record;\n    fn t() { if true { crate::testkit::y() } }\n}\n",
        "#[cfg(test)]\nmod more;\n",
        "pub(crate) use crate::after::Z;",
    );
    let got = named_after(&code_of(text), "crate::");
    let want: BTreeSet<String> = ["model", "stats", "after"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(test_modules(text), ["more"]);
}

/// The sink, lowest first, one entry per file or folder of `src/sink/`: what
/// fails and how, the pure pull policy, the rejected file and the URL; the
/// settings (with the test hook they carry) and the pause switch; PostgreSQL
/// (`db/`); the controllers that hold a connection (drain's cancel, the health
/// checker); the counters; the buffer and the operator's handle; the writer; the
/// start. Inside `db/` and `buffer/` the files follow [`SINK_DB_LAYERS`] and
/// [`SINK_BUFFER_LAYERS`]. `mod.rs` files only declare and re-export (and
/// `sink/mod.rs` holds the handle), so they are in no layer.
const SINK_LAYERS: &[&[&str]] = &[
    &["failure", "monitor", "rejected", "url"],
    &["config", "pause"],
    &["db"],
    &["drain", "health"],
    &["stats"],
    &["buffer", "control"],
    &["writer"],
    &["start"],
];

/// `src/sink/db/`, lowest first: the calendar arithmetic; the column list, the raw JSON rewriting and
/// the TLS configurations; the COPY encoding and the errors; the compatibility
/// rule and the connections; creating and checking the tables; the batch write.
const SINK_DB_LAYERS: &[&[&str]] = &[
    &["civil"],
    &["raw_json", "tables", "tls"],
    &["encode", "error"],
    &["compat", "connect"],
    &["schema"],
    &["batch"],
];

/// `src/sink/buffer/`, lowest first: the frames, the spool, then the memory buffer.
const SINK_BUFFER_LAYERS: &[&[&str]] = &[&["frame"], &["spool"], &["memory"]];

/// What the files under `dir` (`src/<module>`) name against `layers`, whose
/// units are the files and folders directly in `dir`: a file directly in it
/// (or a subfolder's `mod.rs`) names units by `super::` and `crate::<module>::`,
/// another file of a subfolder by `crate::<module>::` and `super::super::`.
/// Every unit must be in a layer.
fn sink_layer_violations(module: &str, layers: &[&[&str]]) -> Vec<String> {
    let dir = src().join(module);
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let absolute = format!("crate::{}::", module.replace('/', "::"));
    let mut units = BTreeSet::new();
    let mut violations = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&dir).expect("under its folder");
        let nested = rel.components().count() > 1;
        if !nested && rel == Path::new("mod.rs") {
            continue;
        }
        let first = rel.components().next().expect("a file");
        let unit = first.as_os_str().to_str().expect("UTF-8 name");
        let unit = unit.trim_end_matches(".rs").to_string();
        units.insert(unit.clone());
        let Some(own) = layer_of(layers, &unit) else {
            violations.push(format!("{module}/{unit} is in no layer"));
            continue;
        };
        let code = code_of(&fs::read_to_string(path).expect("source is UTF-8"));
        // `super::` of a file directly in the folder, or of a subfolder's `mod.rs`,
        // is the folder itself.
        let folder_level = !nested || (rel.components().count() == 2 && rel.ends_with("mod.rs"));
        let mut used = named_after(&code, &absolute);
        used.extend(named_after(
            &code,
            if folder_level {
                "super::"
            } else {
                "super::super::"
            },
        ));
        for u in used {
            if u == unit {
                continue;
            }
            match layer_of(layers, &u) {
                Some(l) if l < own => {}
                Some(_) => violations.push(format!(
                    "{module}/{} (layer {own}) names `{u}`, which is not below it",
                    rel.display()
                )),
                None => {} // a re-export of mod.rs or an item, not a file
            }
        }
    }
    for l in layers.iter().flat_map(|l| l.iter()) {
        if !units.contains(*l) {
            violations.push(format!(
                "{module}: the layer names `{l}`, which does not exist"
            ));
        }
    }
    violations
}

#[test]
fn the_sink_depends_one_way_inside() {
    let mut violations = sink_layer_violations("sink", SINK_LAYERS);
    violations.extend(sink_layer_violations("sink/db", SINK_DB_LAYERS));
    violations.extend(sink_layer_violations("sink/buffer", SINK_BUFFER_LAYERS));
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
