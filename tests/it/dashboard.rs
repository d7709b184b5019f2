//! The live dashboard in a real headless browser, while a pipeline runs.
//!
//! Debian's `chromium` is driven by `chromedriver` over the WebDriver HTTP API
//! (blocking ureq calls, no async). The first test reads what a person sees: the
//! charts' canvases must hold drawn pixels in the series' colours, the figures
//! in the header must change between two reads, the browser's console must
//! show no error, and the page must have fetched nothing but tweetflow's own
//! URLs; without `--jetstream` the card of the merged hashtags stays hidden.
//!
//! A second test runs `tweetflow ingest` and two `tweetflow run --jetstream`
//! instances against a real `nats-server` and reads the card "Top hashtags, all
//! instances": it must show, naming both instances, the hashtags the emulator
//! really sent most (regenerated from its seed), each count at least the true
//! one and at most the count-min bound above it, no less than the tweets stored
//! with that hashtag, and no less than the two instances' own counts together.
//!
//! Without chromium or chromedriver the tests fail, saying how to
//! install them or skip them: they skip only when `TWEETFLOW_SKIP_BROWSER=1` is
//! set, and never under `CI=true` (`.ci/run` installs both).

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tweetflow::{start, Emulator, EmulatorConfig, PipelineConfig, Rate, Shutdown};

use crate::child::{number_before, Tweetflow};
use crate::jetstream::{for_each_sent_tweet, run_instance};
use crate::nats_util::{self, NatsServer};
use crate::sink_util::{unique, wait_for, TestSchema};

/// `name` on the `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// chromium and chromedriver, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = on_path("chromium")
        .or_else(|| on_path("chromium-browser"))
        .ok_or("chromium is not installed (apt-get install chromium)")?;
    let driver = on_path("chromedriver")
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// Set to `1`, lets the browser test skip where chromium or chromedriver is
/// missing (it runs anyway where they are installed).
const SKIP_VAR: &str = "TWEETFLOW_SKIP_BROWSER";

/// chromium and chromedriver; without them the test fails, or returns `None`
/// (after saying so) when [`SKIP_VAR`] is `1` outside CI.
fn browser_or_explicit_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    let why = match browser() {
        Ok(found) => return Some(found),
        Err(why) => why,
    };
    let ci = std::env::var("CI").as_deref() == Ok("true");
    assert!(!ci, "CI=true and {why}: .ci/run installs it");
    assert!(
        std::env::var(SKIP_VAR).as_deref() == Ok("1"),
        "{why}. Install chromium and chromedriver (apt-get install chromium chromium-driver), \
         or set {SKIP_VAR}=1 to skip this test"
    );
    println!("SKIPPED {test} ({SKIP_VAR}=1): {why}");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver process and one browser session; both end on drop.
struct WebDriver {
    base: String,
    session: Option<String>,
    child: Child,
}

