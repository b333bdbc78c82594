//! The analysis report, checked the way a person would look at it: generated
//! orders go through the pipeline into PostgreSQL, the real
//! `orderstream-analytics report` renders them, and headless Chromium (from
//! Debian's `chromium` package, which `make deps` installs) lays the page out
//! at a laptop's and a phone's width. A checker script, appended to a copy of
//! the page, writes what is shown into the DOM (`--dump-dom`): no chart label
//! clipped by its chart, overlapping another or under 10 px high, a title
//! over every chart, no horizontal scrolling, the cards' texts.
//!
//! With `ORDERSTREAM_REPORT_SCREENSHOT=PATH` the test also saves a screenshot
//! of the page there (`make report-screenshot` refreshes `docs/report.png`),
//! of the workplace's real seed exports when they are present.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};
use harness::{binary, Scenario};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// Debian's Chromium; the test fails without it rather than skip.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Orders to generate: about twelve weeks, from a Wednesday in mid-July
/// 2022 to early October, so the first and last weeks and months are partial.
const ORDERS: u64 = 3000;
const FIRST_ORDER: &str = "2022-07-13T10:00:00";
const MEAN_INTERVAL_SECS: u64 = 2400;

/// A laptop's and a phone's page width, in CSS pixels.
const WIDTHS: [u32; 2] = [1280, 390];

