//! The live dashboard in a real headless browser, while a pipeline runs.
//!
//! Debian's `chromium` is driven by `chromedriver` over the WebDriver HTTP API
//! (blocking ureq calls, no async). The test reads what a person sees: the
//! charts' canvases must hold drawn pixels in the series' colours, the figures
//! in the header must change between two reads, the browser's console must
//! show no error, and the page must have fetched nothing but tweetflow's own
//! URLs. Without chromium or chromedriver the test fails, saying how to
//! install them or skip it: it skips only when `TWEETFLOW_SKIP_BROWSER=1` is
//! set, and never under `CI=true` (`.ci/run` installs both).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tweetflow::{start, EmulatorConfig, PipelineConfig, Rate, Shutdown};

use crate::sink_util::TestSchema;

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
const origins = performance.getEntriesByType("resource").map(e => new URL(e.name).origin);
return { kpis, charts, tags, origins, origin: location.origin,
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