impl WebDriver {
    fn start(chromium: &PathBuf, driver: &PathBuf) -> WebDriver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut wd = WebDriver {
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = ureq::get(&format!("{}/status", wd.base))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1440,900",
                         "--no-first-run", "--disable-extensions"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let v = wd.post("/session", &caps);
        wd.session = Some(
            v["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session in {v}"))
                .to_string(),
        );
        wd
    }

    /// POSTs `body` to `path` (relative to the session when `path` starts
    /// without `/session`) and returns the answer's `value`.
    fn post(&self, path: &str, body: &Value) -> Value {
        let url = match &self.session {
            Some(id) if !path.starts_with("/session") => {
                format!("{}/session/{id}{path}", self.base)
            }
            _ => format!("{}{path}", self.base),
        };
        let text = match ureq::post(&url)
            .set("Content-Type", "application/json")
            .timeout(Duration::from_secs(60))
            .send_string(&body.to_string())
        {
            Ok(r) => r.into_string().unwrap(),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "WebDriver {path} answered {code}: {}",
                    r.into_string().unwrap()
                )
            }
            Err(e) => panic!("WebDriver {path}: {e}"),
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        v["value"].clone()
    }

    /// Runs `script` (a function body) in the page and returns its result.
    fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", &json!({"script": script, "args": []}))
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if let Some(id) = &self.session {
            let _ = ureq::delete(&format!("{}/session/{id}", self.base)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a person sees: the header's figures, the legend's values, and per
/// chart the number of canvas pixels drawn in a saturated colour (the series
/// are coloured; the grid and labels are grey).
const READ_PAGE: &str = r##"
const kpis = {};
for (const e of document.querySelectorAll("header .value [id], header .value[id]"))
  kpis[e.id] = e.textContent;
const charts = {};
for (const cv of document.querySelectorAll("canvas[data-chart]")) {
  const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  let inked = 0;
  for (let i = 0; i < d.length; i += 4) {
    const mx = Math.max(d[i], d[i + 1], d[i + 2]), mn = Math.min(d[i], d[i + 1], d[i + 2]);
    if (d[i + 3] > 128 && mx - mn > 60) inked++;
  }
  const values = [...cv.parentElement.querySelectorAll(".legend b")].map(b => b.textContent);
  charts[cv.dataset.chart] = { inked, values };
}
const tags = [...document.querySelectorAll("#tags tr")].map(tr => tr.textContent);
const card = document.getElementById("merged-card"), box = card.getBoundingClientRect();
const merged_shown = getComputedStyle(card).display !== "none" && box.width > 0 && box.height > 0;
const origins = performance.getEntriesByType("resource").map(e => new URL(e.name).origin);
return { kpis, charts, tags, merged_shown, origins, origin: location.origin,
         updates: window.dashboard ? window.dashboard.updates : 0 };
"##;

#[test]
fn the_dashboard_charts_a_running_pipeline_in_a_real_browser() {
    let Some((chromium, driver)) =
        browser_or_explicit_skip("the_dashboard_charts_a_running_pipeline_in_a_real_browser")
    else {
        return;
    };
    let schema = TestSchema::new();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = PipelineConfig {
        emulator: EmulatorConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            seed: 1212,
            rate: Rate::Constant(200.0),
            kill_every: Some(50),
            ..EmulatorConfig::default()
        },
        channel_capacity: 512,
        sink: schema.config(spool.path()),
        ..PipelineConfig::default()
    };
    cfg.core.work_delay = "1..5".parse().unwrap();
    cfg.core.min_workers = 2;
    cfg.core.max_workers = 32;
    cfg.ops.addr = Some("127.0.0.1:0".parse().unwrap());
    let stats_file = spool.path().join("stats.jsonl");
    cfg.stats_file = Some(stats_file.clone());
    let shutdown = Shutdown::new();
    let pipeline = start(cfg, shutdown.clone()).unwrap();
    let url = format!(
        "http://{}/",
        pipeline.ops_addr().expect("the endpoint listens")
    );

    let wd = WebDriver::start(&chromium, &driver);
    wd.post("/url", &json!({ "url": url }));

    // Wait until every chart holds samples and the page has drawn them (a few
    // seconds; the margin is for a machine busy with other tests).
    let deadline = Instant::now() + Duration::from_secs(40);
    let first = loop {
        let page = wd.script(READ_PAGE);
        let drawn = page["charts"]
            .as_object()
            .is_some_and(|c| c.len() == 7 && c.values().all(|c| c["inked"].as_u64() > Some(20)));
        if drawn && page["updates"].as_u64() >= Some(3) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the charts were never drawn: {page:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    std::thread::sleep(Duration::from_secs(2));
    let second = wd.script(READ_PAGE);

    // The figures move between the two reads.
    for kpi in ["kpi-t", "kpi-tweets"] {
        assert_ne!(
            first["kpis"][kpi], second["kpis"][kpi],
            "{kpi} did not move in 2 s: {first:#} then {second:#}"
        );
    }
    assert_eq!(second["kpis"]["kpi-sink"], "up", "{second:#}");
    // Every legend shows a current value, and the hashtag table has rows.
    for (chart, c) in second["charts"].as_object().unwrap() {
        for v in c["values"].as_array().unwrap() {
            assert_ne!(v, "–", "{chart} shows no current value: {second:#}");
        }
    }
    let tags = second["tags"].as_array().unwrap();
    assert!(
        (1..=10).contains(&tags.len()) && tags[0].as_str().is_some_and(|t| t.contains('#')),
        "no hashtag table: {second:#}"
    );
    // Without --jetstream there is no deployment to merge: the merged card stays hidden.
    assert_eq!(
        second["merged_shown"], false,
        "the merged card shows without --jetstream: {second:#}"
    );
    // Nothing was fetched from anywhere but tweetflow itself.
    for o in second["origins"].as_array().unwrap() {
        assert_eq!(o, &second["origin"], "a request left tweetflow: {second:#}");
    }

    // No console errors (chromedriver's browser log; SEVERE is console.error,
    // uncaught exceptions and failed loads).
    let log = wd.post("/se/log", &json!({"type": "browser"}));
    let errors: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The JSON the page polls: every key of the stats file, and history
    // columns of one length.
    let api: Value = serde_json::from_str(
        &ureq::get(&format!("{url}api/stats"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    let lines = std::fs::read_to_string(&stats_file).unwrap();
    let line: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    for key in line.as_object().unwrap().keys() {
        assert!(
            api.get(key).is_some(),
            "/api/stats lacks the stats file's {key}"
        );
    }
    let history = api["history"].as_object().unwrap();
    let len = history["t"].as_array().unwrap().len();
    assert!((3..=600).contains(&len), "{len} samples");
    for (column, values) in history {
        assert_eq!(values.as_array().unwrap().len(), len, "column {column}");
    }

    drop(wd);
    shutdown.trigger();
    pipeline.wait().unwrap();
}

/// The two hashtag tables as shown (rank, `#tag`, count per row), whether the merged
/// card is laid out on the page, and its heading.
const READ_TAGS: &str = r##"
const rows = id => [...document.querySelectorAll("#" + id + " tr")]
  .map(tr => [...tr.cells].map(td => td.textContent));
const card = document.getElementById("merged-card"), box = card.getBoundingClientRect();
return { own: rows("tags"), merged: rows("merged-tags"),
         merged_shown: getComputedStyle(card).display !== "none" && box.width > 0 && box.height > 0,
         heading: card.querySelector("h2").textContent,
         updates: window.dashboard ? window.dashboard.updates : 0 };
"##;

/// A hashtag table's rows as (tag, count), in the order shown; panics on a row that
/// is not `rank, #tag, count` with ranks 1, 2, ….
fn tag_rows(page: &Value, table: &str) -> Vec<(String, u64)> {
    let rows = page[table].as_array().cloned().unwrap_or_default();
    if rows.len() == 1 && rows[0].as_array().is_some_and(|r| r.len() == 1) {
        return Vec::new(); // "none yet"
    }
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let cells: Vec<&str> = r
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let parsed = match cells[..] {
                [rank, tag, count] if rank == (i + 1).to_string() => tag
                    .strip_prefix('#')
                    .zip(count.replace(',', "").parse::<u64>().ok()),
                _ => None,
            };
            let (tag, count) = parsed.unwrap_or_else(|| panic!("row {i} of #{table}: {r}"));
            (tag.to_owned(), count)
        })
        .collect()
}

/// What the emulator sent in the first `n[s]` events of each stream, regenerated from
/// its seed: every hashtag occurrence of every tweet (a retweet's original counted as
/// a tweet of its own, as the pipeline does), case folded, and the distinct tweet ids.
fn sent_hashtags(emu: &EmulatorConfig, n: [u64; 2]) -> (HashMap<String, u64>, BTreeSet<i64>) {
    let (mut counts, mut ids) = (HashMap::new(), BTreeSet::new());
    for_each_sent_tweet(emu, n, |t| {
        ids.insert(t["id"].as_i64().unwrap());
        for h in t["entities"]["hashtags"].as_array().into_iter().flatten() {
            let tag = h["text"].as_str().unwrap().to_lowercase();
            *counts.entry(tag).or_insert(0) += 1;
        }
    });
    (counts, ids)
}

/// The hashtags of the rows of `schema.tweets` (one per distinct tweet), case folded.
fn stored_hashtags(schema: &str) -> HashMap<String, u64> {
    let rows = crate::sink_util::admin()
        .query(&format!("SELECT hashtags FROM \"{schema}\".tweets"), &[])
        .unwrap_or_default();
    let mut counts = HashMap::new();
    for r in &rows {
        for tag in r.get::<_, Vec<String>>(0) {
            *counts.entry(tag.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

/// `tweetflow run --jetstream` as instance `name`, its dashboard on `port`.
fn jetstream_instance(nats: &str, stream: &str, schema: &str, name: &str, port: u16) -> Tweetflow {
    let ops = format!("127.0.0.1:{port}");
    run_instance(
        nats,
        stream,
        schema,
        &[
            "--instance",
            name,
            "--metrics-addr",
            &ops,
            "--work-delay",
            "1..5",
        ],
    )
}

/// The last stats line's `jetstream` part.
fn js_stats(t: &Tweetflow) -> Value {
    t.stats()
        .last()
        .map(|v| v["jetstream"].clone())
        .unwrap_or(Value::Null)
}

/// Count-min error bound of the sketches (src/stats/sketch.rs: width 2048, so an
/// estimate exceeds the true count by at most `ε·N`, `ε = e / 2048`, `N` every
/// hashtag counted, with probability at least `1 − e^−4`).
const SKETCH_EPSILON: f64 = std::f64::consts::E / 2048.0;

#[test]
fn the_merged_hashtag_card_shows_the_deployments_true_top_hashtags_in_a_real_browser() {
    let Some((chromium, driver)) = browser_or_explicit_skip(
        "the_merged_hashtag_card_shows_the_deployments_true_top_hashtags_in_a_real_browser",
    ) else {
        return;
    };
    let started = Instant::now();
    let nats = NatsServer::start();
    let emu_cfg = EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed: 1313,
        rate: Rate::Constant(200.0),
        ids: true,
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(emu_cfg.clone()).unwrap();
    let stream = unique("tf_dash").replace('_', "-");
    let schema = TestSchema::new();
    let ports = [nats_util::free_port(), nats_util::free_port()];
    let runs: Vec<Tweetflow> = ["dash-a", "dash-b"]
        .iter()
        .zip(ports)
        .map(|(name, port)| jetstream_instance(&nats.url, &stream, &schema.name, name, port))
        .collect();
    let logs = || {
        runs.iter()
            .map(Tweetflow::stderr)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    // Both wait for the stream, then share it live while ingest fills it.
    wait_for(
        "both instances waiting for ingest",
        Duration::from_secs(30),
        || {
            runs.iter()
                .all(|r| r.line_with("waiting for `tweetflow ingest`").is_some())
        },
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tweetflow"))
        .args(["ingest", "--server", &emu.url(), "--jetstream", &nats.url])
        .args(["--stream", &stream, "--quiet", "--duration", "4"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ingest: {err}");
    let summary = err
        .lines()
        .find(|l| l.starts_with("ingest summary"))
        .unwrap_or_else(|| panic!("no ingest summary in:\n{err}"));
    let n = [
        number_before(summary, " + "),
        number_before(summary, " per stream"),
    ];
    assert!(n[0] > 100 && n[1] > 100, "{summary}");
    let (sent, ids) = sent_hashtags(&emu_cfg, n);
    let total: u64 = sent.values().sum();
    let slack = (SKETCH_EPSILON * total as f64).ceil() as u64;

    // Every tweet stored and every message acked, each delivered once.
    let mut db = crate::sink_util::admin();
    let count = format!("SELECT count(*) FROM \"{}\".tweets", schema.name);
    wait_for("every tweet stored", Duration::from_secs(45), || {
        std::thread::sleep(Duration::from_millis(200));
        db.query_one(&count, &[])
            .is_ok_and(|r| r.get::<_, i64>(0) as usize >= ids.len())
    });
    wait_for("every message acked", Duration::from_secs(20), || {
        let j = js_stats(&runs[0]);
        j["pending"] == 0 && j["ack_pending"] == 0
    });
    for r in &runs {
        let j = js_stats(r);
        assert_eq!(
            j["delivered_again"],
            0,
            "a message came twice, so its hashtags were counted twice: {j}\n{}",
            logs()
        );
    }

    // Instance a's dashboard, until its merged table holds at least what was sent
    // (estimates never undercount, and grow to that once the last shares are merged)
    // and stays the same over two reads.
    let wd = WebDriver::start(&chromium, &driver);
    let url = |i: usize| format!("http://127.0.0.1:{}/", ports[i]);
    wd.post("/url", &json!({ "url": url(0) }));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut previous = Value::Null;
    let page = loop {
        std::thread::sleep(Duration::from_millis(1200));
        let page = wd.script(READ_TAGS);
        let merged = tag_rows(&page, "merged");
        let complete = page["merged_shown"] == true
            && merged.len() == 10
            && merged
                .iter()
                .all(|(tag, c)| *c >= sent.get(tag).copied().unwrap_or(0));
        if complete && page["merged"] == previous["merged"] {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the merged card never showed counts at least those sent: {page:#}\nsent: {:?}\n{}",
            top_of(&sent, 15),
            logs()
        );
        previous = page;
    };
    let merged = tag_rows(&page, "merged");
    let own_a = tag_rows(&page, "own");
    let context = format!(
        "merged {merged:?}\nsent (top 15 of {total}, ε·N = {slack}) {:?}",
        top_of(&sent, 15)
    );

    // The card is visible and says it merges both instances.
    assert!(
        page["heading"]
            .as_str()
            .is_some_and(|h| h.contains("merged sketches of 2 instances")),
        "{page:#}"
    );
    // Heaviest first; each count the true one, overestimated only upward and by at
    // most ε·N; and what landed in the database is no more than that.
    let stored = stored_hashtags(&schema.name);
    for pair in merged.windows(2) {
        assert!(pair[0].1 >= pair[1].1, "not heaviest first: {context}");
    }
    for (tag, shown) in &merged {
        let truth = sent.get(tag).copied().unwrap_or(0);
        assert!(
            truth <= *shown && *shown <= truth + slack,
            "#{tag}: shown {shown}, sent {truth} (+ ε·N {slack}): {context}"
        );
        let rows = stored.get(tag).copied().unwrap_or(0);
        assert!(
            rows > 0 && rows <= *shown,
            "#{tag}: shown {shown}, in {rows} stored tweets: {context}"
        );
    }
    // The true top: no tag left out was sent more often than the lightest one shown.
    let lightest = merged.last().map_or(0, |(_, c)| *c);
    for (tag, truth) in &sent {
        assert!(
            *truth <= lightest || merged.iter().any(|(t, _)| t == tag),
            "#{tag} sent {truth} times is missing: {context}"
        );
    }

    // Instance b's dashboard: its own table, and the same merged one.
    wd.post("/url", &json!({ "url": url(1) }));
    let deadline = Instant::now() + Duration::from_secs(15);
    let page_b = loop {
        let p = wd.script(READ_TAGS);
        if p["updates"].as_u64() >= Some(1) && !tag_rows(&p, "own").is_empty() {
            break p;
        }
        assert!(Instant::now() < deadline, "{p:#}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let own_b = tag_rows(&page_b, "own");
    assert_eq!(tag_rows(&page_b, "merged"), merged, "{page_b:#}");
    // Each instance counted only its share: the merged count of a tag is at least
    // each instance's own, and at least both together (the sketches add up, and a
    // count-min minimum of sums is no less than the sum of the minima).
    let own =
        |table: &[(String, u64)], tag: &str| table.iter().find(|(t, _)| t == tag).map(|(_, c)| *c);
    for (tag, m) in &merged {
        let (a, b) = (own(&own_a, tag), own(&own_b, tag));
        for (name, c) in [("a", a), ("b", b)] {
            assert!(
                c.is_none_or(|c| c <= *m),
                "#{tag}: merged {m} below instance {name}'s {c:?}: {context}\nown a {own_a:?}\nown b {own_b:?}"
            );
        }
        if let (Some(a), Some(b)) = (a, b) {
            assert!(
                a + b <= *m,
                "#{tag}: merged {m} below a {a} + b {b}: {context}"
            );
        }
    }
    assert!(
        merged
            .iter()
            .any(|(t, _)| own(&own_a, t).is_some() && own(&own_b, t).is_some()),
        "no tag in both instances' tables: {own_a:?} {own_b:?}"
    );

    // No console errors on either page.
    let log = wd.post("/se/log", &json!({"type": "browser"}));
    let errors: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(wd);
    drop(runs);
    println!(
        "merged card checked in {:.1} s: {} events, {total} hashtags, ε·N = {slack}; {merged:?}",
        started.elapsed().as_secs_f64(),
        n[0] + n[1]
    );
}

/// The `k` most sent hashtags, heaviest first.
fn top_of(counts: &HashMap<String, u64>, k: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = counts.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(k);
    v
}