/// Runs in the page after layout and writes what it sees into
/// `<pre id="checker-findings">` as JSON.
const CHECKER: &str = r#"<script>
(function () {
  var findings = {
    viewportWidth: window.innerWidth,
    pageWidth: document.documentElement.scrollWidth,
    pageHeight: document.documentElement.scrollHeight,
    charts: 0, labels: 0, clipped: [], overlapping: [], tiny: [], cards: [],
    chartTitles: document.querySelectorAll('figure h3').length,
    asOf: (document.querySelector('.as-of') || {}).innerText || '',
    nothingToReport: document.querySelectorAll('.nothing').length,
    folded: document.querySelectorAll('details').length
  };
  function edges(r) { return [Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)]; }
  document.querySelectorAll('svg').forEach(function (svg) {
    var frame = svg.getBoundingClientRect();
    if (frame.width === 0) return; // the drawing for the other screen width
    findings.charts++;
    var boxes = [];
    svg.querySelectorAll('text').forEach(function (text) {
      var label = text.textContent.trim();
      if (!label) return;
      findings.labels++;
      var box = text.getBoundingClientRect();
      var rotated = (text.getAttribute('transform') || '').indexOf('rotate') >= 0;
      if ((rotated ? box.width : box.height) < 10) findings.tiny.push(label + ' ' + Math.round(rotated ? box.width : box.height) + ' px high');
      if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5 || box.top < frame.top - 0.5 || box.bottom > frame.bottom + 0.5) {
        findings.clipped.push(label + ' at ' + edges(box) + ' outside ' + edges(frame));
      }
      boxes.forEach(function (other) {
        var w = Math.min(box.right, other.box.right) - Math.max(box.left, other.box.left);
        var h = Math.min(box.bottom, other.box.bottom) - Math.max(box.top, other.box.top);
        if (w > 1 && h > 1) findings.overlapping.push(label + ' over ' + other.label);
      });
      boxes.push({ label: label, box: box });
    });
  });
  document.querySelectorAll('.card').forEach(function (card) { findings.cards.push(card.innerText); });
  var host = window.frameElement ? window.parent.document : document;
  var out = host.createElement('pre');
  out.id = 'checker-findings';
  out.textContent = JSON.stringify(findings);
  host.body.appendChild(out);
})();
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_well_in_a_browser_at_laptop_and_phone_width() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the report is checked in headless Chromium; run `make deps` (Debian's chromium package)"
    );
    let scenario = Scenario::new("report").await;
    let orders = prepare_input(&scenario);
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(orders, Duration::from_secs(180)).await;

    let page = scenario.dir.path().join("report.html");
    let rendered = Command::new(binary("orderstream-analytics"))
        .args(["--questions", &questions_folder().to_string_lossy()])
        .args(["report", "--database-url", &scenario.database_url, "--output"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(rendered.status.success(), "report failed: {}", String::from_utf8_lossy(&rendered.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no JavaScript");
    for fetch in ["src=", "href=", "url(", "@import"] {
        assert!(!html.contains(fetch), "one self-contained file: nothing to fetch, yet it holds {fetch}");
    }

    let expected = Expected::from_database(&scenario).await;
    for width in WIDTHS {
        let findings = findings_at(&html, width, scenario.dir.path());
        let number = |name: &str| findings[name].as_f64().unwrap_or_else(|| panic!("{name} missing: {findings}"));
        let list = |name: &str| findings[name].as_array().cloned().unwrap_or_default();
        assert_eq!(number("viewportWidth"), f64::from(width), "Chromium laid the page out at {width} px");
        assert!(number("pageWidth") <= f64::from(width), "no horizontal scroll at {width} px: {findings}");
        assert!(number("charts") >= 6.0, "a chart per measure: {findings}");
        assert!(number("labels") >= 60.0, "charts carry axis titles and ticks: {findings}");
        assert!(list("clipped").is_empty(), "chart labels clipped at {width} px: {:#?}", list("clipped"));
        assert!(list("overlapping").is_empty(), "chart labels overlap at {width} px: {:#?}", list("overlapping"));
        assert!(list("tiny").is_empty(), "chart labels too small to read at {width} px: {:#?}", list("tiny"));
        assert_eq!(number("chartTitles"), number("charts"), "every chart has a title: {findings}");
        assert!(number("folded") >= 1.0, "earlier weeks are folded away: {findings}");
        let as_of = findings["asOf"].as_str().unwrap();
        assert!(as_of.contains(&format!("Data as of {}", expected.newest_in_words)), "{as_of}");

        let cards_found = list("cards");
        let cards: Vec<&str> = cards_found.iter().filter_map(Value::as_str).collect();
        assert_eq!(cards.len(), 3, "three key figures: {cards:#?}");
        let sales = cards.iter().find(|c| c.starts_with("Total sales")).expect("a sales card");
        for shown in [&expected.sales, &expected.previous_sales, &expected.change, &expected.period] {
            assert!(sales.contains(shown.as_str()), "the sales card shows {shown:?}: {sales:?}");
        }
        let ratio = cards.iter().find(|c| c.starts_with("Sales to one-time")).expect("a ratio card");
        assert!(ratio.contains(&expected.ratio_months), "the ratio card names its months: {ratio:?}");
    }
    if let Some(path) = std::env::var_os("ORDERSTREAM_REPORT_SCREENSHOT") {
        screenshot(&page, Path::new(&path), scenario.dir.path());
    }
}

/// What the cards must show, computed here from the `orders` table.
struct Expected {
    newest_in_words: String,
    sales: String,
    previous_sales: String,
    change: String,
    period: String,
    ratio_months: String,
}

impl Expected {
    async fn from_database(scenario: &Scenario) -> Expected {
        let client = scenario.db().await;
        let row = client.query_one("SELECT max(completed_at AT TIME ZONE 'UTC') FROM orders", &[]).await.unwrap();
        let newest: NaiveDateTime = row.get(0);
        // The latest complete month: the newest order's if it reaches the last day.
        let newest_month = NaiveDate::from_ymd_opt(newest.year(), newest.month(), 1).unwrap();
        let last_day = newest_month.checked_add_months(Months::new(1)).unwrap().pred_opt().unwrap();
        let month = if newest.date() >= last_day { newest_month } else { newest_month - Months::new(1) };
        let previous = month - Months::new(1);
        let sales_in = |first: NaiveDate| {
            let client = &client;
            async move {
                let sql = "SELECT coalesce(sum(item_total), 0) FROM orders \
                           WHERE completed_at AT TIME ZONE 'UTC' >= $1::date \
                             AND completed_at AT TIME ZONE 'UTC' < ($1::date + interval '1 month')";
                let total: Decimal = client.query_one(sql, &[&first]).await.unwrap().get(0);
                total
            }
        };
        let (sales, previous_sales) = (sales_in(month).await, sales_in(previous).await);
        let change = (Decimal::from(100) * (sales - previous_sales) / previous_sales)
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
        let arrow = if change.is_sign_negative() { "▼" } else { "▲" };
        Expected {
            newest_in_words: newest.format("%A %-d %B %Y, %H:%M").to_string(),
            sales: grouped(sales),
            previous_sales: grouped(previous_sales),
            change: format!("{arrow} {:.1} %", change.abs()),
            period: format!("{} vs {}", month.format("%B %Y"), previous.format("%B %Y")),
            ratio_months: format!("{} – {}", (month - Months::new(2)).format("%B"), month.format("%B %Y")),
        }
    }
}

/// `83948.74` → `83,948.74`: written here independently of the report's code.
fn grouped(amount: Decimal) -> String {
    let text = format!("{:.2}", amount.round_dp(2));
    let (whole, cents) = text.split_once('.').unwrap();
    let digits: Vec<char> = whole.chars().collect();
    let groups: Vec<String> = digits.rchunks(3).rev().map(|chunk| chunk.iter().collect()).collect();
    format!("{}.{cents}", groups.join(","))
}

fn questions_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions")
}

/// The inbox of the page: for a screenshot (`make report-screenshot`), the
/// workplace's real seed exports when they are present, so docs/report.png
/// shows real orders; else (and always in `make test`) generated ones.
/// Returns how many orders to wait for.
fn prepare_input(scenario: &Scenario) -> i64 {
    let seeds = std::env::var_os("ORDERSTREAM_REPORT_SCREENSHOT").and_then(|_| harness::seed_files());
    let Some(seeds) = seeds else {
        generate_orders(&scenario.inbox().join("orders.csv"));
        return ORDERS as i64;
    };
    let mut orders = 0;
    for seed in seeds {
        let text = std::fs::read_to_string(&seed).unwrap();
        orders += text.lines().skip(1).filter(|line| !line.trim().is_empty()).count() as i64;
        std::fs::write(scenario.inbox().join(seed.file_name().unwrap()), text).unwrap();
    }
    orders
}

fn generate_orders(path: &Path) {
    let status = Command::new(binary("orderstream-gen"))
        .args(["--orders", &ORDERS.to_string(), "--seed", "18", "--first-id", "1"])
        .args(["--start", FIRST_ORDER, "--interval", &format!("{MEAN_INTERVAL_SECS}s")])
        .arg("--output")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "orderstream-gen failed");
}

/// Lays out a copy of the page with the checker in a frame `width` px wide
/// (headless Chromium's window is at least 500 px: a frame gives the page a
/// true phone viewport) and returns what the checker found.
fn findings_at(html: &str, width: u32, dir: &Path) -> Value {
    let checked = html.replace("</body>", &format!("{CHECKER}</body>"));
    let frame = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head><body style=\"margin:0\"><iframe style=\"border:0;width:{width}px;height:900px\" \
         srcdoc=\"{}\"></iframe></body></html>",
        checked.replace('&', "&amp;").replace('"', "&quot;")
    );
    let wrapper = dir.join(format!("checked-{width}.html"));
    std::fs::write(&wrapper, frame).unwrap();
    let window = format!("--window-size={},1000", width + 40);
    let dom = chromium(dir, &[window, "--dump-dom".into(), file_url(&wrapper)]);
    let start = dom.find("<pre id=\"checker-findings\">").expect("the checker ran and wrote its findings");
    let json = &dom[start..].split_once('>').unwrap().1;
    let json = json.split_once("</pre>").unwrap().0;
    let json = json.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|error| panic!("findings are not JSON ({error}): {json}"))
}

/// Saves a screenshot of the whole page at 1280 px.
fn screenshot(page: &Path, path: &Path, dir: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    let height = findings_at(&html, 1280, dir)["pageHeight"].as_f64().unwrap().ceil() as u32;
    let target = std::path::absolute(path).unwrap();
    chromium(
        dir,
        &[format!("--window-size=1280,{height}"), format!("--screenshot={}", target.display()), file_url(page)],
    );
    assert!(target.exists(), "no screenshot at {}", target.display());
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Runs headless Chromium with its own profile folder, within a minute;
/// returns what it printed (the DOM for `--dump-dom`), kept in a file so a
/// large page cannot fill a pipe nobody reads yet.
fn chromium(dir: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let stdout_path = profile.path().join("stdout");
    let stderr_path = profile.path().join("stderr");
    let mut child = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .args(["--force-device-scale-factor=1", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {CHROMIUM}: {error}; run `make deps`"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    std::fs::read_to_string(&stdout_path).unwrap()
}
